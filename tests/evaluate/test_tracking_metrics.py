import math

from livus.evaluate.tracking import (
    PredictedLesion,
    TrackingMetrics,
    TrueLesion,
    evaluate_clip,
    match_frame,
    match_score,
)


def _true(lid, x, y, r=10.0):
    return TrueLesion(lid, [[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r]])


def _pred(tid, x, y, r=10.0):
    return PredictedLesion(tid, (x, y), [x - r, y - r, x + r, y + r])


def test_match_score_centre_inside_or_iou():
    t = _true(1, 50, 50)
    assert match_score(t, _pred(1, 52, 48)) > 1.0  # centre inside: IoU + 1
    assert match_score(t, _pred(1, 200, 200)) == 0.0
    # centre just outside the outline but the boxes overlap a lot (IoU 0.6): still a match
    assert match_score(t, PredictedLesion(1, (61.0, 50.0), [45, 40, 65, 60])) == 0.6


def test_perfect_tracks():
    truth = [[_true(1, 50 + 5 * f, 50), _true(2, 200, 100 + 3 * f)] for f in range(6)]
    pred = [[_pred(7, 50 + 5 * f, 51), _pred(9, 201, 100 + 3 * f)] for f in range(6)]
    m = evaluate_clip(truth, pred).metrics
    assert (m.id_switches, m.fragmentations, m.false_tracks) == (0, 0, 0)
    assert m.track_recall == 1.0 and m.frame_recall == 1.0 and m.tracks_per_lesion == 1.0
    assert (m.n_true_lesions, m.n_predicted_tracks, m.n_true_observations) == (2, 2, 12)


def test_id_switch_and_coverage():
    truth = [[_true(1, 50, 50)] for _ in range(5)]
    pred = [[_pred(1 if f < 3 else 2, 50, 50)] for f in range(5)]
    res = evaluate_clip(truth, pred)
    m = res.metrics
    assert m.id_switches == 1 and m.tracks_per_lesion == 2.0
    assert m.covered_lesions == 1  # track 1 on 3 of 5 frames ≥ 50%
    assert res.majority_track(1) == 1
    pred = [[_pred(f + 1, 50, 50)] for f in range(5)]  # a new id every frame
    m = evaluate_clip(truth, pred).metrics
    assert m.id_switches == 4 and m.covered_lesions == 0 and math.isclose(m.track_recall, 0.0)


def test_fragmentation_only_when_visible_and_missed():
    truth = [[_true(1, 50, 50)] for _ in range(5)]
    pred = [[_pred(1, 50, 50)], [_pred(1, 50, 50)], [], [_pred(1, 50, 50)], [_pred(1, 50, 50)]]
    m = evaluate_clip(truth, pred).metrics
    assert (m.fragmentations, m.id_switches, m.n_matched_observations) == (1, 0, 4)
    # the lesion leaves the image plane for a frame: no fragmentation
    truth[2] = []
    m = evaluate_clip(truth, pred).metrics
    assert m.fragmentations == 0 and m.frame_recall == 1.0


def test_false_track_and_sum():
    truth = [[_true(1, 50, 50)] for _ in range(4)]
    pred = [[_pred(1, 50, 50), _pred(5, 300, 300)] for _ in range(4)]
    a = evaluate_clip(truth, pred).metrics
    assert a.false_tracks == 1 and a.n_predicted_tracks == 2
    total = a + a
    assert isinstance(total, TrackingMetrics) and total.n_clips == 2 and total.false_tracks == 2
    assert total.to_dict()["track_recall"] == 1.0


def test_previous_partner_is_kept():
    t = [_true(1, 50, 50)]
    preds = [_pred(3, 50, 50), _pred(4, 55, 50)]  # both may match; 3 overlaps more
    assert match_frame(t, preds) == {1: 3}
    assert match_frame(t, preds, previous={1: 4}) == {1: 4}
