"""A degraded model in service: confirmed outcomes show it, an alert is raised (banner + log)
and the detector is rolled back to the previous version; input drift raises its own alert."""

from __future__ import annotations

import logging

import numpy as np
from fastapi.testclient import TestClient

from livus.monitor.drift import frame_stats, reference_stats
from livus.service.storage import FrameRecord, Study

from .conftest import make_service, png_bytes, ultrasound_like, upload, wait_done


def lesion(i: int, malignancy: float) -> dict:
    return {"id": i, "score": 0.9, "center_px": [50, 50], "long_axis_px": 20, "short_axis_px": 10, "angle_deg": 0,
            "bbox_px": [40, 45, 60, 55], "polygon_px": [], "long_axis_mm": None, "short_axis_mm": None,
            "malignancy": malignancy, "features": {}}


def add_scored_frames(svc, version: str, malignancies: list[float]) -> list[int]:
    """Frames analysed by ``version`` with one lesion each (as the worker would store them)."""
    with svc.state.sm() as db:
        study = Study(source="upload", status="done")
        db.add(study)
        db.flush()
        ids = []
        for i, m in enumerate(malignancies):
            result = {"schema": "livus.result/1", "source": f"f{i}.png", "frame_index": 0, "image_size_px": [100, 100],
                      "lesions": [lesion(1, m)], "warnings": [], "model": {"name": "detector", "version": version}}
            fr = FrameRecord(study_id=study.id, result=result, n_lesions=1, model_name="detector", model_version=version)
            db.add(fr)
            db.flush()
            ids.append(fr.id)
        db.commit()
        return ids


def test_degraded_model_alert_and_rollback(tmp_path, caplog):
    svc = make_service(tmp_path / "data", auto_rollback=True, monitor_min_cases=10, monitor_window=50,
                       min_sensitivity=0.8, min_specificity=0.6)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w")
    reg = svc.state.registry
    reg.register("detector", "v1", [weights], activate=True)
    reg.register("detector", "v2", [weights], activate=True)
    with TestClient(svc.app):
        doc, admin = svc.client("doc"), svc.client("admin")
        d = wait_done(svc, doc, upload(doc, [("a.png", png_bytes(ultrasound_like()))])["uid"])
        assert d["frames"][0]["model_version"] == "v2"  # results record the active version

        # v2 misses malignant lesions: 12 malignant lesions scored benign, 4 benign scored benign
        ids = add_scored_frames(svc, "v2", [0.1] * 12 + [0.2] * 4)
        rows = ["frame_id,lesion_id,malignant,method"]
        rows += [f"{i},1,{'1' if k < 12 else '0'},{'pathology' if k % 2 else 'follow-up'}" for k, i in enumerate(ids)]
        rows.append("999999,1,1,pathology")  # unknown frame: reported, not fatal
        rows.append(f"{ids[0]},1,maybe,pathology")
        with caplog.at_level(logging.WARNING, logger="livus.monitor"):
            r = doc.post("/api/outcomes/import", files=[("file", ("o.csv", "\n".join(rows).encode()))])
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["added"] == 16 and out["n_errors"] == 2
        assert any("sensitivity 0.00 < 0.80" in a for a in out["alerts"])
        assert any("rolled back" in a and "v1" in a for a in out["alerts"])
        assert "ALERT performance" in caplog.text

        assert reg.active("detector").version == "v1"
        status = doc.get("/api/monitor").json()
        assert status["metrics"]["v2"]["sensitivity"] == 0.0 and status["metrics"]["v2"]["specificity"] == 1.0
        assert len(status["series"]["v2"]) == 16
        banner = doc.get("/api/session").json()["alerts"]
        assert {a["kind"] for a in banner} >= {"performance", "rollback"}
        assert admin.get("/api/models").json()["detector"]["active"] == "v1"

        # new results record the version rolled back to
        d = wait_done(svc, doc, upload(doc, [("b.png", png_bytes(ultrasound_like(seed=2)))])["uid"])
        assert d["frames"][0]["model_version"] == "v1"

        # the same alert is not raised twice; an admin can dismiss it
        again = doc.post("/api/outcomes", json={"frame_id": ids[0], "lesion_id": 1, "malignant": True, "method": "pathology"})
        assert again.status_code == 201 and again.json()["alerts"] == []
        for a in banner:
            assert admin.post(f"/api/alerts/{a['id']}/dismiss").status_code == 200
        assert doc.get("/api/session").json()["alerts"] == []


