"""A study analysed for an English-speaking uploader, read by a Chinese-speaking physician: the
case reasons and the overlay's labels come in Chinese (``case_views``, ``overlay.png?lang=zh``);
the overlay is re-drawn from the original frame by the same renderer and cached."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from livus.report.overlay import OverlayStyle, draw_overlay
from livus.service.auth import create_user
from livus.service.overlay_language import _title_only, overlay_in_language
from livus.service.storage import FrameRecord, Study, StudyFile
from livus.types import FrameResult, Lesion

from .conftest import make_service, png_bytes, ultrasound_like, upload, wait_done

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _result() -> FrameResult:
    les = Lesion(1, 0.91, (160.0, 120.0), 60.0, 40.0, 20.0, long_axis_mm=12.0, short_axis_mm=8.0, malignancy=0.77,
                 track_id=1)
    return FrameResult("liver.png", 0, (320, 240), pixel_spacing_mm=(0.2, 0.2),
                       fan_polygon_px=[[20, 10], [300, 10], [300, 230], [20, 230]], lesions=[les],
                       model={"name": "detector", "version": "test"})


def _decode(content: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture()
def stored_en(tmp_path):
    """A service with one study whose overlay was drawn in English (overlay | Grad-CAM)."""
    svc = make_service(tmp_path / "data")
    data = Path(svc.cfg.data_dir).resolve()
    image = ultrasound_like(320, 240, seed=3)
    result = _result()
    heat = np.zeros((240, 320), np.float32)
    heat[80:160, 110:210] = 1.0
    with svc.state.sm() as db:
        s = Study(source="upload", description="en", status="done")
        db.add(s)
        db.flush()
        rel = Path("studies") / s.uid / "files" / "000" / "liver.png"
        (data / rel).parent.mkdir(parents=True)
        (data / rel).write_bytes(png_bytes(image))
        f = StudyFile(study_id=s.id, original_name="liver.png", stored_path=str(rel))
        db.add(f)
        db.flush()
        overlay_rel = Path("studies") / s.uid / "analysis" / "overlay.png"
        (data / overlay_rel).parent.mkdir(parents=True)
        stored = draw_overlay(image, result, heatmap=heat, language="en")
        cv2.imwrite(str(data / overlay_rel), cv2.cvtColor(stored, cv2.COLOR_RGB2BGR))
        fr = FrameRecord(study_id=s.id, file_id=f.id, frame_index=0, width_px=320, height_px=240,
                         result=result.to_json_dict(), n_lesions=1, overlay_path=str(overlay_rel))
        db.add(fr)
        db.commit()
        frame_uid, study_uid = fr.uid, s.uid
    return svc, frame_uid, image, result, stored, study_uid


def test_overlay_redrawn_in_the_viewers_language(stored_en):
    svc, frame_uid, image, result, stored, study_uid = stored_en
    doc = svc.client("doc")  # a Chinese-speaking physician
    w, gap = 320, OverlayStyle().panel_gap_px
    r = doc.get(f"/api/frames/{frame_uid}/overlay.png?lang=zh")
    assert r.status_code == 200, r.text
    zh = _decode(r.content)
    assert zh.shape == stored.shape
    # left panel: exactly what the renderer draws in Chinese, and not the English one
    assert np.array_equal(zh[:, :w], draw_overlay(image, result, language="zh"))
    assert not np.array_equal(zh[:, :w], stored[:, :w])
    # Grad-CAM panel: the heat map as stored, only the title replaced by the Chinese one
    heat_zh, heat_en = zh[:, w + gap:], stored[:, w + gap:]
    changed = np.nonzero((heat_zh != heat_en).any(axis=2))
    assert changed[0].size and changed[0].max() < 240 // 4 and changed[1].max() < 320 // 2
    title = _title_only(heat_en.shape, result, OverlayStyle(), "zh")
    text_px = title.any(axis=2)
    assert np.array_equal(heat_zh[text_px], title[text_px])
    # in the analysis language the re-drawn overlay is the stored one
    en = _decode(doc.get(f"/api/frames/{frame_uid}/overlay.png?lang=en").content)
    assert np.array_equal(en[:, :w], stored[:, :w])
    # cached beside the study, owner-only
    cached = Path(svc.cfg.data_dir).resolve() / "studies" / study_uid / "overlays" / "zh" / f"{frame_uid}.png"
    assert cached.is_file() and stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert np.array_equal(_decode(doc.get(f"/api/frames/{frame_uid}/overlay.png?lang=zh").content), zh)
    # without lang: as analysed; the researcher's view still goes through the de-identification
    assert np.array_equal(_decode(doc.get(f"/api/frames/{frame_uid}/overlay.png").content), stored)
    assert svc.client("res").get(f"/api/frames/{frame_uid}/overlay.png?lang=zh").status_code == 200


def test_overlay_in_language_refuses_a_layout_that_does_not_fit():
    result = _result()
    with pytest.raises(ValueError):
        overlay_in_language(np.zeros((240, 500, 3), np.uint8), ultrasound_like(320, 240), result, "zh")


@pytest.mark.slow
def test_english_upload_read_in_chinese(tmp_path):
    """A real analysis for an English-speaking physician; a Chinese-speaking one reads it."""
    svc = make_service(tmp_path / "data")
    with svc.state.sm() as db:
        create_user(db, "doc_en", "doctor-en-pass-123", "physician", language="en")
    from fastapi.testclient import TestClient

    with TestClient(svc.app):
        en = svc.client_with("doc_en", "doctor-en-pass-123")
        image = EXAMPLES / "hcc_malignant.png"
        data = image.read_bytes() if image.is_file() else png_bytes(ultrasound_like(480, 360))
        uid = upload(en, [("liver.png", data)], patient_id="P-EN-1")["uid"]
        wait_done(svc, en, uid)
        doc = svc.client("doc")  # a Chinese-speaking physician
        d = doc.get(f"/api/studies/{uid}").json()
        frame = d["frames"][0]
        assert frame["overlay_url"], frame
        zh = _decode(doc.get(frame["overlay_url"] + "?lang=zh").content)
        as_analysed = _decode(doc.get(frame["overlay_url"]).content)
    assert d["status"] == "done", d
    stored = d["case"]["cases"][0]
    assert stored["reasons"] and not any(CJK.search(x) for x in stored["reasons"])  # analysed in English
    view = d["case_views"][0]["text"]
    assert view["en"]["reasons"] == stored["reasons"]
    assert all(CJK.search(x) for x in view["zh"]["reasons"]), view["zh"]["reasons"]
    assert "[" not in " ".join(view["zh"]["reasons"])  # the English rule ids are not shown in Chinese
    if d["case"]["cases"][0].get("lirads"):
        assert all("LI-RADS v2017" in s["title"] and CJK.search(s["title"]) for s in view["zh"]["lirads"]["systems"])
    assert zh.shape == as_analysed.shape
    assert not np.array_equal(zh, as_analysed)  # at least the Grad-CAM title is now Chinese
