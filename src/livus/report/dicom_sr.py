"""DICOM Structured Report of one frame's lesions (TID 1500 Measurement Report, via highdicom).

One measurement group (TID 1410, planar ROI) per lesion: the lesion outline as an image region
(its mask polygon, or the ellipse of its axes) on the source image, the long and short axis
(TID 1410 allows no per-measurement coordinates, so the axes' lines are not stored), and the malignancy probability as a numeric
"Probability of cancer" (DCM 111047, unitless 0–1) when the classifier gave one. Axes are in
mm when the pixel spacing is known; otherwise in pixels (UCUM annotation unit ``{pixels}``), so
a reader can never take a pixel length for millimetres.

Image quality: every group carries the frame's assessability (``livus.infer.assessability``) as
"Image Quality" (DCM 111101) = usable / usable, below standard / unusable (DCM 111237 / 111236 /
111235) and its quality verdict and reasons as "Quality Finding" (DCM 111052) codes of the local
scheme ``99LIVUS`` (e.g. ``not_ultrasound``). A frame without lesions states "No abnormality
detected" only when it was assessed; a frame that is not assessable gets a "not assessed" group
with the quality items and no finding.

LI-RADS (``livus.infer.lirads_case``): every group also carries the examination's "US LI-RADS
v2017 category" (``US-1`` / ``US-2`` / ``US-3``) and "US LI-RADS v2017 visualization score"
(``A`` / ``B`` / ``C``) as coded qualitative evaluations. CEUS LI-RADS is per observation: the
group of a lesion that belongs to a CEUS observation (a tracked lesion of a contrast clip) is
labelled "observation N" with one tracking UID per observation (shared by its groups in every
frame) and carries that observation's own "CEUS LI-RADS v2017 category" (``LR-1`` ...
``LR-TIV``), its confidence (``confident`` / ``low-confidence``), each feature's called value (APHE,
washout none / late / early, rim APHE, marked washout; ``not-measured`` where the clip did not
allow it) and, as numeric measurements, each called value's probability (method: the CEUS model,
or the time-intensity curves for rim APHE and marked washout) and the measured rim contrast and
lesion / liver washout ratio. Any other group carries the case's CEUS category (its most severe
observation) as "CEUS LI-RADS v2017 category of the case". A category that cannot be given has
the value ``not-categorised`` / ``not-applicable``. No official code for these LI-RADS categories is used: RadLex and the ACR's
RadElement sets have LI-RADS terms, but livus ships no verified list of their identifiers, so
the concept names and values are codes of the local scheme ``99LIVUS`` (the meanings spell out
the ACR name and version). A reader treats them as software-assigned (the series description
says decision support) and confirms them.

One SR per analysed series (:func:`write_series_results`): every analysed image or frame of the
series in one document, with DICOM SEGs of the outlines (:mod:`livus.report.dicom_seg`) for
single-frame images; each lesion group then references its SEG segment (TID
1410 "Referenced Segmentation Frame", the tracking UID shared with the segment) instead of a
polyline. The Device Observer UID is the installation's (:func:`device_observer_uid`), the same
on every run.

Coordinates: livus uses pixel centres (the centre of the top-left pixel is (0, 0)); DICOM
SCOORD puts the top-left corner of the top-left pixel at (0, 0), so 0.5 is added to each
coordinate.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from livus.infer.assessability import result_assessability
from livus.report.dicom_seg import algorithm_parameters
from livus.report.i18n import assessability_reason, quality_label
from livus.report.overlay import axis_endpoints_px
from livus.types import Assessability, FrameResult, Lesion

PIXELS_UNIT = hd.sr.CodedConcept(value="{pixels}", scheme_designator="UCUM", meaning="pixels")
PROBABILITY_UNIT = codes.UCUM.NoUnits
MEASUREMENT_CODES = {
    "long_axis": codes.SCT.LongAxis,
    "short_axis": codes.SCT.ShortAxis,
    "malignancy": codes.DCM.ProbabilityOfCancer,
}
NO_LESION_FINDING = hd.sr.CodedConcept(value="281900007", scheme_designator="SCT", meaning="No abnormality detected")
IMAGE_QUALITY = codes.DCM.ImageQuality  # (111101, DCM, "Image Quality")
QUALITY_FINDING = codes.DCM.QualityFinding  # (111052, DCM, "Quality Finding")
IMAGE_QUALITY_VALUES = {
    "assessable": codes.DCM.UsableMeetsTheQualityControlStandard,
    "limited": codes.DCM.UsableDoesNotMeetTheQualityControlStandard,
    "not_assessable": codes.DCM.UnusableQualityRendersImageUnusable,
}
log = logging.getLogger("livus.report")

LIVUS_SCHEME = "99LIVUS"  # local coding scheme of the quality verdicts and assessability reasons
SR_SERIES_NUMBER = 900
DEVICE_UID_FILE = "device-observer-uid"
DATA_DIR_ENV = "LIVUS_DATA_DIR"


def installation_dir() -> Path:
    """Where the installation's identity lives: ``$LIVUS_DATA_DIR`` (the service's data
    directory) when set, else ``$XDG_DATA_HOME/livus`` (``~/.local/share/livus``)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "livus"


