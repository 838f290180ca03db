"""Lesion-tracking metrics on clips (MOT style): ID switches, fragmentation, track recall.

Per frame, true lesions (outline polygons) are matched one-to-one to predicted lesions (each
carrying the tracker's ``track_id``). A pair may match when the prediction's centre lies inside
the true outline or when their boxes overlap with IoU ≥ ``min_iou`` (0.3). As in CLEAR-MOT, a
true lesion keeps its previous partner track when that pair still may match; the remaining
pairs are assigned by maximum total overlap (Hungarian, ``scipy.optimize.linear_sum_assignment``).

Per true lesion (over the frames where it is visible, i.e. in the ground truth):

* **ID switch**: the matched track id differs from the one it was last matched to;
* **fragmentation**: its matching is interrupted (matched → unmatched → matched again);
* **covered**: one predicted track is matched to it on ≥ ``min_coverage`` (50%) of its visible
  frames; **track recall** = covered / true lesions;
* ``tracks per lesion``: distinct predicted tracks ever matched to it.

Per predicted track: **false track** when fewer than half of its observations match a true
lesion. All coordinates are image pixels (x right, y down) of the frame they belong to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from livus.types import box_iou


@dataclass
class TrueLesion:
    """One labelled lesion in one frame: stable ``lesion_id`` and outline (image pixels)."""

    lesion_id: int
    polygon_px: list[list[float]]

    @property
    def bbox_px(self) -> list[float]:
        pts = np.asarray(self.polygon_px, float)
        return [float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())]

    def contains(self, point: tuple[float, float]) -> bool:
        """Is ``point`` (x, y) inside the outline (or on it)?"""
        poly = np.asarray(self.polygon_px, np.float32).reshape(-1, 1, 2)
        return cv2.pointPolygonTest(poly, (float(point[0]), float(point[1])), False) >= 0


@dataclass
class PredictedLesion:
    """One tracked detection in one frame: the tracker's id, centre and box (image pixels)."""

    track_id: int
    center_px: tuple[float, float]
    bbox_px: list[float]


def match_score(truth: TrueLesion, pred: PredictedLesion, min_iou: float = 0.3) -> float:
    """Overlap used for assignment: box IoU, +1 when the predicted centre is inside the outline;
    0 when the pair may not match (centre outside and IoU below ``min_iou``)."""
    iou = box_iou(truth.bbox_px, pred.bbox_px)
    inside = truth.contains(pred.center_px)
    if not inside and iou < min_iou:
        return 0.0
    return iou + (1.0 if inside else 0.0)


def match_frame(truths: list[TrueLesion], preds: list[PredictedLesion], previous: dict[int, int] | None = None,
                min_iou: float = 0.3) -> dict[int, int]:
    """One-to-one ``{lesion_id: track_id}`` for one frame; ``previous`` (lesion → track last
    matched) is kept where still allowed, the rest is assigned by maximum total overlap."""
    previous = previous or {}
    scores = np.array([[match_score(t, p, min_iou) for p in preds] for t in truths]).reshape(len(truths), len(preds))
    out: dict[int, int] = {}
    used_t: set[int] = set()
    used_p: set[int] = set()
    for ti, t in enumerate(truths):
        tid = previous.get(t.lesion_id)
        for pi, p in enumerate(preds):
            if tid is not None and p.track_id == tid and pi not in used_p and scores[ti, pi] > 0:
                out[t.lesion_id] = tid
                used_t.add(ti)
                used_p.add(pi)
                break
    free_t = [i for i in range(len(truths)) if i not in used_t]
    free_p = [j for j in range(len(preds)) if j not in used_p]
    if free_t and free_p:
        sub = scores[np.ix_(free_t, free_p)]
        rows, cols = linear_sum_assignment(-sub)
        for r, c in zip(rows, cols):
            if sub[r, c] > 0:
                out[truths[free_t[r]].lesion_id] = preds[free_p[c]].track_id
    return out


