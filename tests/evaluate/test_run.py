"""evaluate_results: stem matching, files written, figures on a hand-made dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livus.evaluate.run import evaluate_results
from livus.io.dataset import ImageRecord, LesionAnnotation, save_dataset, write_png
from livus.types import FrameResult, Lesion


def _sq(x: float, y: float, s: float) -> list[list[float]]:
    return [[x, y], [x + s, y], [x + s, y + s], [x, y + s]]


def test_evaluate_results_end_to_end(tmp_path) -> None:
    data = tmp_path / "ds"
    recs = []
    for i, (cls, les) in enumerate([("benign", [_sq(10, 10, 20)]), ("normal", []), ("malignant", [_sq(40, 40, 50)])]):
        write_png(data / "images" / f"case_{i}.png", np.zeros((100, 100), np.uint8))
        recs.append(ImageRecord(id=i + 1, file_name=f"images/case_{i}.png", width=100, height=100, image_class=cls,
                                liver_polygon=_sq(0, 0, 90), lesions=[LesionAnnotation(p) for p in les]))
    recs.append(ImageRecord(id=9, file_name="images/not_analysed.png", width=100, height=100, image_class="normal"))
    save_dataset(data, recs)
    results = [
        # exact hit with the exact outline and liver
        FrameResult(source="/elsewhere/case_0.jpg", frame_index=0, image_size_px=(100, 100), liver_polygon_px=_sq(0, 0, 90),
                    lesions=[Lesion(1, 0.9, (20.0, 20.0), 28.0, 20.0, 0.0, polygon_px=_sq(10, 10, 20))]),
        # a false positive on the normal image, no liver reported
        FrameResult(source="case_1.png", frame_index=0, image_size_px=(100, 100),
                    lesions=[Lesion(1, 0.8, (70.0, 20.0), 10.0, 10.0, 0.0)]),
        # the mass is missed
        FrameResult(source="case_2.png", frame_index=0, image_size_px=(100, 100), liver_polygon_px=_sq(0, 0, 90)),
    ]
    res_dir = tmp_path / "res"
    res_dir.mkdir()
    (res_dir / "results.jsonl").write_text("\n".join(json.dumps(r.to_json_dict()) for r in results) + "\n")
    m = evaluate_results(res_dir, data, None)
    assert (m.n_images, m.n_lesions, m.n_unmatched_records) == (3, 2, 1)
    assert m.sensitivity_at_fp == pytest.approx({"0.1": 0.5, "0.25": 0.5, "0.5": 0.5, "1": 0.5})
    assert m.sensitivity_by_size["lt60"] == 1.0 and m.sensitivity_by_size["60to150"] == 0.0
    assert m.mass_dice == pytest.approx(0.5)  # 1.0 and a missed mass (0)
    assert m.liver_dice == pytest.approx(2 / 3)  # the normal image reported no liver
    assert m.long_axis_error_px == pytest.approx(abs(28.0 - 20 * np.sqrt(2)), abs=1e-6)
    assert (res_dir / "metrics.json").is_file() and (res_dir / "froc.png").is_file()
    assert "mass Dice 0.500" in m.summary_text()
    out = tmp_path / "out"
    evaluate_results(res_dir, data, out)
    assert json.loads((out / "metrics.json").read_text())["n_lesions"] == 2
    # classification figures and the HTML page come with it: three-way label (benign image has a
    # lesion without malignancy → benign; normal image with an FP → benign; missed mass → normal)
    c = json.loads((out / "metrics.json").read_text())["classification"]
    assert c["confusion"] == [[0, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert c["three_way_accuracy"] == pytest.approx(1 / 3)
    assert (out / "metrics.html").is_file() and (out / "confusion.png").is_file()


def test_clip_frames_pair_with_the_clip_file(tmp_path) -> None:
    from livus.evaluate.run import pair_results

    recs = [ImageRecord(id=k, file_name=f"clips/c1/f{k:04d}.png", width=10, height=10, clip_id="c1", frame_index=k)
            for k in range(3)]
    res = [FrameResult(source="/x/c1.avi", frame_index=2, image_size_px=(10, 10))]
    got, got_res, missing = pair_results(recs, res)
    assert [r.frame_index for r in got] == [2] and got_res[0] is res[0] and missing == 2


def test_liver_dice_per_image() -> None:
    from livus.evaluate.run import liver_dice

    rec = ImageRecord(id=1, file_name="a.png", width=100, height=100, liver_polygon=_sq(0, 0, 50))
    half = FrameResult(source="a.png", frame_index=0, image_size_px=(100, 100), liver_polygon_px=_sq(0, 0, 50)[:2] + [[50, 25], [0, 25]])
    assert liver_dice(rec, half) == pytest.approx(2 * 0.5 / 1.5, abs=0.02)
    assert liver_dice(rec, FrameResult(source="a.png", frame_index=0, image_size_px=(100, 100))) == 0.0
    assert liver_dice(ImageRecord(id=2, file_name="b.png", width=100, height=100), half) is None