def device_observer_uid(folder: Path | None = None) -> str:
    """The installation's Device Observer UID, made once and kept in ``folder /
    device-observer-uid`` (``folder`` defaults to :func:`installation_dir`); concurrent first
    calls agree on one UID."""
    path = Path(folder or installation_dir()) / DEVICE_UID_FILE
    try:
        return str(hd.UID(path.read_text(encoding="ascii").strip()))
    except (FileNotFoundError, ValueError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".uid-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(str(hd.UID()) + "\n")
            try:
                os.link(tmp, path)  # atomic: the first writer wins
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        return str(hd.UID(path.read_text(encoding="ascii").strip()))
    except (OSError, ValueError) as exc:  # read-only home, ...: still the same UID on this machine and folder
        log.warning("cannot keep the device UID in %s (%s); using one derived from the host and folder", path, exc)
        return str(pydicom.uid.generate_uid(entropy_srcs=[socket.gethostname(), str(path)]))  # a hash: the same each time


def _scoord(points_px: np.ndarray) -> np.ndarray:
    return np.asarray(points_px, dtype=np.float32) + 0.5


def _source_image(ds: pydicom.Dataset, frame_index: int) -> hd.sr.SourceImageForRegion:
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=ds.SOPClassUID,
        referenced_sop_instance_uid=ds.SOPInstanceUID,
        referenced_frame_numbers=[frame_index + 1] if n_frames > 1 else None,
    )


def _region(lesion: Lesion, source: hd.sr.SourceImageForRegion) -> hd.sr.ImageRegion:
    if len(lesion.polygon_px) >= 3:
        pts = np.asarray(lesion.polygon_px, dtype=np.float64)
        closed = np.vstack([pts, pts[:1]])  # TID 1410 wants a closed polyline
        return hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.POLYLINE, graphic_data=_scoord(closed),
                                 source_image=source)
    long_ends, short_ends = axis_endpoints_px(lesion)
    return hd.sr.ImageRegion(graphic_type=hd.sr.GraphicTypeValues.ELLIPSE,
                             graphic_data=_scoord(np.vstack([long_ends, short_ends])), source_image=source)


def _livus_code(key: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=key, scheme_designator=LIVUS_SCHEME, meaning=meaning[:64])


def quality_evaluations(result: FrameResult, assessability: Assessability) -> list[hd.sr.QualitativeEvaluation]:
    """The frame's assessability as "Image Quality" and its verdict and reasons as "Quality
    Finding" items (local ``99LIVUS`` codes)."""
    items = [hd.sr.QualitativeEvaluation(name=IMAGE_QUALITY, value=IMAGE_QUALITY_VALUES[assessability.status])]
    verdict = (result.quality or {}).get("verdict")
    if verdict:
        items.append(hd.sr.QualitativeEvaluation(name=QUALITY_FINDING, value=_livus_code(verdict, quality_label(verdict, "en"))))
    for reason in assessability.reasons:
        if reason != verdict:
            items.append(hd.sr.QualitativeEvaluation(
                name=QUALITY_FINDING, value=_livus_code(reason, assessability_reason(reason, "en"))))
    return items


