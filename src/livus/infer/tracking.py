"""Link per-frame lesion detections of a clip into lesion tracks with stable ids.

Association is greedy on a cost that mixes box IoU and centre distance (normalised by lesion
size) against each track's predicted position (constant-velocity motion) or its last position,
whichever fits better. A track is closed
after ``max_missed_updates`` analysed frames in a row without a match, counted in updates and
not in frame numbers: a clip's keyframes are several frames apart (and unevenly spaced when
chosen by quality), so a frame-number limit closed tracks between keyframes even when the
lesion was found in every one (``benchmarks/clip_tracking.py`` measures it). Written by hand:
the trackers in common libraries (SORT/ByteTrack packages) pull in heavy dependencies for what
is a few lines here. All coordinates are original-image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from livus.types import Lesion, LesionTrack, box_iou


@dataclass
class _ActiveTrack:
    track: LesionTrack
    center: np.ndarray
    velocity: np.ndarray
    size_px: float
    last_frame: int
    weights: list[float] = field(default_factory=list)
    missed: int = 0  # updates in a row without a match


@dataclass
class LesionTracker:
    """Greedy frame-to-frame association.

    ``max_center_dist`` is in units of the lesion's long axis; ``max_missed_updates`` is how
    many updates (analysed frames, whatever their spacing) in a row a track may go unmatched
    before it is closed.
    """

    max_center_dist: float = 1.0
    min_iou: float = 0.1
    max_missed_updates: int = 5
    _active: list[_ActiveTrack] = field(default_factory=list, repr=False)
    _done: list[_ActiveTrack] = field(default_factory=list, repr=False)
    _next_id: int = field(default=1, repr=False)

    def update(self, frame_index: int, lesions: list[Lesion], frame_quality: float = 1.0, source: str = "") -> None:
        """Add one frame's lesions (frames in time order); sets ``lesion.track_id`` on each."""
        pairs = []
        for ti, t in enumerate(self._active):
            for li, les in enumerate(lesions):
                cost = self._pair_cost(t, les, frame_index)
                if cost is not None:
                    pairs.append((cost, ti, li))
        pairs.sort()
        used_t, used_l = set(), set()
        for _, ti, li in pairs:
            if ti in used_t or li in used_l:
                continue
            used_t.add(ti)
            used_l.add(li)
            self._extend(self._active[ti], frame_index, lesions[li], frame_quality)
        for ti, t in enumerate(list(self._active)):
            t.missed = 0 if ti in used_t else t.missed + 1
            if t.missed > self.max_missed_updates:
                self._active.remove(t)
                self._done.append(t)
        for li, les in enumerate(lesions):
            if li not in used_l:
                track = LesionTrack(track_id=self._next_id, source=source)
                self._next_id += 1
                at = _ActiveTrack(track, np.asarray(les.center_px, float), np.zeros(2), les.long_axis_px, frame_index)
                self._active.append(at)
                self._extend(at, frame_index, les, frame_quality, new=True)

    def _pair_cost(self, t: _ActiveTrack, les: Lesion, frame_index: int) -> float | None:
        """``distance / size - IoU`` of a detection against the track's predicted position
        (constant velocity) or its last position, whichever fits better; ``None`` when neither
        passes the gate. The last position is kept as a candidate because a velocity estimated
        from noisy detection centres overshoots (in the simulated clips, matching against the
        prediction alone split tracks: ``docs/clips.md``)."""
        c = np.asarray(les.center_px, float)
        scale = max(t.size_px, les.long_axis_px, 1.0)
        last_box = np.asarray(t.track.observations[-1][1].bbox_px)
        best = None
        for shift in (t.velocity * (frame_index - t.last_frame), np.zeros(2)):
            dist = float(np.linalg.norm(c - t.center - shift)) / scale
            iou = box_iou((last_box + np.tile(shift, 2)).tolist(), les.bbox_px)
            if dist <= self.max_center_dist or iou >= self.min_iou:
                best = dist - iou if best is None else min(best, dist - iou)
        return best

    def _extend(self, t: _ActiveTrack, frame_index: int, les: Lesion, quality: float, new: bool = False) -> None:
        c = np.asarray(les.center_px, float)
        if not new:
            gap = max(frame_index - t.last_frame, 1)
            t.velocity = 0.5 * t.velocity + 0.5 * (c - t.center) / gap
        t.center, t.size_px, t.last_frame = c, 0.5 * (t.size_px + les.long_axis_px), frame_index
        les.track_id = t.track.track_id
        t.track.observations.append((frame_index, les))
        t.weights.append(observation_weight(les.score, quality))

    def finish(self, min_observations: int = 1) -> list[LesionTrack]:
        """Close all tracks and aggregate their scores; tracks seen fewer times are dropped."""
        all_tracks = self._done + self._active
        self._done, self._active = [], []
        out = []
        for t in sorted(all_tracks, key=lambda a: a.track.track_id):
            if len(t.track.observations) < min_observations:
                continue
            aggregate_track(t.track, t.weights)
            out.append(t.track)
        return out


