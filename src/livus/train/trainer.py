"""Generic pieces of the training loop: hard-example sampling, one epoch, batched prediction,
CSV logging and checkpoints for resuming."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn

from livus.models.losses import detector_loss

if TYPE_CHECKING:
    from livus.train.distributed import DistContext


class HardExampleSampler:
    """Epoch index lists mixing a uniform pass with oversampled hard images.

    Each epoch has ``n`` draws: ``(1 - fraction)·n`` from a random permutation and
    ``fraction·n`` drawn with probability ∝ the image's latest loss (images never seen get the
    mean). With ``fraction = 0`` this is plain shuffling.
    """

    def __init__(self, n: int, fraction: float = 0.3, seed: int = 0) -> None:
        self.n = n
        self.fraction = fraction
        self.losses = np.full(n, np.nan)
        self.rng = np.random.default_rng(seed)

    def update(self, indices: np.ndarray, losses: np.ndarray) -> None:
        self.losses[np.asarray(indices)] = np.asarray(losses, dtype=np.float64)

    def epoch_indices(self) -> np.ndarray:
        n_hard = int(round(self.fraction * self.n)) if np.isfinite(self.losses).any() else 0
        uniform = self.rng.permutation(self.n)[: self.n - n_hard]
        if n_hard == 0:
            return uniform
        w = np.where(np.isfinite(self.losses), self.losses, np.nanmean(self.losses))
        w = np.clip(w, 1e-6, None)
        hard = self.rng.choice(self.n, size=n_hard, replace=True, p=w / w.sum())
        out = np.concatenate([uniform, hard])
        self.rng.shuffle(out)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses.tolist(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.losses = np.array(d["losses"], dtype=np.float64)
        self.rng.bit_generator.state = d["rng"]


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def train_one_epoch(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    indices: np.ndarray,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    weights: dict[str, float],
    batch_size: int,
    progress: Callable[[int, float], None] | None = None,
    device: str | torch.device = "cpu",
    dist: DistContext | None = None,
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One pass over ``indices`` (batches in order) on ``device``. Returns mean loss parts (and
    ``total``), and the per-draw (index, loss) arrays for hard-example mining.

    ``dist`` (data-parallel, ``model`` in DDP): every rank gets the same ``indices`` and trains
    on its share of each batch (see ``DistContext.share``); the returned figures and per-draw
    losses are those of the whole batches (gathered from all ranks), the same on every rank.
    Batches smaller than the number of ranks are skipped."""
    model.train()
    sums: dict[str, float] = {}
    n_batches = 0
    seen_idx, seen_loss = [], []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        if len(chunk) < 2:  # batch norm needs 2+ samples
            continue
        weight, n_drawn = 1.0, len(chunk)  # this rank's share of the global batch, the batch's size
        if dist is not None:
            if len(chunk) < dist.world:
                continue
            chunk, scale = dist.share(chunk)
            weight = scale / dist.world
        batch = {k: v.to(device, non_blocking=True) for k, v in collate([dataset[int(i)] for i in chunk]).items()}
        out = model(batch["image"])
        total, parts, per_image = detector_loss(out, batch, weights)
        optimizer.zero_grad(set_to_none=True)
        (total if dist is None else total * scale).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        parts["total"] = float(total.detach())
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * weight
        n_batches += 1
        seen_idx.append(batch["index"].cpu().numpy())
        seen_loss.append(per_image.cpu().numpy())
        if progress is not None:
            progress(n_drawn, parts["total"])
    if dist is not None:
        sums = dict(zip(sums, dist.sum(np.array(list(sums.values())))))
        ranks = dist.all_gather((seen_idx, seen_loss))  # per rank: its share of every batch
        seen_idx = [np.concatenate([r[0][b] for r in ranks]) for b in range(n_batches)]
        seen_loss = [np.concatenate([r[1][b] for r in ranks]) for b in range(n_batches)]
    means = {k: v / max(n_batches, 1) for k, v in sums.items()}
    return means, np.concatenate(seen_idx) if seen_idx else np.zeros(0, int), np.concatenate(seen_loss) if seen_loss else np.zeros(0)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 16) -> list[dict[str, torch.Tensor]]:
    """Run the model in eval mode over ``(N, S, S)`` images (on the model's device); one output
    dict of CPU tensors per batch."""
    model.eval()
    params = list(model.parameters()) if isinstance(model, nn.Module) else []  # ONNX runners have none
    device = params[0].device if params else torch.device("cpu")
    outs = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32))[:, None]
        outs.append({k: v.cpu() for k, v in model(x.to(device)).items()})
    return outs


class CsvLog:
    """Append-only CSV log (one row per epoch). When a row brings new columns (validation
    figures appear only on validation epochs), the file is rewritten with the wider header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] = []
        self.rows: list[dict[str, Any]] = []
        if path.is_file():
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or [])
                self.rows = list(reader)

    def write(self, row: dict[str, Any]) -> None:
        row = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), **row}
        self.rows.append(row)
        new_fields = [k for k in row if k not in self.fields]
        if new_fields or not self.path.is_file():
            self.fields += new_fields
            with open(self.path, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self.fields)
                w.writeheader()
                w.writerows(self.rows)
            return
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields).writerow(row)


def save_training_state(path: Path, **state: Any) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_training_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)