LIRADS_CONCEPTS = {  # local 99LIVUS codes (see the module docstring): concept names
    "us": ("LIRADS-US-CAT", "US LI-RADS v2017 category (assigned by software)"),
    "us_vis": ("LIRADS-US-VIS", "US LI-RADS v2017 visualization score (assigned by software)"),
    "ceus": ("LIRADS-CEUS-CAT", "CEUS LI-RADS v2017 category (assigned by software)"),
    "ceus_case": ("LIRADS-CEUS-CASE", "CEUS LI-RADS v2017 category of the case (most severe)"),
    "ceus_conf": ("LIRADS-CEUS-CONF", "CEUS LI-RADS v2017 category confidence"),
}
# CEUS LI-RADS features of an observation: (feature concept, probability concept); local codes
# (code values within the 16 characters of Code Value, not Long Code Value)
CEUS_FEATURE_CONCEPTS = {
    "arterial_phase_hyperenhancement": (("CEUS-APHE", "arterial phase hyperenhancement (CEUS)"),
                                        ("CEUS-APHE-P", "probability of the called value: APHE")),
    "washout": (("CEUS-WASHOUT", "washout (CEUS)"), ("CEUS-WASHOUT-P", "probability of the called value: washout")),
    "rim_arterial_phase_hyperenhancement": (("CEUS-RIM-APHE", "rim arterial phase hyperenhancement (CEUS)"),
                                            ("CEUS-RIM-APHE-P", "probability of the called value: rim APHE")),
    "washout_marked": (("CEUS-MARKED-WO", "marked washout (CEUS)"),
                       ("CEUS-MARKED-WO-P", "probability of the called value: marked washout")),
}
NOT_MEASURED = {"rim_arterial_phase_hyperenhancement": "not measured (taken as non-rim)",
                "washout_marked": "not measured (taken as mild)"}
# what the measured features' values are (livus.infer.ceus_tic): concept of the value
CEUS_MEASURE_CONCEPTS = {
    "rim_arterial_phase_hyperenhancement": ("CEUS-RIM-RATIO", "rim contrast (periphery - core) / (periphery - black)"),
    "washout_marked": ("CEUS-WO-RATIO", "lesion / liver enhancement within 2 min (to black)"),
}
CEUS_METHODS = {"model": ("CEUS-MODEL", "livus CEUS feature model"),
                "tic": ("CEUS-TIC", "measured on the time-intensity curves")}


def _category_value(a: Any) -> hd.sr.CodedConcept:
    from livus.report.i18n import text

    if a.category:
        return _livus_code(a.category, text(f"lirads_cat_{a.category}", "en"))
    status = a.status.replace("_", "-")
    return _livus_code(status, f"{status.replace('-', ' ')}: {a.reason}")


def _observation_value(o: dict[str, Any]) -> hd.sr.CodedConcept:
    from livus.report.i18n import text

    if o.get("category"):
        return _livus_code(o["category"], text(f"lirads_cat_{o['category']}", "en"))
    return _livus_code("not-categorised", f"not categorised: {o.get('reason')}")


def _feature_value(name: str, value: Any) -> hd.sr.CodedConcept:
    if name == "washout":
        return _livus_code(f"washout-{value}", {"none": "no washout", "late": "late (>= 60 s) washout",
                                                 "early": "early (< 60 s) washout"}[str(value)])
    return _livus_code("present", "present") if value else _livus_code("absent", "absent")


