"""Write simulated, fully labelled datasets in the project's format (``livus.io.dataset``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from livus.io.dataset import ImageRecord, save_dataset, write_png
from livus.simulate.clips import simulate_bmode_clip, simulate_ceus_clip
from livus.simulate.diffuse import sample_diffuse_spec
from livus.simulate.overlays import fake_patient_name
from livus.simulate.profiles import PROFILES, ScannerProfile, get_profile
from livus.simulate.scenes import sample_scene
from livus.simulate.still import GeometryCache, SimulatedImage, overlay_info_for, simulate_still
from livus.simulate.video import write_video

START_DATE = datetime(2022, 1, 3, 8, 0, 0)
SPAN_DAYS = 730


@dataclass
class Patient:
    patient_id: str
    name: str
    birth_date: str
    profile: ScannerProfile
    first_visit: datetime
    visits: int = 0

    def next_time(self, rng: np.random.Generator) -> datetime:
        t = self.first_visit + timedelta(days=int(30 * self.visits), minutes=int(rng.integers(0, 600)))
        self.visits += 1
        return t


def make_patients(rng: np.random.Generator, n: int, profile: str | None) -> list[Patient]:
    """``n`` fake patients, each scanned on one device, first visits spread over ~2 years."""
    names = list(PROFILES) if profile is None else [get_profile(profile).name]
    out = []
    for i in range(n):
        prof = PROFILES[names[int(rng.integers(len(names)))]]
        first = START_DATE + timedelta(days=float(rng.uniform(0, SPAN_DAYS - 60)))
        out.append(Patient(f"SIM{i + 1:05d}", fake_patient_name(rng), f"19{int(rng.integers(40, 90))}0{int(rng.integers(1, 10))}15",
                           prof, first))
    return out


@dataclass
class DatasetWriter:
    """Accumulates records and writes image/mask/overlay PNGs under ``root``."""

    root: Path
    records: list[ImageRecord] = field(default_factory=list)

    def add(self, sim: SimulatedImage, rel_stem: str, patient: Patient, when: datetime, clip_id: str | None = None,
            frame_index: int | None = None, time_s: float | None = None, sai: float | None = None) -> ImageRecord:
        img_rel = f"{rel_stem}.png"
        parts = rel_stem.split("/")
        mask_rel = "/".join(["masks", *parts[1:]]) + ".png" if parts[0] == "images" else f"{'/'.join(parts[:-1])}/masks/{parts[-1]}.png"
        ov_rel = mask_rel.replace("masks", "overlays", 1)
        write_png(self.root / img_rel, sim.image)
        write_png(self.root / mask_rel, sim.lesion_mask)
        write_png(self.root / ov_rel, sim.overlay_mask * 255)
        H, W = sim.image.shape
        extra = dict(sim.extra)
        extra.setdefault("quality", "good")
        extra["liver_state"] = sim.scene.liver_state
        extra["lesion_diameters_mm"] = [round(lab.spec.diameter_mm, 2) for lab in sim.lesions]
        if sim.scene.diffuse is not None:
            extra["diffuse"] = sim.scene.diffuse.spec.to_labels()
        rec = ImageRecord(
            id=len(self.records) + 1, file_name=img_rel, width=W, height=H, image_class=sim.image_class,
            pixel_spacing_mm=sim.pixel_spacing_mm, patient_id=patient.patient_id,
            acquired_at=when.isoformat(timespec="seconds"), device=patient.profile.name,
            liver_polygon=sim.liver_polygon, fan_polygon=sim.geom.fan_polygon, mask_file=mask_rel,
            overlay_file=ov_rel, clip_id=clip_id, frame_index=frame_index, time_s=time_s,
            seconds_after_injection=sai, lesions=[lab.annotation for lab in sim.lesions], extra=extra,
        )
        self.records.append(rec)
        return rec


def _u_offset(rng: np.random.Generator) -> float:
    return float(rng.choice([-0.03, 0.0, 0.03]))


def write_clip(writer: DatasetWriter, frames: list[SimulatedImage], clip_id: str, patient: Patient, when: datetime,
               fps: float, ceus: bool) -> Path:
    """Frames under ``clips/<clip_id>/`` plus ``clips/<clip_id>.avi``."""
    for i, fr in enumerate(frames):
        t = fr.extra.get("seconds_after_injection") if ceus else fr.extra.get("time_s", i / fps)
        writer.add(fr, f"clips/{clip_id}/f{i:04d}", patient, when + timedelta(seconds=float(t or 0)), clip_id=clip_id,
                   frame_index=i, time_s=float(t if t is not None else i / fps), sai=float(t) if ceus else None)
    return write_video(writer.root / "clips" / f"{clip_id}.avi", [f.image for f in frames], fps)


def _clip_setup(rng: np.random.Generator, patients: list[Patient], cache: GeometryCache):  # noqa: ANN202
    """Patient, acquisition time, scanner geometry, a benign-or-malignant scene and the burned-in
    overlay text for one simulated clip (B-mode or CEUS)."""
    pat = patients[int(rng.integers(len(patients)))]
    when = pat.next_time(rng)
    geom = cache.get(pat.profile)
    scene = sample_scene(rng, geom, "malignant" if rng.random() < 0.5 else "benign")
    return pat, when, geom, scene, overlay_info_for(pat.profile, pat.name, pat.patient_id, when)


def simulate_dataset(out: Path, n: int, clips: bool = False, ceus: bool = False, dicom: bool = False,
                     profile: str | None = None, seed: int = 0, clip_frames: int = 20,
                     diffuse: dict[str, float] | None = None, lesion_free: bool = False,
                     lesion_free_share: float = 0.0) -> Path:
    """Simulate ``n`` labelled stills (+ B-mode clips, CEUS clips and DICOM files on request)
    into the dataset folder ``out``; returns the path of ``annotations.json``.

    ``diffuse``: a mix of diffuse liver disease (:func:`livus.simulate.diffuse.parse_mix`) for the
    stills, labelled in each image's ``extra["diffuse"]``; ``lesion_free``: stills without focal
    lesions; ``lesion_free_share`` (0-1): that share of the stills drawn lesion-free, the others
    with the usual class mix (hard negatives beside positives in the same diseased livers).
    Without any of them the output is that of earlier versions for the same seed."""
    if not 0.0 <= lesion_free_share <= 1.0:
        raise ValueError(f"lesion_free_share must be within 0-1, got {lesion_free_share}")
    lesion_free = lesion_free or lesion_free_share >= 1.0
    out = Path(out)
    rng = np.random.default_rng(seed)
    cache = GeometryCache()
    patients = make_patients(rng, max(1, (2 * n) // 3), profile)
    writer = DatasetWriter(out)
    stills: list[tuple[SimulatedImage, Patient, datetime]] = []
    for i in range(n):
        pat = patients[i % len(patients)] if i < len(patients) else patients[int(rng.integers(len(patients)))]
        when = pat.next_time(rng)
        geom = cache.get(pat.profile, None, _u_offset(rng))
        info = overlay_info_for(pat.profile, pat.name, pat.patient_id, when)
        if diffuse is None and not lesion_free and not lesion_free_share:
            sim = simulate_still(rng, geom, info=info)
        else:
            spec = sample_diffuse_spec(rng, diffuse) if diffuse is not None else None
            free = lesion_free or (lesion_free_share > 0 and rng.random() < lesion_free_share)
            scene = sample_scene(rng, geom, "normal" if free else None, diffuse=spec)
            sim = simulate_still(rng, geom, info=info, scene=scene)
        writer.add(sim, f"images/img_{i + 1:05d}", pat, when)
        if dicom and len(stills) < 5:
            stills.append((sim, pat, when))

    clip_sets: list[tuple[list[SimulatedImage], Patient, datetime]] = []
    if clips:
        for k in range(max(1, n // 20)):
            pat, when, geom, scene, info = _clip_setup(rng, patients, cache)
            frames = simulate_bmode_clip(rng, geom, scene, clip_frames, 10.0, info)
            write_clip(writer, frames, f"bmode_{k + 1:03d}", pat, when, 10.0, ceus=False)
            clip_sets.append((frames, pat, when))
    if ceus:
        for k in range(max(1, n // 25)):
            pat, when, geom, scene, info = _clip_setup(rng, patients, cache)
            info.extra_lines = ["CEUS  MI 0.08"]
            frames = simulate_ceus_clip(rng, geom, scene, info=info)
            write_clip(writer, frames, f"ceus_{k + 1:03d}", pat, when, 4.0, ceus=True)

    if dicom:
        write_dicom_files(out / "dicom", stills, clip_sets)
    info_doc = {"generator": "livus.simulate", "seed": seed, "profile": profile, "n_stills": n,
                **({"diffuse_mix": diffuse} if diffuse is not None else {}),
                **({"lesion_free": True} if lesion_free else {}),
                **({"lesion_free_share": lesion_free_share} if 0 < lesion_free_share < 1 else {}),
                "profiles": sorted({r.device for r in writer.records if r.device})}
    return save_dataset(out, writer.records, info_doc)


def write_dicom_files(folder: Path, stills: list[tuple[SimulatedImage, Patient, datetime]],
                      clip_sets: list[tuple[list[SimulatedImage], Patient, datetime]]) -> list[Path]:
    """Single-frame DICOMs of some stills and one multi-frame DICOM (a clip, or the stills)."""
    from livus.io.dicom_write import write_us_dicom

    paths = []
    for i, (sim, pat, when) in enumerate(stills):
        paths.append(write_us_dicom(folder / f"still_{i + 1:03d}.dcm", [sim.image], sim.pixel_spacing_mm,
                                    _patient_tags(pat), region=_fan_box(sim), acquired_at=when,
                                    manufacturer=pat.profile.vendor, model=pat.profile.name))
    if clip_sets:
        frames, pat, when = clip_sets[0]
        paths.append(write_us_dicom(folder / "clip_001.dcm", [f.image for f in frames], frames[0].pixel_spacing_mm,
                                    _patient_tags(pat), frame_time_ms=100.0, region=_fan_box(frames[0]),
                                    acquired_at=when, manufacturer=pat.profile.vendor, model=pat.profile.name))
    elif len(stills) >= 2 and all(s[0].image.shape == stills[0][0].image.shape for s in stills):
        sim, pat, when = stills[0]
        paths.append(write_us_dicom(folder / "multiframe_001.dcm", [s[0].image for s in stills], sim.pixel_spacing_mm,
                                    _patient_tags(pat), frame_time_ms=100.0, region=_fan_box(sim), acquired_at=when))
    return paths


def _patient_tags(pat: Patient) -> dict:
    return {"name": pat.name, "id": pat.patient_id, "birth_date": pat.birth_date, "sex": "O",
            "institution": "Simulated General Hospital", "accession": f"A{pat.patient_id[3:]}"}


def _fan_box(sim: SimulatedImage) -> tuple[int, int, int, int]:
    pts = np.asarray(sim.geom.fan_polygon)
    H, W = sim.image.shape
    return (int(max(pts[:, 0].min(), 0)), int(max(pts[:, 1].min(), 0)), int(min(pts[:, 0].max(), W - 1)),
            int(min(pts[:, 1].max(), H - 1)))