def test_good_model_raises_no_alert(tmp_path):
    svc = make_service(tmp_path / "data", auto_rollback=True, monitor_min_cases=5)
    w = tmp_path / "w.bin"
    w.write_bytes(b"w")
    svc.state.registry.register("detector", "v1", [w], activate=True)
    svc.state.registry.register("detector", "v2", [w], activate=True)
    doc = svc.client("doc")
    ids = add_scored_frames(svc, "v2", [0.9] * 6 + [0.1] * 6)
    for k, i in enumerate(ids):
        r = doc.post("/api/outcomes", json={"frame_id": i, "lesion_id": 1, "malignant": k < 6, "method": "pathology"})
        assert r.status_code == 201 and r.json()["alerts"] == []
    assert svc.state.registry.active("detector").version == "v2"
    m = doc.get("/api/monitor").json()["metrics"]["v2"]
    assert m["sensitivity"] == 1.0 and m["specificity"] == 1.0
    assert doc.post("/api/outcomes", json={"frame_id": ids[0], "lesion_id": 7, "malignant": True,
                                           "method": "pathology"}).status_code == 422
    assert doc.post("/api/outcomes", json={"frame_id": ids[0], "lesion_id": 1, "malignant": True,
                                           "method": "guess"}).status_code == 422


def test_input_drift_alert(tmp_path):
    svc = make_service(tmp_path / "data", drift_min_frames=2, drift_smd_threshold=1.0)
    w = tmp_path / "w.bin"
    w.write_bytes(b"w")
    rng = np.random.default_rng(0)
    train = [frame_stats(np.clip(rng.normal(40, 10, (240, 320)), 0, 255).astype(np.uint8) + 0) for _ in range(20)]
    for s in train:
        s["mean_grey"] += rng.normal(0, 2)
    svc.state.registry.register("detector", "v1", [w], metrics={"input_stats": reference_stats(train)}, activate=True)
    with TestClient(svc.app):
        doc = svc.client("doc")
        bright = [(f"b{i}.png", png_bytes(np.full((240, 320), 200, np.uint8))) for i in range(3)]
        wait_done(svc, doc, upload(doc, bright)["uid"])
        status = doc.get("/api/monitor").json()
        assert status["drift"]["status"] == "drift", status["drift"]
        assert any(a["kind"] == "drift" for a in doc.get("/api/session").json()["alerts"])


def test_model_card_and_versions_via_api(tmp_path):
    svc = make_service(tmp_path / "data")
    w = tmp_path / "detector.pt"
    w.write_bytes(b"w")
    svc.state.registry.register("detector", "v1", [w], card="# livus detector v1\nTrained on AUL.", metrics={"ap50": 0.61},
                                activate=True)
    doc, admin = svc.client("doc"), svc.client("admin")
    models = doc.get("/api/models").json()
    assert models["detector"]["active"] == "v1" and models["detector"]["versions"][0]["metrics"] == {"ap50": 0.61}
    card = doc.get("/api/models/detector/v1/card")
    assert card.status_code == 200 and "Trained on AUL" in card.text
    assert doc.get("/api/models/detector/v9/card").status_code == 404
    assert doc.get("/api/models/..%2F..%2Fetc/v1/card").status_code == 404
    assert admin.post("/api/models/detector/rollback").status_code == 409  # nothing to roll back to
    assert admin.post("/api/models/detector/activate", json={"version": "v1"}).status_code == 200
