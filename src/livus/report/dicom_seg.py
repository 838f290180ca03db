"""DICOM Segmentation (highdicom) of livus's liver and lesion outlines, so PACS viewers (OHIF,
3D Slicer, Weasis) can show them over the source images.

One binary SEG per analysed single-frame image (a SEG of several images needs a shared frame of
reference, which ultrasound images usually lack): segment 1 is the liver (when outlined), then
one segment per lesion (label ``Lesion k``, its tracking UID shared with the SR's measurement
group). Each frame references the source image it was drawn on. Masks come from the result's outlines in
original pixels (polygon; the ellipse of the axes when a lesion has no polygon); pixel centres
are at integer coordinates, as in :mod:`livus.report.dicom_sr`.

Not written (``None``): images that are not assessable (no outlines to show), series without any
outline, and multi-frame images (clips): highdicom makes segmentations of multi-frame images only
when they have a frame of reference, which ultrasound clips lack; their outlines stay in the SR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from livus.shapes import polygon_mask
from livus.types import FrameResult, Lesion

SEG_SERIES_NUMBER = 901
LIVER_PROPERTY = (codes.SCT.Organ, codes.SCT.Liver)
LESION_PROPERTY = (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion)


@dataclass
class SegmentRef:
    """Where one outline went in the SEG (for the SR's ``ReferencedSegmentationFrame``)."""

    segment_number: int
    frame_number: int  # 1-based frame of the SEG
    tracking_uid: str
    tracking_id: str


@dataclass
class SeriesSegmentation:
    """The SEG data sets of a series (one per image with outlines) and, per ``(image index,
    lesion index)``, the SEG and segment of that lesion."""

    datasets: list[hd.seg.Segmentation] = field(default_factory=list)
    lesions: dict[tuple[int, int], tuple[hd.seg.Segmentation, SegmentRef]] = field(default_factory=dict)


def lesion_mask(lesion: Lesion, shape: tuple[int, int]) -> np.ndarray:
    """Boolean ``(rows, cols)`` mask of a lesion outline (polygon, else its axes' ellipse)."""
    if len(lesion.polygon_px) >= 3:
        return polygon_mask(lesion.polygon_px, shape[1], shape[0]).astype(bool)
    mask = np.zeros(shape, np.uint8)
    centre = tuple(int(round(v)) for v in lesion.center_px)
    axes = (max(1, int(round(lesion.long_axis_px / 2))), max(1, int(round(lesion.short_axis_px / 2))))
    cv2.ellipse(mask, centre, axes, float(lesion.angle_deg), 0, 360, 1, -1)
    return mask.astype(bool)


def _description(number: int, label: str, prop: tuple, algorithm: hd.AlgorithmIdentificationSequence,
                 tracking_uid: str, tracking_id: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label[:64], segmented_property_category=prop[0],
        segmented_property_type=prop[1], algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, tracking_uid=tracking_uid, tracking_id=tracking_id[:64])


def algorithm_parameters(model: dict) -> dict[str, str]:
    """Settings that change what the model reports, for the DICOM algorithm identification: a
    site's own report threshold (``analyze.report_threshold``, recorded in ``FrameResult.model``);
    empty with the shipped settings."""
    return {"report_threshold": str(model["report_threshold"])} if "report_threshold" in model else {}


def build_image_segmentation(source: pydicom.Dataset, result: FrameResult
                             ) -> tuple[hd.seg.Segmentation, dict[int, SegmentRef]] | None:
    """SEG of one single-frame image: liver (segment 1, when outlined) and one segment per
    lesion; returns it with the segment of each lesion index, or ``None`` without outlines."""
    rows, cols = int(source.Rows), int(source.Columns)
    model = result.model or {}
    name, version = str(model.get("name", "livus")), str(model.get("version", "0"))
    algorithm = hd.AlgorithmIdentificationSequence(name=name, version=version,
                                                   family=codes.cid7162.ArtificialIntelligence,
                                                   parameters=algorithm_parameters(model) or None)
    planes: list[np.ndarray] = []
    descriptions: list[hd.seg.SegmentDescription] = []
    refs: dict[int, SegmentRef] = {}
    liver = polygon_mask(result.liver_polygon_px, cols, rows).astype(bool)
    if liver.any():
        planes.append(liver)
        descriptions.append(_description(1, "Liver", LIVER_PROPERTY, algorithm, hd.UID(), "liver"))
    for k, lesion in enumerate(result.lesions):
        mask = lesion_mask(lesion, (rows, cols))
        if mask.any():
            number, uid, label = len(planes) + 1, hd.UID(), f"Lesion {k + 1}"
            planes.append(mask)
            descriptions.append(_description(number, label, LESION_PROPERTY, algorithm, uid, label.lower()))
            refs[k] = SegmentRef(number, 0, uid, label.lower())
    if not planes:
        return None
    seg = hd.seg.Segmentation(
        source_images=[source], pixel_array=np.stack(planes, axis=-1)[None],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="livus", manufacturer_model_name=f"{name} {version}"[:64],
        software_versions=version[:64], device_serial_number="0",
        series_description="livus outlines (decision support, not a diagnosis)",
        content_label="LIVUS", content_description="liver and lesion masks found by livus",
    )
    seg.PatientOrientation = source.get("PatientOrientation", "")  # General Image, type 2C without a frame of reference
    shared = seg.SharedFunctionalGroupsSequence[0] if seg.get("SharedFunctionalGroupsSequence") else {}
    frame_of = {int((f if "SegmentIdentificationSequence" in f else shared).SegmentIdentificationSequence[0]
                    .ReferencedSegmentNumber): n for n, f in enumerate(seg.PerFrameFunctionalGroupsSequence, start=1)}
    for ref in refs.values():
        ref.frame_number = frame_of[ref.segment_number]
    return seg, refs


def build_series_segmentation(sources: list[pydicom.Dataset], results: list[FrameResult],
                              usable: list[bool]) -> SeriesSegmentation | None:
    """SEGs of one series: ``sources[i]`` is the image ``results[i]`` was found on; ``usable[i]``
    whether it was assessable. One SEG per single-frame image with outlines (highdicom makes a
    SEG of several images only when they share a frame of reference, which ultrasound images
    usually lack); ``None`` when nothing can be shown (see the module docstring)."""
    out = SeriesSegmentation()
    for i, (ds, result, ok) in enumerate(zip(sources, results, usable)):
        if not ok or int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            continue
        made = build_image_segmentation(ds, result)
        if made is None:
            continue
        seg, refs = made
        out.datasets.append(seg)
        out.lesions.update({(i, k): (seg, ref) for k, ref in refs.items()})
    return out if out.datasets else None