def ceus_observation_evaluations(o: dict[str, Any]) -> list[hd.sr.QualitativeEvaluation]:
    """One CEUS observation (an entry of ``LiradsAssessment.observations``) as coded evaluations:
    its own category, whether it is low confidence, and each feature's called value (rim APHE
    and marked washout ``not-measured`` where the clip did not allow it)."""
    items = [hd.sr.QualitativeEvaluation(name=_livus_code(*LIRADS_CONCEPTS["ceus"]), value=_observation_value(o))]
    if o.get("category"):
        items.append(hd.sr.QualitativeEvaluation(
            name=_livus_code(*LIRADS_CONCEPTS["ceus_conf"]),
            value=_livus_code("low-confidence", "low confidence: a feature called otherwise would change it")
            if o.get("low_confidence") else _livus_code("confident", "confident")))
    features = o.get("features") or {}
    for name, (concept, _) in CEUS_FEATURE_CONCEPTS.items():
        if name in features:
            value = _feature_value(name, features[name]["value"])
        elif name in NOT_MEASURED and features:
            value = _livus_code("not-measured", NOT_MEASURED[name])
        else:
            continue
        items.append(hd.sr.QualitativeEvaluation(name=_livus_code(*concept), value=value))
    return items


def ceus_observation_measurements(o: dict[str, Any], algorithm: hd.sr.AlgorithmIdentification) -> list[hd.sr.Measurement]:
    """The probabilities of one CEUS observation's called features (unitless 0–1; method: the
    CEUS model, or the time-intensity curves for rim APHE / marked washout) and the measured
    values behind rim APHE and marked washout."""
    out = []
    features, measures = o.get("features") or {}, o.get("measures") or {}
    for name, (_, concept) in CEUS_FEATURE_CONCEPTS.items():
        if name not in features:
            continue
        method = "tic" if (measures.get(name) or {}).get("measured") else "model"
        out.append(hd.sr.Measurement(name=_livus_code(*concept), value=float(features[name]["probability"]),
                                     unit=PROBABILITY_UNIT, method=_livus_code(*CEUS_METHODS[method]),
                                     algorithm_id=algorithm))
    for name, concept in CEUS_MEASURE_CONCEPTS.items():
        m = measures.get(name) or {}
        if m.get("measured") and m.get("value") is not None:
            out.append(hd.sr.Measurement(name=_livus_code(*concept), value=float(m["value"]), unit=PROBABILITY_UNIT,
                                         method=_livus_code(*CEUS_METHODS["tic"]), algorithm_id=algorithm))
    return out


def lesion_ceus_observation(lirads: Any, lesion: Lesion | None) -> dict[str, Any] | None:
    """The CEUS LI-RADS observation ``lesion`` belongs to (``None``: not a CEUS observation)."""
    ceus = None if lirads is None else lirads.ceus
    return None if ceus is None or lesion is None else ceus.observation_of(lesion)


def lirads_evaluations(lirads: Any, lesion: Lesion | None = None) -> list[hd.sr.QualitativeEvaluation]:
    """The LI-RADS (``livus.infer.lirads_case.LiradsResult``) of a measurement group as coded
    evaluations (local ``99LIVUS`` codes); ``[]`` for ``None``. The US category and visualization
    score are the examination's. CEUS: a ``lesion`` of a CEUS observation gets that observation's
    own category and features (:func:`ceus_observation_evaluations`); any other group the case's
    CEUS category (its most severe observation) as "... category of the case"."""
    if lirads is None:
        return []
    from livus.report.i18n import text

    items = []
    if lirads.us is not None:
        a = lirads.us
        items.append(hd.sr.QualitativeEvaluation(name=_livus_code(*LIRADS_CONCEPTS["us"]), value=_category_value(a)))
        if a.visualization:
            items.append(hd.sr.QualitativeEvaluation(
                name=_livus_code(*LIRADS_CONCEPTS["us_vis"]),
                value=_livus_code(f"VIS-{a.visualization}", text(f"lirads_vis_{a.visualization}", "en"))))
    if lirads.ceus is not None:
        o = lesion_ceus_observation(lirads, lesion)
        if o is not None:
            items += ceus_observation_evaluations(o)
        else:
            items.append(hd.sr.QualitativeEvaluation(name=_livus_code(*LIRADS_CONCEPTS["ceus_case"]),
                                                     value=_category_value(lirads.ceus)))
    return items