@dataclass
class TrackingMetrics:
    """Counts over one or more clips (add them with ``+``); rates are properties."""

    n_clips: int = 0
    n_frames: int = 0
    n_true_lesions: int = 0
    n_true_observations: int = 0  # (lesion, frame) pairs where the lesion is visible
    n_matched_observations: int = 0
    n_predicted_tracks: int = 0
    n_predicted_observations: int = 0
    id_switches: int = 0
    fragmentations: int = 0
    covered_lesions: int = 0
    tracks_matched_to_lesions: int = 0  # Σ over true lesions of distinct matched tracks
    false_tracks: int = 0

    def __add__(self, other: "TrackingMetrics") -> "TrackingMetrics":
        return TrackingMetrics(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def track_recall(self) -> float:
        """Share of true lesions covered by one predicted track on ≥ ``min_coverage`` of frames."""
        return self.covered_lesions / self.n_true_lesions if self.n_true_lesions else float("nan")

    @property
    def frame_recall(self) -> float:
        """Share of visible (lesion, frame) pairs matched to some prediction."""
        return self.n_matched_observations / self.n_true_observations if self.n_true_observations else float("nan")

    @property
    def tracks_per_lesion(self) -> float:
        """Mean number of distinct predicted tracks matched to a true lesion (1 is ideal)."""
        return self.tracks_matched_to_lesions / self.n_true_lesions if self.n_true_lesions else float("nan")

    @property
    def id_switches_per_lesion(self) -> float:
        return self.id_switches / self.n_true_lesions if self.n_true_lesions else float("nan")

    def to_dict(self) -> dict[str, float]:
        d: dict[str, float] = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(track_recall=self.track_recall, frame_recall=self.frame_recall,
                 tracks_per_lesion=self.tracks_per_lesion, id_switches_per_lesion=self.id_switches_per_lesion)
        return d


@dataclass
class ClipMatching:
    """The per-frame matching of one clip and the metrics derived from it."""

    matches: list[dict[int, int]] = field(default_factory=list)  # per frame: lesion_id → track_id
    metrics: TrackingMetrics = field(default_factory=TrackingMetrics)

    def majority_track(self, lesion_id: int) -> int | None:
        """The predicted track matched most often to ``lesion_id`` (``None`` if never)."""
        c = Counter(m[lesion_id] for m in self.matches if lesion_id in m)
        return c.most_common(1)[0][0] if c else None


def evaluate_clip(truth: list[list[TrueLesion]], predicted: list[list[PredictedLesion]], min_iou: float = 0.3,
                  min_coverage: float = 0.5) -> ClipMatching:
    """Match and score one clip; ``truth[k]`` and ``predicted[k]`` are the lesions of its k-th
    evaluated frame (the same frames, in time order)."""
    if len(truth) != len(predicted):
        raise ValueError(f"truth has {len(truth)} frames, predictions {len(predicted)}")
    out = ClipMatching()
    last: dict[int, int] = {}
    matched_before: set[int] = set()
    matched_last_visible: dict[int, bool] = {}  # lesion → was it matched in its last visible frame
    visible: Counter = Counter()
    per_lesion: dict[int, Counter] = {}
    m = out.metrics
    for truths, preds in zip(truth, predicted):
        match = match_frame(truths, preds, last, min_iou)
        out.matches.append(match)
        for t in truths:
            visible[t.lesion_id] += 1
            tid = match.get(t.lesion_id)
            was_matched = matched_last_visible.get(t.lesion_id, False)
            matched_last_visible[t.lesion_id] = tid is not None
            if tid is None:
                continue
            m.n_matched_observations += 1
            if t.lesion_id in last and last[t.lesion_id] != tid:
                m.id_switches += 1
            if t.lesion_id in matched_before and not was_matched:
                m.fragmentations += 1
            last[t.lesion_id] = tid
            matched_before.add(t.lesion_id)
            per_lesion.setdefault(t.lesion_id, Counter())[tid] += 1
    m.n_clips, m.n_frames = 1, len(truth)
    m.n_true_lesions = len(visible)
    m.n_true_observations = sum(visible.values())
    for lid, n in visible.items():
        tracks = per_lesion.get(lid, Counter())
        m.tracks_matched_to_lesions += len(tracks)
        if tracks and tracks.most_common(1)[0][1] >= min_coverage * n:
            m.covered_lesions += 1
    track_obs: Counter = Counter(p.track_id for preds in predicted for p in preds)
    track_hits: Counter = Counter(tid for match in out.matches for tid in match.values())
    m.n_predicted_tracks = len(track_obs)
    m.n_predicted_observations = sum(track_obs.values())
    m.false_tracks = sum(1 for tid, n in track_obs.items() if track_hits[tid] < 0.5 * n)
    return out
