"""Results back to the PACS: after analysis, a study's DICOM SR and SEG objects are sent to the
configured destination (``send_results: dimse`` → C-STORE to ``pacs_host``; ``dicomweb`` →
STOW-RS to ``dicomweb_url``). Off by default.

Never lost: the objects stay in the study's analysis folder and the send state is kept next to
them (``analysis/dicom-send.json``: pending → sent, or retrying with the reason and the next try;
``failed`` after ``send_retries`` attempts, shown in the API and sent again on request). One
background thread walks the analysed studies; after a restart it carries on where it stopped.
When switched on, studies analysed earlier are sent too (once).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy import select

from livus.service import audit
from livus.service.pacs_common import PacsError
from livus.service.storage import Study

log = logging.getLogger("livus.results_out")

STATE_FILE = "dicom-send.json"
OBJECT_PATTERNS = ("seg_*.dcm", "sr_*.dcm")  # SEGs first: the SR references them


def result_objects(study_dir: Path) -> list[Path]:
    """The study's DICOM results (SEG, then SR), in a stable order."""
    cases = study_dir / "analysis" / "cases"
    out: list[Path] = []
    for case in sorted(p for p in cases.glob("*") if p.is_dir()):
        for pattern in OBJECT_PATTERNS:
            out += sorted(case.glob(pattern))
    return out


def object_kind(path: Path) -> str:
    return "seg" if path.name.startswith("seg_") else "sr"


def read_state(study_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((study_dir / "analysis" / STATE_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def write_state(study_dir: Path, state: dict[str, Any]) -> None:
    """Atomic write (a crash leaves the old or the new state, never half a file)."""
    folder = study_dir / "analysis"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".send-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1)
    os.replace(tmp, folder / STATE_FILE)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def destination_client(cfg: Any) -> Any:
    """The client results go to (``send_results``): ``PacsClient`` or ``DicomwebPacs``."""
    if cfg.send_results == "dimse":
        from livus.service.pacs import PacsClient

        return PacsClient.from_config(cfg)
    if cfg.send_results == "dicomweb":
        from livus.service.dicomweb import DicomwebPacs

        return DicomwebPacs.from_config(cfg)
    raise PacsError(f"send_results must be off, dimse or dicomweb, not {cfg.send_results!r}")


class ResultSender:
    """The background sender (one thread); :meth:`send_study` also serves the API's "send now"."""

    def __init__(self, state: Any, cfg: Any, poll_s: float = 5.0) -> None:
        self.state = state
        self.cfg = cfg
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one send per study at a time
        self._settled: set[str] = set()  # studies sent (or given up) in this run
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.cfg.send_results != "off"

    def start(self) -> "ResultSender":
        destination_client(self.cfg)  # bad settings fail at start, not in the thread
        self._thread = threading.Thread(target=self._run, name="livus-results-out", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the sender must survive anything
                log.exception("sending results failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_once(self) -> None:
        """One pass over the analysed studies: send what is due."""
        with self.state.sm() as db:
            uids = db.scalars(select(Study.uid).where(Study.status == "done").order_by(Study.id)).all()
        self._settled &= set(uids)  # a study analysed again (not "done" meanwhile) is looked at again
        for uid in uids:
            if self._stop.is_set():
                return
            if uid not in self._settled:
                self.send_study(uid)

    def send_study(self, uid: str, force: bool = False) -> dict[str, Any] | None:
        """Send study ``uid``'s SR/SEG if due (``force``: now, whatever the state); returns the
        state (``None``: nothing to send)."""
        study_dir = self.state.data_dir / "studies" / uid
        with self._lock:
            objects = result_objects(study_dir)
            if not objects:  # no DICOM input: nothing to send
                self._settled.add(uid)
                return None
            # name, size and time of each: a study analysed again has new objects to send
            names = [f"{p.relative_to(study_dir)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in objects]
            st = read_state(study_dir)
            if st is None or st.get("objects") != names:
                st = {"status": "pending", "attempts": 0, "objects": names, "error": "", "next_try": 0.0}
            if not force and (st["status"] in ("sent", "failed") or time.time() < st.get("next_try", 0.0)):
                if st["status"] in ("sent", "failed"):
                    self._settled.add(uid)
                return st
            if force:
                st["attempts"] = 0
            client = destination_client(self.cfg)
            st["destination"] = client.name
            st["attempts"] += 1
            try:
                client.store([pydicom.dcmread(p) for p in objects])
            except (PacsError, OSError, ValueError) as exc:
                st["error"] = str(exc)
                if st["attempts"] >= max(1, self.cfg.send_retries):
                    st["status"], st["next_try"] = "failed", 0.0
                    self._settled.add(uid)
                else:
                    st["status"] = "retrying"
                    st["next_try"] = time.time() + self.cfg.send_retry_interval_s * 2 ** (st["attempts"] - 1)
                log.warning("sending results of %s to %s failed (attempt %d): %s", uid, client.name, st["attempts"], exc)
            else:
                st.update(status="sent", error="", next_try=0.0, sent_at=_now_iso())
                self._settled.add(uid)
            st["updated"] = _now_iso()
            write_state(study_dir, st)
        with self.state.sm() as db:
            detail = f"{len(objects)} object(s) to {st['destination']}: {st['status']}" + (f" ({st['error']})" if st["error"] else "")
            audit.record(db, None, "dicom-send", uid, detail)
        return st