def _measurement(
    name: str, value: float, unit: hd.sr.CodedConcept, algorithm: hd.sr.AlgorithmIdentification
) -> hd.sr.Measurement:
    return hd.sr.Measurement(name=MEASUREMENT_CODES[name], value=float(value), unit=unit, algorithm_id=algorithm)


def lesion_measurement_group(
    lesion: Lesion,
    number: int,
    result: FrameResult,
    source: hd.sr.SourceImageForRegion,
    algorithm: hd.sr.AlgorithmIdentification,
    quality: list[hd.sr.QualitativeEvaluation] | None = None,
    segment: Any = None,
    label: str | None = None,
    extra_measurements: list[hd.sr.Measurement] | None = None,
    tracking_uid: str | None = None,
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """TID 1410 group of one lesion (outline, long/short axis, malignancy probability,
    ``extra_measurements`` and the ``quality`` evaluations). The outline is its SEG segment when
    ``segment`` is given (``(SEG data set, livus.report.dicom_seg.SegmentRef)``), else a
    polyline/ellipse region, tracked as ``tracking_uid`` when given (one UID per observation:
    the same lesion in several frames) else a new UID."""
    if result.pixel_spacing_mm is not None and lesion.long_axis_mm is not None and lesion.short_axis_mm is not None:
        long_value, short_value, unit = lesion.long_axis_mm, lesion.short_axis_mm, codes.UCUM.Millimeter
    else:
        long_value, short_value, unit = lesion.long_axis_px, lesion.short_axis_px, PIXELS_UNIT
    measurements = [
        _measurement("long_axis", long_value, unit, algorithm),
        _measurement("short_axis", short_value, unit, algorithm),
    ]
    if lesion.malignancy is not None:
        measurements.append(_measurement("malignancy", lesion.malignancy, PROBABILITY_UNIT, algorithm))
    measurements += extra_measurements or []
    if segment is not None:
        seg, ref = segment
        tracking = hd.sr.TrackingIdentifier(uid=ref.tracking_uid, identifier=ref.tracking_id)
        where: dict[str, Any] = {"referenced_segment": hd.sr.ReferencedSegmentationFrame(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, frame_number=ref.frame_number,
            segment_number=ref.segment_number, source_image=hd.sr.SourceImageForSegmentation(
                source.ReferencedSOPSequence[0].ReferencedSOPClassUID,
                source.ReferencedSOPSequence[0].ReferencedSOPInstanceUID))}
    else:
        tracking = hd.sr.TrackingIdentifier(uid=tracking_uid or hd.UID(), identifier=label or f"lesion {number}")
        where = {"referenced_region": _region(lesion, source)}
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        **where,
        finding_type=codes.SCT.Lesion,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Liver)],
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=quality or None,
    )


