"""Training data for the detector: a model-space cache of a livus dataset, target maps and a
torch ``Dataset`` with augmentation.

Every image goes once through ``livus.preprocess.pipeline.preprocess_frame`` — the same call
the inference pipeline makes — so training and inference inputs match. The cache holds, in
MODEL pixels (``S × S``): the float image, the lesion instance mask (value k = k-th lesion),
the liver mask, the valid (fan) mask; and per image its letterbox, class and file stem so
validation results can be mapped back to ORIGINAL pixels.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from livus.augment_scanner import scanner_augment
from livus.config import PreprocessConfig
from livus.io.dataset import Dataset, ImageRecord
from livus.models.decode import angle_to_orient, pixel_to_cell
from livus.preprocess.geometry import Letterbox
from livus.shapes import ellipse_from_polygon, polygon_mask
from livus.types import Frame
from livus.vocab import IMAGE_CLASSES

STRIDE = 4


@dataclass
class ModelSpaceCache:
    """Preprocessed images of a dataset in model pixels (arrays stacked along axis 0)."""

    images: np.ndarray  # (N, S, S) float32 [0, 1]
    lesion_masks: np.ndarray  # (N, S, S) uint8 instance labels
    liver_masks: np.ndarray  # (N, S, S) uint8 0/1
    liver_valid: np.ndarray  # (N,) bool: the image has a liver outline
    valid_masks: np.ndarray  # (N, S, S) uint8 fan
    letterboxes: list[Letterbox]
    classes: list[str]
    stems: list[str]

    def __len__(self) -> int:
        return len(self.stems)

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, idx: np.ndarray | list[int]) -> ModelSpaceCache:
        idx = np.asarray(idx, dtype=np.int64)
        return ModelSpaceCache(
            self.images[idx], self.lesion_masks[idx], self.liver_masks[idx], self.liver_valid[idx],
            self.valid_masks[idx], [self.letterboxes[i] for i in idx], [self.classes[i] for i in idx],
            [self.stems[i] for i in idx],
        )


def concat_caches(a: ModelSpaceCache, b: ModelSpaceCache) -> ModelSpaceCache:
    """Both caches' images, ``a`` first (same model size required)."""
    if a.size != b.size:
        raise ValueError(f"cannot join caches of sizes {a.size} and {b.size}")
    return ModelSpaceCache(
        np.concatenate([a.images, b.images]), np.concatenate([a.lesion_masks, b.lesion_masks]),
        np.concatenate([a.liver_masks, b.liver_masks]), np.concatenate([a.liver_valid, b.liver_valid]),
        np.concatenate([a.valid_masks, b.valid_masks]), a.letterboxes + b.letterboxes, a.classes + b.classes,
        a.stems + b.stems,
    )


def record_stem(rec: ImageRecord) -> str:
    """Name by which results are matched to a record: the image file's stem."""
    return Path(rec.file_name).stem


def frame_for_record(ds: Dataset, rec: ImageRecord) -> Frame:
    """The record's image as a ``Frame`` (what the inference pipeline would read)."""
    return Frame(
        pixels=ds.read_image(rec), source=str(ds.image_path(rec)), pixel_spacing_mm=rec.pixel_spacing_mm,
        metadata={"device": rec.device} if rec.device else {},
    )


def build_cache(ds: Dataset, pcfg: PreprocessConfig, records: list[ImageRecord] | None = None, progress: bool = False) -> ModelSpaceCache:
    """Preprocess every record once (``preprocess_frame``) and map its labels to model pixels.

    Each image gets its own fan detection (no ``FanCache``): dataset images of one size come
    from different scans, and the inference pipeline analyses single images the same way.
    """
    from livus.preprocess.pipeline import preprocess_frame

    records = list(ds) if records is None else records
    imgs, les, liv, lv, val, lbs, cls, stems = [], [], [], [], [], [], [], []
    it = records
    if progress:
        from tqdm import tqdm

        it = tqdm(records, desc="preprocess", unit="img")
    for rec in it:
        frame = frame_for_record(ds, rec)
        pre = preprocess_frame(frame, pcfg)
        lb = pre.letterbox
        imgs.append(pre.image.astype(np.float32))
        les.append(lb.mask_to_model(ds.read_mask(rec)))
        liv.append(lb.mask_to_model(polygon_mask(rec.liver_polygon, rec.width, rec.height)))
        lv.append(rec.liver_polygon is not None and len(rec.liver_polygon) >= 3)
        val.append(pre.valid_mask.astype(np.uint8))
        lbs.append(lb)
        cls.append(rec.image_class or "unknown")
        stems.append(record_stem(rec))
    return ModelSpaceCache(np.stack(imgs), np.stack(les), np.stack(liv), np.array(lv, bool), np.stack(val), lbs, cls, stems)


