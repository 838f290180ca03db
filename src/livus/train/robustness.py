"""Validation splits for robustness: device-held-out and time-sliced.

* **Device groups** (:func:`device_groups`): images from the same scanner share the export size
  and the fan shape. A group is the dataset's ``device`` string (the image size ``WxH`` for
  imported AUL data, the scanner profile name for simulated data; the size when ``device`` is
  missing); groups with fewer than ``min_group_size`` images are pooled as ``"other"`` so that
  no held-out group is too small to measure. :func:`fan_geometry` gives the fan's opening angle
  and aspect per image so a report can show that the groups differ in geometry, not only size
  (``docs/robustness.md`` lists the AUL groups with their counts per class).
* **Leave one group out** (:func:`leave_one_group_out_splits`): train on every other group,
  test on the held-out one.
* **Time sliced** (:func:`time_sliced_split`): train on the earliest images, test on the latest
  ``fraction`` (by ``acquired_at``); test images of patients already seen in training are
  dropped by default, and frames of one clip never straddle the cut.
  :func:`random_split_like` draws a patient-disjoint random split of the same sizes (the
  reference the time-sliced figures are compared with).
* **Scanner change in time** (:func:`introduce_device_late`): the simulator's acquisition dates
  are drawn independently of the scanner and the scene (no drift over time), so a time-sliced
  split of a plain simulated set is a random split in disguise. This function re-dates the
  images of one device after all others (a department that bought a new scanner), which turns
  the time-sliced split into a test of drift.

Ids are ``ImageRecord.id`` values. Pure functions of the loaded dataset (no files written).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from livus.io.dataset import Dataset, ImageRecord
from livus.shapes import polygon_mask

OTHER_GROUP = "other"


@dataclass(frozen=True)
class FanGeometry:
    """Shape of one image's fan (from its polygon, original pixels).

    ``opening_deg``: angle between the fan's side edges, from the fan width at 20% and 80% of
    its height (0 for a linear probe's rectangle); ``aspect``: fan box width / height;
    ``area_share``: fan area / image area.
    """

    opening_deg: float
    aspect: float
    area_share: float


def fan_geometry(polygon_px: list[list[float]], width: int, height: int) -> FanGeometry:
    """:class:`FanGeometry` of a fan polygon in an image of ``width × height`` pixels."""
    pts = np.asarray(polygon_px, float)
    mask = polygon_mask(polygon_px, width, height)
    y0, y1 = float(pts[:, 1].min()), float(pts[:, 1].max())
    h = max(1.0, y1 - y0)

    def row_width(frac: float) -> float:
        r = int(np.clip(round(y0 + frac * h), 0, height - 1))
        xs = np.nonzero(mask[r])[0]
        return float(xs.max() - xs.min()) if xs.size else 0.0

    spread = max(0.0, row_width(0.8) - row_width(0.2))
    opening = math.degrees(2 * math.atan(spread / 2 / (0.6 * h)))
    aspect = float(pts[:, 0].max() - pts[:, 0].min()) / h
    return FanGeometry(round(opening, 1), round(aspect, 3), round(float(mask.mean()), 4))


def device_of(rec: ImageRecord) -> str:
    """The record's device string, or its image size ``WxH`` when the dataset does not say."""
    return rec.device or f"{rec.width}x{rec.height}"


def device_groups(ds: Dataset | list[ImageRecord], min_group_size: int = 25) -> dict[int, str]:
    """``{image_id: group}``: the device string, or ``"other"`` for devices with fewer than
    ``min_group_size`` images."""
    records = list(ds)
    counts = Counter(device_of(r) for r in records)
    return {r.id: (device_of(r) if counts[device_of(r)] >= min_group_size else OTHER_GROUP) for r in records}


def group_table(ds: Dataset | list[ImageRecord], groups: dict[int, str]) -> dict[str, dict[str, float]]:
    """Per group: image count, counts per ``image_class`` and median fan opening angle/aspect
    (when fan polygons are present). Sorted by size, largest first."""
    per: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in ds:
        per[groups[r.id]].append(r)
    table: dict[str, dict[str, float]] = {}
    for g, recs in sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        row: dict[str, float] = {"images": len(recs)}
        for cls, n in sorted(Counter(r.image_class or "unknown" for r in recs).items()):
            row[cls] = n
        geo = [fan_geometry(r.fan_polygon, r.width, r.height) for r in recs if r.fan_polygon]
        if geo:
            row["fan_opening_deg_median"] = float(np.median([x.opening_deg for x in geo]))
            row["fan_aspect_median"] = float(np.median([x.aspect for x in geo]))
        row["sizes"] = len({(r.width, r.height) for r in recs})
        table[g] = row
    return table


def leave_one_group_out_splits(
    ds: Dataset | list[ImageRecord], groups: dict[int, str] | None = None, min_group_size: int = 25
) -> list[tuple[list[int], list[int], str]]:
    """One ``(train_ids, test_ids, held_out_group)`` per group (largest group first)."""
    records = list(ds)
    groups = groups if groups is not None else device_groups(records, min_group_size)
    names = [g for g, _ in Counter(groups[r.id] for r in records).most_common()]
    if len(names) < 2:
        raise ValueError(f"leave-one-group-out needs at least two device groups, found {names}")
    out = []
    for g in names:
        test = [r.id for r in records if groups[r.id] == g]
        train = [r.id for r in records if groups[r.id] != g]
        out.append((train, test, g))
    return out


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


def time_sliced_split(
    ds: Dataset | list[ImageRecord], fraction: float = 0.2, drop_seen_patients: bool = True
) -> tuple[list[int], list[int]]:
    """``(train_ids, test_ids)``: the latest ``fraction`` of acquisitions (by ``acquired_at``) are
    the test set. A clip counts as one acquisition at its earliest frame time, so its frames stay
    together. With ``drop_seen_patients`` test images of patients that also appear in the
    training part are removed (no patient in both parts).

    Raises ``ValueError`` when any image has no ``acquired_at`` (e.g. the AUL dataset, which
    carries no acquisition dates) or ``fraction`` is not in ``(0, 1)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    records = list(ds)
    missing = [r for r in records if not r.acquired_at]
    if missing:
        raise ValueError(
            f"time-sliced split needs an acquisition date (acquired_at) on every image; {len(missing)} of "
            f"{len(records)} images have none (e.g. {missing[0].file_name}). Imported AUL data carries no dates: "
            "use leave_one_group_out_splits or k-fold instead.")
    units: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in records:
        units[f"clip:{r.clip_id}" if r.clip_id else f"img:{r.id}"].append(r)
    start = {k: min(_parse_time(r.acquired_at) for r in v) for k, v in units.items()}  # type: ignore[arg-type]
    order = sorted(units, key=lambda k: (start[k], k))
    n_images = len(records)
    n_test_target = fraction * n_images
    test_units: list[str] = []
    n_test = 0
    for k in reversed(order):
        if n_test >= n_test_target:
            break
        test_units.append(k)
        n_test += len(units[k])
    test_set = set(test_units)
    train = [r.id for k in order if k not in test_set for r in units[k]]
    test_recs = [r for k in order if k in test_set for r in units[k]]
    if drop_seen_patients:
        seen = {r.patient_id for k in order if k not in test_set for r in units[k] if r.patient_id}
        test_recs = [r for r in test_recs if not r.patient_id or r.patient_id not in seen]
    if not train or not test_recs:
        raise ValueError(f"time-sliced split with fraction {fraction} leaves an empty part "
                         f"({len(train)} train, {len(test_recs)} test images)")
    return train, [r.id for r in test_recs]


def split_cutoff(ds: Dataset | list[ImageRecord], train_ids: list[int], test_ids: list[int]) -> tuple[str, str]:
    """Latest training and earliest test acquisition time (ISO strings) of a time-sliced split."""
    by_id = {r.id: r for r in ds}
    last_train = max(_parse_time(by_id[i].acquired_at) for i in train_ids)  # type: ignore[arg-type]
    first_test = min(_parse_time(by_id[i].acquired_at) for i in test_ids)  # type: ignore[arg-type]
    return last_train.isoformat(), first_test.isoformat()


def random_split_like(
    ds: Dataset | list[ImageRecord], n_train: int, n_test: int, seed: int = 0
) -> tuple[list[int], list[int]]:
    """``(train_ids, test_ids)``: a random split with ``n_train`` / ``n_test`` images (the sizes of
    a time-sliced split), disjoint by patient and by clip: whole patients (records without a
    patient: whole clips or single images) are drawn in random order into the test part until it
    holds ``n_test`` images (the last unit drawn may overshoot; its surplus images are left out),
    then the training part is drawn at random from the other patients' images."""
    records = list(ds)
    if n_train + n_test > len(records):
        raise ValueError(f"{n_train} + {n_test} images requested from {len(records)}")
    units: dict[str, list[ImageRecord]] = defaultdict(list)
    for r in records:
        units[f"patient:{r.patient_id}" if r.patient_id else (f"clip:{r.clip_id}" if r.clip_id else f"img:{r.id}")].append(r)
    rng = np.random.default_rng(seed)
    names = sorted(units)
    order = [names[i] for i in rng.permutation(len(names))]
    test: list[int] = []
    rest: list[int] = []
    for k in order:
        if len(test) < n_test:
            test.extend(r.id for r in units[k])
        else:
            rest.extend(r.id for r in units[k])
    test = test[:n_test]
    if len(rest) < n_train:
        raise ValueError(f"only {len(rest)} images of other patients left for {n_train} training images")
    train = sorted(rng.choice(rest, size=n_train, replace=False).tolist())
    return train, sorted(test)


def introduce_device_late(
    ds: Dataset | list[ImageRecord], device: str, gap_days: float = 1.0
) -> list[ImageRecord]:
    """Copies of the records where every image of ``device`` (:func:`device_of`) is re-dated
    after the latest image of the other devices, keeping the device's own time order and
    spacing (shifted so that its first image comes ``gap_days`` after the others' last).
    Patients scanned on ``device`` keep their ids. Other records are returned unchanged."""
    records = list(ds)
    if any(not r.acquired_at for r in records):
        raise ValueError("introduce_device_late needs an acquisition date (acquired_at) on every image")
    mine = [r for r in records if device_of(r) == device]
    others = [r for r in records if device_of(r) != device]
    if not mine or not others:
        raise ValueError(f"device {device!r} must hold some but not all of the {len(records)} images")
    last_other = max(_parse_time(r.acquired_at) for r in others)  # type: ignore[arg-type]
    first_mine = min(_parse_time(r.acquired_at) for r in mine)  # type: ignore[arg-type]
    shift = last_other - first_mine + timedelta(days=gap_days)
    return [replace(r, acquired_at=(_parse_time(r.acquired_at) + shift).isoformat(timespec="seconds"))  # type: ignore[arg-type]
            if device_of(r) == device else r for r in records]
