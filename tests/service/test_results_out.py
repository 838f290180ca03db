"""Sending SR + SEG back, without a PACS package: a second livus C-STORE listener plays the PACS.
Failures are retried, shown with the reason, marked failed after the last attempt, and sent when
asked once the destination works (nothing lost across a new sender, i.e. a restart)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pydicom
import pytest

from livus.config import ServiceConfig
from livus.report.dicom_sr import write_series_results
from livus.service.results_out import ResultSender, read_state
from livus.service.storage import Study, StudyFile
from livus.types import FrameResult, Lesion

from .dicom_helpers import free_port
from .test_dicom_listener import _State, _Worker, listener_factory  # noqa: F401 - fixture

EXAMPLE_DICOM = Path(__file__).resolve().parents[2] / "examples" / "dicom" / "small_lesion.dcm"


def _analysed_study(state) -> str:
    """A 'done' study whose analysis folder holds an SR and a SEG of the bundled example."""
    with state.sm() as db:
        study = Study(source="dicom", status="done", patient_id="OUT-1")
        db.add(study)
        db.commit()
        uid = study.uid
    ds = pydicom.dcmread(EXAMPLE_DICOM, stop_before_pixels=True)
    lesion = Lesion(id=1, score=0.9, center_px=(300.0, 250.0), long_axis_px=40.0, short_axis_px=30.0, angle_deg=0.0)
    result = FrameResult(source=str(EXAMPLE_DICOM), frame_index=0, image_size_px=(int(ds.Columns), int(ds.Rows)),
                         lesions=[lesion], model={"name": "test", "version": "1"})
    case_dir = state.data_dir / "studies" / uid / "analysis" / "cases" / "c1"
    written = write_series_results([(EXAMPLE_DICOM, [result])], case_dir, device_uid="1.2.826.0.1.3680043.8.498.7")
    assert [p.name for p in written] == ["seg_001_001.dcm", "sr_001.dcm"]
    return uid


def test_results_are_retried_shown_and_never_lost(listener_factory, tmp_path):
    pacs, pacs_state = listener_factory(ae_title="PACS")  # the destination
    _, state = listener_factory()
    uid = _analysed_study(state)
    wrong = ServiceConfig(data_dir=str(state.data_dir), send_results="dimse", pacs_host="127.0.0.1",
                          pacs_port=free_port(), pacs_ae_title="PACS", pacs_timeout_s=3, send_retries=2,
                          send_retry_interval_s=0.0)
    sender = ResultSender(state, wrong)
    sender.run_once()
    st = read_state(state.data_dir / "studies" / uid)
    assert st["status"] == "retrying" and st["attempts"] == 1 and "cannot connect" in st["error"]
    sender.run_once()
    st = read_state(state.data_dir / "studies" / uid)
    assert st["status"] == "failed" and st["attempts"] == 2
    sender.run_once()  # given up: no third attempt on its own
    assert read_state(state.data_dir / "studies" / uid)["attempts"] == 2

    fixed = dataclasses.replace(wrong, pacs_port=pacs.port)
    restarted = ResultSender(state, fixed)  # a restart: the state on disk is all it knows
    restarted.run_once()
    assert read_state(state.data_dir / "studies" / uid)["status"] == "failed"  # still shown as failed
    st = restarted.send_study(uid, force=True)  # "send now" from the API
    assert st["status"] == "sent" and st["error"] == "" and st["destination"] == f"PACS@127.0.0.1:{pacs.port}"
    with pacs_state.sm() as db:
        received = [pydicom.dcmread(pacs_state.data_dir / f.stored_path, stop_before_pixels=True).Modality
                    for f in db.query(StudyFile)]
    assert sorted(received) == ["SEG", "SR"]
    with state.sm() as db:
        from livus.service.storage import AuditEvent

        details = [e.detail for e in db.query(AuditEvent).filter(AuditEvent.action == "dicom-send")]
    assert any("failed" in d for d in details) and any(d.endswith(": sent") for d in details)


def test_bad_destination_setting_fails_at_start(tmp_path):
    state = _State(tmp_path, None, _Worker())
    with pytest.raises(Exception, match="send_results must be"):
        ResultSender(state, ServiceConfig(data_dir=str(tmp_path), send_results="ftp")).start()