def cache_fingerprint(ds: Dataset, records: list[ImageRecord], pcfg: PreprocessConfig) -> str:
    """SHA-256 over what a cache is built from: the preprocessing settings, every record's labels
    and the bytes of its image and mask files. Two datasets with the same image count (a
    re-drawn simulated set, say) get different fingerprints, so a run folder never silently
    trains on a stale cache."""
    h = hashlib.sha256(json.dumps(asdict(pcfg), sort_keys=True, default=str).encode())
    for rec in records:
        h.update(json.dumps(asdict(rec), sort_keys=True, default=str).encode())
        for rel in (rec.file_name, rec.mask_file):
            if rel and (ds.root / rel).is_file():
                h.update((ds.root / rel).read_bytes())
    return h.hexdigest()


def save_cache(cache: ModelSpaceCache, path: Path, fingerprint: str = "") -> None:
    """Write the cache (images as float16) with the ``cache_fingerprint`` it was built for."""
    lb = np.array([[b.crop_x0, b.crop_y0, b.crop_w, b.crop_h, b.scale, b.pad_x, b.pad_y, b.size] for b in cache.letterboxes])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, images=cache.images.astype(np.float16), lesion_masks=cache.lesion_masks, liver_masks=cache.liver_masks,
        liver_valid=cache.liver_valid, valid_masks=cache.valid_masks, letterboxes=lb, classes=np.array(cache.classes),
        stems=np.array(cache.stems), fingerprint=np.array(fingerprint),
    )


def saved_fingerprint(path: Path) -> str:
    """The fingerprint a cache file was saved with ('' for caches written before fingerprints)."""
    with np.load(path) as z:
        return str(z["fingerprint"]) if "fingerprint" in z.files else ""


def load_cache(path: Path) -> ModelSpaceCache:
    z = np.load(path)
    lbs = [Letterbox(float(r[0]), float(r[1]), int(r[2]), int(r[3]), float(r[4]), float(r[5]), float(r[6]), int(r[7])) for r in z["letterboxes"]]
    return ModelSpaceCache(
        z["images"].astype(np.float32), z["lesion_masks"], z["liver_masks"], z["liver_valid"], z["valid_masks"], lbs,
        [str(c) for c in z["classes"]], [str(s) for s in z["stems"]],
    )


# ---- targets --------------------------------------------------------------------------------


def instance_ellipses(instance_mask: np.ndarray, min_area_px: int = 3) -> list[list[float]]:
    """Oriented ellipse ``[cx, cy, long, short, angle]`` (model pixels, largest-extent axes as
    in ``ellipse_from_polygon``) of each instance in a label mask."""
    out = []
    for k in np.unique(instance_mask):
        if k == 0:
            continue
        m = (instance_mask == k).astype(np.uint8)
        if int(m.sum()) < min_area_px:
            continue
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        pts = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
        if len(pts) < 3:
            continue
        cx, cy, long_px, short_px, ang = ellipse_from_polygon(pts.tolist())
        # contour points are pixel centres: the outline extends half a pixel further
        out.append([cx, cy, long_px + 1.0, short_px + 1.0, ang])
    return out


def gaussian_sigma_cells(long_px: float, short_px: float) -> float:
    """Spread (stride-4 cells) of a lesion's centre Gaussian: grows with its size."""
    return max(0.7, 0.12 * math.sqrt(max(long_px, 1.0) * max(short_px, 1.0)) / STRIDE)


