import numpy as np
import pytest

from livus.evaluate.diagnosis import diagnosis_metrics, predicted_image_class, write_diagnosis_outputs
from livus.io.dataset import ImageRecord, LesionAnnotation
from livus.types import FrameResult, Lesion


def _square(cx, cy, r=10):
    return [[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]]


def _rec(i, cls, lesions):
    return ImageRecord(id=i, file_name=f"images/{i}.png", width=200, height=200, image_class=cls,
                       lesions=[LesionAnnotation(polygon_px=_square(*c), malignant=m) for c, m in lesions])


def _res(i, lesions):
    return FrameResult(source=f"{i}.png", frame_index=0, image_size_px=(200, 200),
                       lesions=[Lesion(id=k, score=s, center_px=c, long_axis_px=20, short_axis_px=20, angle_deg=0,
                                       malignancy=mal) for k, (c, s, mal) in enumerate(lesions)])


def test_perfect_separation_and_three_way():
    recs = [_rec(1, "malignant", [((50, 50), True)]), _rec(2, "benign", [((100, 100), False)]),
            _rec(3, "normal", []), _rec(4, "malignant", [((60, 60), True)])]
    ress = [_res(1, [((50, 50), 0.9, 0.8)]), _res(2, [((100, 100), 0.9, 0.2), ((10, 10), 0.2, 0.9)]),
            _res(3, []), _res(4, [((150, 150), 0.9, 0.9)])]  # image 4: lesion missed, FP elsewhere
    m = diagnosis_metrics(recs, ress, threshold=0.5, score_threshold=0.5)
    assert m.n_lesions_scored == 2 and m.n_lesions_missed == 1
    assert m.malignancy_auc == 1.0 and m.sensitivity == 1.0 and m.specificity == 1.0
    # image 2's low-score FP (malignancy 0.9) is below the detection threshold: benign
    assert m.confusion == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]
    assert m.three_way_accuracy == 1.0


def test_inverted_scores_give_auc_zero(tmp_path):
    recs = [_rec(i, "malignant" if i % 2 else "benign", [((50, 50), bool(i % 2))]) for i in range(6)]
    ress = [_res(i, [((50, 50), 0.9, 0.2 if i % 2 else 0.8)]) for i in range(6)]
    m = diagnosis_metrics(recs, ress)
    assert m.malignancy_auc == 0.0 and m.sensitivity == 0.0
    files = write_diagnosis_outputs(m, tmp_path)
    assert {p.name for p in files} == {"roc.png", "reliability.png", "confusion.png"}
    assert m.to_json_dict()["malignancy_auc"] == 0.0


def test_image_label_wins_when_present():
    r = _res(1, [])
    r.image_label = {"normal": 0.1, "benign": 0.2, "malignant": 0.7}
    assert predicted_image_class(r, 0.5, 0.0) == "malignant"
    assert np.isnan(diagnosis_metrics([], []).three_way_accuracy)


def test_metrics_page_embeds_plots(tmp_path):
    from livus.evaluate.page import write_metrics_page

    recs = [_rec(i, "malignant" if i % 2 else "benign", [((50, 50), bool(i % 2))]) for i in range(6)]
    ress = [_res(i, [((50, 50), 0.9, 0.8 if i % 2 else 0.3)]) for i in range(6)]
    m = diagnosis_metrics(recs, ress)
    plots = write_diagnosis_outputs(m, tmp_path)
    page = write_metrics_page(tmp_path, {**m.to_json_dict(), "mass_dice": 0.5}, plots).read_text()
    assert page.count("data:image/png;base64") == 3
    assert "Malignancy AUC" in page and "1.000" in page and "0.500" in page
