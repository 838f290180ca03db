"""Service side of monitoring: confirmed outcomes → windowed sensitivity/specificity per model
version, input drift against the active version's training statistics, alerts (web banner +
log) and, when configured, automatic rollback of the detector to its previous version.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from livus.config import ServiceConfig
from livus.monitor.drift import drift_report
from livus.monitor.performance import OutcomeRecord, performance_alerts, rolling_series, window_metrics
from livus.monitor.registry import ModelRegistry, RegistryError
from livus.service.analysis import DETECTOR_MODEL
from livus.service.storage import Alert, FrameRecord, Outcome, User

log = logging.getLogger("livus.monitor")

OUTCOME_METHODS = ("pathology", "follow-up")
CSV_COLUMNS = ("frame_id", "lesion_id", "malignant", "method")


def add_outcome(db: Session, user: User | None, frame_id: int, lesion_id: int, malignant: bool, method: str) -> Outcome:
    """Record a confirmed truth for one lesion (``ValueError`` for an unknown frame/lesion/method).

    The malignancy the model gave and the model version are copied from the stored result, so a
    later model change does not rewrite history.
    """
    if method not in OUTCOME_METHODS:
        raise ValueError(f"method must be one of {', '.join(OUTCOME_METHODS)}")
    fr = db.get(FrameRecord, frame_id)
    if fr is None:
        raise ValueError(f"no frame {frame_id}")
    lesion = next((les for les in fr.result.get("lesions", []) if int(les.get("id", -1)) == lesion_id), None)
    if lesion is None:
        raise ValueError(f"frame {frame_id} has no lesion {lesion_id}")
    oc = Outcome(frame_id=frame_id, lesion_id=lesion_id, malignant=bool(malignant), method=method,
                 predicted=lesion.get("malignancy"), model_version=fr.model_version,
                 confirmed_by=user.id if user else None)
    db.add(oc)
    db.commit()
    return oc


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "malignant", "m", "恶性"):
        return True
    if t in ("0", "false", "no", "benign", "b", "良性"):
        return False
    raise ValueError(f"malignant: expected 1/0, true/false, malignant/benign, got {text[:40]!r}")


def import_outcomes_csv(db: Session, user: User | None, text: str) -> dict[str, Any]:
    """Import outcomes from CSV (columns ``frame_id,lesion_id,malignant,method``).

    Good rows are stored, bad rows are listed with their line number; nothing half-written.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"CSV needs columns {', '.join(CSV_COLUMNS)}; missing {', '.join(missing)}")
    added, errors = 0, []
    for line, row in enumerate(reader, start=2):
        try:
            add_outcome(db, user, int(row["frame_id"]), int(row["lesion_id"]), _parse_bool(row["malignant"] or ""),
                        (row["method"] or "").strip())
            added += 1
        except (ValueError, TypeError) as exc:
            db.rollback()
            errors.append(f"line {line}: {exc}")
    return {"added": added, "errors": errors[:100], "n_errors": len(errors)}


def outcome_records(db: Session) -> list[OutcomeRecord]:
    rows = db.scalars(select(Outcome).order_by(Outcome.id)).all()
    return [OutcomeRecord(o.model_version, o.predicted, o.malignant, f"{o.created_at.isoformat()}#{o.id:09d}") for o in rows]


class Monitor:
    def __init__(self, cfg: ServiceConfig, registry: ModelRegistry) -> None:
        self.cfg = cfg
        self.registry = registry

    def active_version(self, db: Session) -> str:
        v = self.registry.version_key(DETECTOR_MODEL)
        if v:
            return v
        last = db.scalar(select(FrameRecord.model_version).order_by(FrameRecord.id.desc()).limit(1))
        return last or "0"

    def drift(self, db: Session, version: str) -> dict[str, Any]:
        reference = None
        mv = self.registry.active(DETECTOR_MODEL)
        if mv is not None:
            reference = mv.metrics.get("input_stats")
        rows = db.scalars(select(FrameRecord.stats).where(FrameRecord.model_version == version,
                                                           FrameRecord.stats.is_not(None))
                          .order_by(FrameRecord.id.desc()).limit(self.cfg.monitor_window)).all()
        return drift_report(reference, [r for r in rows if r], self.cfg.drift_smd_threshold, self.cfg.drift_min_frames)

    def status(self, db: Session) -> dict[str, Any]:
        recs = outcome_records(db)
        cfg = self.cfg
        version = self.active_version(db)
        return {
            "active_version": version,
            "thresholds": {"min_sensitivity": cfg.min_sensitivity, "min_specificity": cfg.min_specificity,
                           "window": cfg.monitor_window, "min_cases": cfg.monitor_min_cases,
                           "malignancy_threshold": cfg.malignancy_threshold, "auto_rollback": cfg.auto_rollback},
            "metrics": window_metrics(recs, cfg.monitor_window, cfg.malignancy_threshold),
            "series": rolling_series(recs, cfg.monitor_window, cfg.malignancy_threshold),
            "drift": self.drift(db, version),
            "alerts": active_alerts(db),
        }

    def check(self, db: Session) -> list[Alert]:
        """Raise alerts for the active version (once per version and kind); roll back if configured."""
        cfg = self.cfg
        version = self.active_version(db)
        metrics = window_metrics(outcome_records(db), cfg.monitor_window, cfg.malignancy_threshold).get(version)
        raised: list[Alert] = []
        msgs = performance_alerts(metrics, cfg.min_sensitivity, cfg.min_specificity, cfg.monitor_min_cases) if metrics else []
        if msgs:
            alert = self._raise(db, "performance", version, f"model {version}: " + "; ".join(msgs))
            if alert is not None:
                raised.append(alert)
                if cfg.auto_rollback:
                    rb = self._rollback(db, version)
                    if rb is not None:
                        raised.append(rb)
        drift = self.drift(db, version)
        if drift["status"] == "drift":
            alert = self._raise(db, "drift", version, f"input drift for model {version}: " + "; ".join(drift["reasons"]))
            if alert is not None:
                raised.append(alert)
        return raised

    def _raise(self, db: Session, kind: str, version: str, message: str) -> Alert | None:
        exists = db.scalar(select(Alert).where(Alert.kind == kind, Alert.model_version == version, Alert.active.is_(True)))
        if exists is not None:
            return None
        alert = Alert(kind=kind, model_version=version, message=message)
        db.add(alert)
        db.commit()
        log.warning("ALERT %s: %s", kind, message)
        return alert

    def _rollback(self, db: Session, version: str) -> Alert | None:
        try:
            previous = self.registry.rollback(DETECTOR_MODEL)
        except RegistryError as exc:
            log.error("automatic rollback from %s impossible: %s", version, exc)
            return self._raise(db, "rollback-failed", version, f"automatic rollback from {version} impossible: {exc}")
        return self._raise(db, "rollback", version, f"model rolled back automatically from {version} to {previous.version}")


def active_alerts(db: Session) -> list[dict[str, Any]]:
    rows = db.scalars(select(Alert).where(Alert.active.is_(True)).order_by(Alert.id.desc()).limit(50)).all()
    return [{"id": a.id, "kind": a.kind, "message": a.message, "model_version": a.model_version,
             "time": a.created_at.isoformat()} for a in rows]