def observation_weight(score: float, frame_quality: float) -> float:
    """Attention weight of one observation: detection confidence (0–1) × frame-quality weight
    (1 for a good frame, ``livus.infer.clip.LOW_QUALITY_WEIGHT`` for a low-quality one)."""
    return max(score, 1e-3) * max(frame_quality, 1e-3)


def attention_weighted_mean(values: list[float], weights: list[float]) -> float:
    """Σ a·v / Σ a with softmax-sharpened weights ``a = exp(4 (w - max w))`` (confident, good
    frames dominate)."""
    w = np.asarray(weights, float)
    w = np.exp(4.0 * (w - w.max()))
    return float(np.sum(w * np.asarray(values, float)) / np.sum(w))


AGGREGATIONS = ("attention", "mean", "max")


def aggregate_values(values: list[float], weights: list[float], method: str = "attention") -> float:
    """One lesion-level value from per-frame ``values``: ``attention`` (the default,
    :func:`attention_weighted_mean`), plain ``mean`` or ``max`` (weights ignored by the last two)."""
    if method == "attention":
        return attention_weighted_mean(values, weights)
    if method == "mean":
        return float(np.mean(values))
    if method == "max":
        return float(np.max(values))
    raise ValueError(f"unknown aggregation {method!r}; known: {', '.join(AGGREGATIONS)}")


def aggregate_track(track: LesionTrack, weights: list[float]) -> None:
    """Lesion-level score, malignancy and size from the track's frames."""
    lesions = [les for _, les in track.observations]
    track.score = attention_weighted_mean([les.score for les in lesions], weights)
    mals = [(les.malignancy, w) for les, w in zip(lesions, weights) if les.malignancy is not None]
    if mals:
        track.malignancy = attention_weighted_mean([m for m, _ in mals], [w for _, w in mals])
    sizes = [(les.long_axis_mm, les.short_axis_mm, w) for les, w in zip(lesions, weights) if les.long_axis_mm is not None]
    if sizes:
        # the sonographer reports the largest reliable diameter: take the best-weighted frame's.
        best = max(sizes, key=lambda s: s[2])
        track.long_axis_mm, track.short_axis_mm = round(best[0], 2), round(best[1], 2)


def tracks_from_single_frames(lesions_per_frame: list[tuple[str, list[Lesion]]]) -> list[LesionTrack]:
    """Each lesion of independent still images is its own track (no linking across images)."""
    tracks = []
    for source, lesions in lesions_per_frame:
        for les in lesions:
            t = LesionTrack(track_id=len(tracks) + 1, source=source, observations=[(0, les)])
            les.track_id = t.track_id
            aggregate_track(t, [max(les.score, 1e-3)])
            tracks.append(t)
    return tracks