def build_targets(instance_mask: np.ndarray, liver_mask: np.ndarray, liver_valid: bool) -> dict[str, np.ndarray]:
    """Dense training targets (see ``livus.models.losses``) from model-pixel masks."""
    s = instance_mask.shape[0]
    h = w = s // STRIDE
    heat = np.zeros((1, h, w), np.float32)
    axes = np.zeros((2, h, w), np.float32)
    orient = np.zeros((2, h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    reg = np.zeros((1, h, w), np.float32)
    ow = np.zeros((1, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for cx, cy, long_px, short_px, ang in instance_ellipses(instance_mask):
        u, v = float(pixel_to_cell(cx)), float(pixel_to_cell(cy))
        ci, ri = int(np.clip(math.floor(u + 0.5), 0, w - 1)), int(np.clip(math.floor(v + 0.5), 0, h - 1))
        sig = gaussian_sigma_cells(long_px, short_px)
        g = np.exp(-((xx - ci) ** 2 + (yy - ri) ** 2) / (2 * sig**2)).astype(np.float32)
        heat[0] = np.maximum(heat[0], g)
        heat[0, ri, ci] = 1.0
        axes[:, ri, ci] = np.log([max(long_px, 1.0), max(short_px, 1.0)])
        orient[:, ri, ci] = angle_to_orient(ang)
        offset[:, ri, ci] = [u - ci, v - ri]
        reg[0, ri, ci] = 1.0
        ow[0, ri, ci] = min(1.0, 4.0 * (long_px - short_px) / max(long_px, 1e-6))
    return {
        "heatmap": heat, "axes": axes, "orient": orient, "offset": offset, "reg_mask": reg, "orient_weight": ow,
        "lesion_mask": (instance_mask > 0).astype(np.float32)[None],
        "liver_mask": liver_mask.astype(np.float32)[None],
        "liver_valid": np.float32(1.0 if liver_valid else 0.0),
    }


def image_class_index(name: str) -> int:
    """0/1/2 for normal/benign/malignant (``IMAGE_CLASSES`` order), -1 for anything else."""
    return IMAGE_CLASSES.index(name) if name in IMAGE_CLASSES else -1


# ---- augmentation ---------------------------------------------------------------------------


def _random_affine(size: int, rng: np.random.Generator) -> np.ndarray:
    """Random similarity transform about the image centre (scale 0.8–1.25, ±12°, ±8% shift)."""
    scale = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    angle = float(rng.uniform(-12, 12))
    m = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, scale)
    m[:, 2] += rng.uniform(-0.08, 0.08, 2) * size
    return m


def augment_sample(
    image: np.ndarray, lesion: np.ndarray, liver: np.ndarray, valid: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Joint geometric (flip, similarity) and grey-level (gain, gamma, noise) augmentation of a
    model-space sample. Written with cv2 directly: the masks must move with the image and
    the label values must survive (nearest neighbour)."""
    s = image.shape[0]
    if rng.random() < 0.5:
        image, lesion, liver, valid = (np.ascontiguousarray(a[:, ::-1]) for a in (image, lesion, liver, valid))
    if rng.random() < 0.8:
        m = _random_affine(s, rng)
        image = cv2.warpAffine(image, m, (s, s), flags=cv2.INTER_LINEAR, borderValue=0)
        lesion, liver, valid = (cv2.warpAffine(a, m, (s, s), flags=cv2.INTER_NEAREST, borderValue=0) for a in (lesion, liver, valid))
    image = image.astype(np.float32)
    if rng.random() < 0.8:
        gain = rng.uniform(0.8, 1.2)
        gamma = float(np.exp(rng.uniform(-0.3, 0.3)))
        image = np.clip(image * gain, 0, 1) ** gamma
    if rng.random() < 0.3:
        image = image * rng.normal(1.0, 0.08, image.shape).astype(np.float32)
    image = np.clip(image, 0, 1) * (valid > 0)
    return image.astype(np.float32), lesion, liver, valid


def copy_paste_lesion(
    image: np.ndarray, lesion: np.ndarray, liver: np.ndarray, src_image: np.ndarray, src_lesion: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paste one lesion of another sample (with a soft edge) at a random place inside this
    sample's liver, away from its own lesions. Returns the new image and instance mask
    (unchanged when no place fits)."""
    labels = [k for k in np.unique(src_lesion) if k]
    if not labels:
        return image, lesion
    k = int(rng.choice(labels))
    m = (src_lesion == k).astype(np.uint8)
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    ph, pw = y1 - y0, x1 - x0
    s = image.shape[0]
    if ph >= s // 2 or pw >= s // 2:
        return image, lesion
    free = (liver > 0) & (lesion == 0)
    ys_t, xs_t = np.nonzero(free[: s - ph, : s - pw])
    if len(ys_t) == 0:
        return image, lesion
    for _ in range(10):
        j = int(rng.integers(len(ys_t)))
        ty, tx = int(ys_t[j]), int(xs_t[j])
        region = free[ty : ty + ph, tx : tx + pw]
        pm = m[y0:y1, x0:x1] > 0
        if region[pm].mean() > 0.9:
            break
    else:
        return image, lesion
    alpha = cv2.GaussianBlur(pm.astype(np.float32), (5, 5), 1.0)
    img = image.copy()
    patch = src_image[y0:y1, x0:x1]
    img[ty : ty + ph, tx : tx + pw] = alpha * patch + (1 - alpha) * img[ty : ty + ph, tx : tx + pw]
    les = lesion.copy()
    new_label = int(les.max()) + 1
    les[ty : ty + ph, tx : tx + pw][pm] = new_label
    return img, les


class DetectorTrainSet(torch.utils.data.Dataset):
    """Samples of a ``ModelSpaceCache`` with targets; optional augmentation and copy-paste."""

    def __init__(
        self, cache: ModelSpaceCache, augment: bool = True, copy_paste_prob: float = 0.0, seed: int = 0, backend: str = "builtin",
        scanner_augment: bool = False, diffuse_on_real_prob: float = 0.0, diffuse_mix: dict[str, float] | None = None,
        n_simulated: int = 0, simulated_liver_loss: bool = True,
    ) -> None:
        """``diffuse_on_real_prob``: share of the real images (all but the last ``n_simulated``
        of ``cache``) that get a diffuse liver disease drawn from ``diffuse_mix`` onto their liver
        (``livus.simulate.diffuse_on_real``; their lesions keep their appearance and labels).
        ``simulated_liver_loss=False``: the simulated images' liver outlines are not a training
        target (``liver_valid`` 0 in their targets); copy-paste into their livers still happens."""
        if backend not in ("builtin", "livus"):
            raise ValueError(f"unknown augmentation backend {backend!r} (builtin | livus)")
        if diffuse_on_real_prob > 0 and not diffuse_mix:
            raise ValueError("diffuse_on_real_prob needs a diffuse_mix")
        self.diffuse_on_real_prob = diffuse_on_real_prob
        self.diffuse_mix = diffuse_mix
        self.n_real = len(cache) - n_simulated
        self.simulated_liver_loss = simulated_liver_loss
        self.cache = cache
        self.augment = augment
        self.backend = backend
        self.copy_paste_prob = copy_paste_prob
        self.scanner_augment = scanner_augment
        self.seed = seed
        self.epoch = 0
        self._with_lesion = [i for i in range(len(cache)) if cache.lesion_masks[i].any()]

    def __len__(self) -> int:
        return len(self.cache)

    def _augment_livus(
        self, i: int, image: np.ndarray, lesion: np.ndarray, liver: np.ndarray, valid: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Augmentation and copy-paste of ``livus.augment`` (albumentations)."""
        from livus import augment as aug

        c = self.cache
        if self.copy_paste_prob > 0 and self._with_lesion and c.liver_valid[i] and rng.random() < self.copy_paste_prob:
            j = int(rng.choice(self._with_lesion))
            values = [int(v) for v in np.unique(c.lesion_masks[j]) if v]
            res = aug.copy_paste_lesion(c.images[j], c.lesion_masks[j], int(rng.choice(values)), image, lesion, liver, valid, rng)
            if res is not None:
                image, lesion = res.image, res.instance_mask
        image, masks = aug.augment_sample(image, {"lesion": lesion, "liver": liver, "valid": valid}, rng)
        return image, masks["lesion"], masks["liver"], masks["valid"]

    def _with_diffuse_disease(
        self, image: np.ndarray, lesion: np.ndarray, liver: np.ndarray, valid: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        from livus.simulate.diffuse import sample_diffuse_spec
        from livus.simulate.diffuse_on_real import with_diffuse_disease

        assert self.diffuse_mix is not None
        spec = sample_diffuse_spec(rng, self.diffuse_mix)
        return with_diffuse_disease(rng, image, spec, liver, valid, keep_mask=lesion)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        c = self.cache
        image, lesion, liver, valid = c.images[i], c.lesion_masks[i], c.liver_masks[i], c.valid_masks[i]
        n_lesions = int(lesion.max())
        if self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, int(i)))
            if self.diffuse_on_real_prob > 0 and i < self.n_real and c.liver_valid[i]:
                # its own stream: the other augmentations draw the same with and without it
                drng = np.random.default_rng((self.seed, self.epoch, int(i), 21))
                if drng.random() < self.diffuse_on_real_prob:
                    image = self._with_diffuse_disease(image, lesion, liver, valid, drng)
            if self.backend == "livus":
                image, lesion, liver, valid = self._augment_livus(i, image, lesion, liver, valid, rng)
            else:
                if self.copy_paste_prob > 0 and self._with_lesion and c.liver_valid[i] and rng.random() < self.copy_paste_prob:
                    j = int(rng.choice(self._with_lesion))
                    image, lesion = copy_paste_lesion(image, lesion, liver, c.images[j], c.lesion_masks[j], rng)
                image, lesion, liver, valid = augment_sample(image, lesion, liver, valid, rng)
            if self.scanner_augment:
                image = scanner_augment(image, valid, rng)
        t = build_targets(lesion, liver, bool(c.liver_valid[i]) and (self.simulated_liver_loss or i < self.n_real))
        out = {k: torch.as_tensor(v) for k, v in t.items()}
        # a pasted lesion changes what the image shows: its image label is then unknown
        pasted = int(lesion.max()) > n_lesions
        out["image_class"] = torch.tensor(-1 if pasted else image_class_index(c.classes[i]))
        out["image"] = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
        out["index"] = torch.tensor(i)
        return out