def _frame_groups(
    number: int, source_ds: pydicom.Dataset, result: FrameResult, algorithm: hd.sr.AlgorithmIdentification,
    lirads: Any, segmentation: Any, label_suffix: str, observation_uids: dict[int, str],
) -> list[Any]:
    """Measurement groups of one analysed image/frame: a group per lesion, or one "no lesion" /
    "not assessed" group (TID 1501) that names the image. A lesion of a CEUS LI-RADS observation
    is labelled and tracked as that observation (``observation_uids``: one tracking UID per
    observation id, shared by its groups in every frame) and carries its own category and
    features."""
    source = _source_image(source_ds, result.frame_index)
    assessability = result_assessability(result)
    frame_quality = quality_evaluations(result, assessability)
    quality = frame_quality + lirads_evaluations(lirads)
    groups: list[Any] = []
    if assessability.usable:
        for k, lesion in enumerate(result.lesions):
            segment = segmentation.lesions.get((number, k)) if segmentation is not None else None
            o = lesion_ceus_observation(lirads, lesion)
            if o is None:
                groups.append(lesion_measurement_group(lesion, k + 1, result, source, algorithm, quality,
                                                       segment=segment, label=f"lesion {k + 1}{label_suffix}"))
                continue
            uid = observation_uids.setdefault(int(o["id"]), str(hd.UID()))
            groups.append(lesion_measurement_group(
                lesion, k + 1, result, source, algorithm, frame_quality + lirads_evaluations(lirads, lesion),
                segment=segment, label=f"observation {o['id']}{label_suffix}", tracking_uid=uid,
                extra_measurements=ceus_observation_measurements(o, algorithm)))
    if not groups:  # TID 1500 needs one group (TID 1501): the negative finding, or "not assessed"
        assessed = assessability.usable
        finding = [hd.sr.QualitativeEvaluation(name=codes.DCM.Finding, value=NO_LESION_FINDING)] if assessed else []
        n_frames = int(getattr(source_ds, "NumberOfFrames", 1) or 1)
        groups = [hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=hd.UID(), identifier=("no lesion" if assessed else "not assessed") + label_suffix),
            algorithm_id=algorithm,
            qualitative_evaluations=finding + quality,
            source_images=[hd.sr.SourceImageForMeasurementGroup(
                source_ds.SOPClassUID, source_ds.SOPInstanceUID,
                [result.frame_index + 1] if n_frames > 1 else None)],
        )]
    return groups


def build_series_sr(sources: list[pydicom.Dataset], results: list[FrameResult], lirads: Any = None,
                    segmentation: Any = None, device_uid: str | None = None) -> hd.sr.ComprehensiveSR:
    """One SR document of a series: ``results[i]`` was found on ``sources[i]`` (the same data set
    repeated for the frames of a multi-frame image); ``segmentation``
    (:class:`livus.report.dicom_seg.SeriesSegmentation`) when the outlines are in a SEG; the
    case's ``lirads`` in every group; ``device_uid`` defaults to the installation's."""
    model = results[0].model or {}
    name, version = str(model.get("name", "livus")), str(model.get("version", "0"))
    parameters = [f"{k}={v}" for k, v in algorithm_parameters(model).items()]
    algorithm = hd.sr.AlgorithmIdentification(name=name, version=version, parameters=parameters or None)
    observation_context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=device_uid or device_observer_uid(), name="livus", model_name=f"{name} {version}"
            ),
        )
    )
    groups: list[Any] = []
    observation_uids: dict[int, str] = {}
    several = len(results) > 1
    for i, (ds, result) in enumerate(zip(sources, results)):
        suffix = ""
        if several:
            suffix = f" (frame {result.frame_index + 1})" if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 else f" (image {i + 1})"
        groups += _frame_groups(i, ds, result, algorithm, lirads, segmentation, suffix, observation_uids)
    report = hd.sr.MeasurementReport(
        observation_context=observation_context,
        procedure_reported=codes.SCT.DiagnosticUltrasonography,
        imaging_measurements=groups,
    )
    evidence = list(OrderedDict((str(ds.SOPInstanceUID), ds) for ds in sources).values())
    if segmentation is not None:
        evidence += segmentation.datasets
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=report,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="livus",
        is_complete=True,
        series_description="livus lesion measurements (decision support, not a diagnosis)",
    )
    if segmentation is not None:
        _segment_references_without_frames(sr, {str(ds.SOPInstanceUID) for ds in segmentation.datasets})
    return sr


def _segment_references_without_frames(sr: pydicom.Dataset, seg_uids: set[str]) -> None:
    """A reference to a SEG names the segment, not also the frame (PS3.3 C.10.5: Referenced
    Segment Number shall not be present with Referenced Frame Number; each livus SEG has one
    frame per segment, so the segment is enough)."""
    for item in _walk(sr.ContentSequence):
        if item.get("ValueType") == "IMAGE" and "ReferencedSOPSequence" in item:
            ref = item.ReferencedSOPSequence[0]
            if str(ref.ReferencedSOPInstanceUID) in seg_uids and "ReferencedSegmentNumber" in ref:
                ref.pop("ReferencedFrameNumber", None)


