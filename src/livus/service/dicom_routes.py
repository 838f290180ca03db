"""API routes of a study's DICOM results (clinical roles only: the objects carry the patient's
identity):

- ``GET /api/studies/{uid}/dicom``: the SR and SEG objects (kind, name, download URL) and the
  state of sending them back to the PACS (``send``: ``null`` when off or nothing to send).
- ``GET /api/studies/{uid}/dicom/{n}.dcm``: download one (``application/dicom``), audited.
- ``POST /api/studies/{uid}/dicom/send``: send them now (also after ``failed``); 502 with the
  reason when the PACS refuses, 409 when no destination is configured.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from livus.service import audit
from livus.service.pacs_common import PacsError
from livus.service.results_out import ResultSender, object_kind, read_state, result_objects


def register_dicom_routes(app: FastAPI, state: Any, clinical: Callable[..., Any], get_db: Callable[..., Any],
                          get_study: Callable[[Session, str, Any], Any]) -> None:
    """Add the routes; ``clinical`` / ``get_db`` are the app's dependencies, ``get_study(db, uid,
    auth)`` its access-checked study lookup (404 for a study the user may not see)."""

    def sender() -> ResultSender:
        found = state.extras.get("sender")
        return found if found is not None else ResultSender(state, state.cfg)

    def client_address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    @app.get("/api/studies/{uid}/dicom")
    def study_dicom(uid: str, auth: Any = Depends(clinical), db: Session = Depends(get_db)) -> dict[str, Any]:
        s = get_study(db, uid, auth)
        study_dir = state.data_dir / "studies" / s.uid
        objects = [{"n": n, "kind": object_kind(p), "name": p.name, "url": f"/api/studies/{s.uid}/dicom/{n}.dcm"}
                   for n, p in enumerate(result_objects(study_dir))]
        send = read_state(study_dir) if state.cfg.send_results != "off" else None
        if send is not None:
            send = {k: send.get(k) for k in ("status", "attempts", "error", "destination", "updated", "sent_at")}
        return {"objects": objects, "send_results": state.cfg.send_results, "send": send}

    @app.get("/api/studies/{uid}/dicom/{n}.dcm")
    def study_dicom_file(uid: str, n: int, request: Request, auth: Any = Depends(clinical),
                         db: Session = Depends(get_db)) -> FileResponse:
        s = get_study(db, uid, auth)
        objects = result_objects(state.data_dir / "studies" / s.uid)
        if not 0 <= n < len(objects):
            raise HTTPException(404, "no such DICOM object")
        path = objects[n]
        audit.record(db, auth.user, "export", s.uid, f"dicom {path.name}", client_address(request))
        return FileResponse(path, media_type="application/dicom", filename=f"livus-{s.uid}-{path.name}",
                            content_disposition_type="attachment")

    @app.post("/api/studies/{uid}/dicom/send")
    def study_dicom_send(uid: str, request: Request, auth: Any = Depends(clinical),
                         db: Session = Depends(get_db)) -> dict[str, Any]:
        s = get_study(db, uid, auth)
        if state.cfg.send_results == "off":
            raise HTTPException(409, "sending results is off (send_results: dimse or dicomweb)")
        audit.record(db, auth.user, "dicom-send-request", s.uid, "", client_address(request))
        try:
            st = sender().send_study(s.uid, force=True)
        except PacsError as exc:
            raise HTTPException(502, str(exc)) from None
        if st is None:
            raise HTTPException(409, "this study has no DICOM results (SR/SEG are made for DICOM inputs)")
        if st["status"] != "sent":
            raise HTTPException(502, f"sending failed: {st['error']}")
        return {"status": st["status"], "destination": st.get("destination"), "objects": len(st["objects"])}