def build_measurement_sr(source_dataset: pydicom.Dataset, result: FrameResult, lirads: Any = None,
                         device_uid: str | None = None) -> hd.sr.ComprehensiveSR:
    """The SR document (not yet written) for ``result`` found on ``source_dataset``, with the
    case's ``lirads`` (``LiradsResult``, optional) in every group."""
    return build_series_sr([source_dataset], [result], lirads, device_uid=device_uid)


def write_measurement_sr(source_dataset: pydicom.Dataset, result: FrameResult, path: Path, lirads: Any = None) -> Path:
    """Write a TID 1500 Measurement Report SR of ``result`` (lesions on ``source_dataset``; the
    case's ``lirads`` when given) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build_measurement_sr(source_dataset, result, lirads).save_as(path, enforce_file_format=True)
    return path


def write_series_results(inputs: list[tuple[Path | str, list[FrameResult]]], out_dir: Path, lirads: Any = None,
                         device_uid: str | None = None) -> list[Path]:
    """For the DICOM inputs among ``inputs`` (path, its analysed frames' results): one SR per
    series (``sr_<n>.dcm``) and, for series of single-frame images with outlines, one SEG
    (``seg_<n>.dcm``); returns the files written (SEG before its SR)."""
    from livus.io.readers import sniff_kind
    from livus.io.sources import as_source, open_source
    from livus.report.dicom_seg import build_series_segmentation

    series: OrderedDict[str, list[tuple[pydicom.Dataset, FrameResult]]] = OrderedDict()
    for path, results in inputs:
        path = as_source(path)  # a local path, or a URI read through pyarrow
        if not results or sniff_kind(path) != "dicom":
            continue
        with open_source(path) as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
        key = str(ds.get("SeriesInstanceUID", "") or path)
        series.setdefault(key, []).extend((ds, r) for r in results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    device_uid = device_uid or device_observer_uid()
    for n, items in enumerate(series.values(), start=1):
        sources, results = [ds for ds, _ in items], [r for _, r in items]
        usable = [result_assessability(r).usable for r in results]
        seg = build_series_segmentation(sources, results, usable)
        for m, ds in enumerate(seg.datasets if seg is not None else [], start=1):
            ds.save_as(out_dir / f"seg_{n:03d}_{m:03d}.dcm", enforce_file_format=True)
            written.append(out_dir / f"seg_{n:03d}_{m:03d}.dcm")
        sr = build_series_sr(sources, results, lirads, seg, device_uid)
        sr.save_as(out_dir / f"sr_{n:03d}.dcm", enforce_file_format=True)
        written.append(out_dir / f"sr_{n:03d}.dcm")
    return written


def _walk(items: pydicom.Sequence) -> list[pydicom.Dataset]:
    out: list[pydicom.Dataset] = []
    for item in items:
        out.append(item)
        if "ContentSequence" in item:
            out.extend(_walk(item.ContentSequence))
    return out


def read_sr_measurements(sr: pydicom.Dataset) -> list[dict[str, tuple[float, str]]]:
    """Numeric measurements per measurement group of a livus SR, in document order:
    ``[{"long_axis": (value, unit), "short_axis": ..., "malignancy": ...}, ...]``."""
    by_code = {code.value: key for key, code in MEASUREMENT_CODES.items()}
    groups: list[dict[str, tuple[float, str]]] = []
    for item in _walk(sr.ContentSequence):
        concept = item.ConceptNameCodeSequence[0] if "ConceptNameCodeSequence" in item else None
        if concept is None:
            continue
        if item.ValueType == "CONTAINER" and concept.CodeValue == "125007":  # Measurement Group
            groups.append({})
        elif item.ValueType == "NUM" and concept.CodeValue in by_code and groups:
            measured = item.MeasuredValueSequence[0]
            unit = measured.MeasurementUnitsCodeSequence[0].CodeValue
            groups[-1][by_code[concept.CodeValue]] = (float(measured.NumericValue), str(unit))
    return groups
