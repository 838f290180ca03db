"""Regenerate the bundled ``examples/`` folder: a few labelled stills, a DICOM with a
Sequence of Ultrasound Regions, a short B-mode clip and a CEUS clip (all simulated)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np

from livus.io.dataset import save_dataset
from livus.simulate.clips import ClipMotion, simulate_bmode_clip, simulate_ceus_clip
from livus.simulate.dataset import DatasetWriter, make_patients, write_dicom_files
from livus.simulate.phantom import Scene
from livus.simulate.physics import ScanGeometry
from livus.simulate.profiles import get_profile
from livus.simulate.scenes import place_lesions, sample_anatomy
from livus.simulate.still import GeometryCache, SimulatedImage, overlay_info_for, simulate_still
from livus.simulate.video import write_video

# (name, profile, liver state, diagnoses, max diameter mm or None)
STILL_SPECS = (
    ("hcc_malignant", "sonora_c5", "cirrhosis", ["hcc"], (25.0, 45.0)),
    ("hemangioma_benign", "vistara_c6", "normal", ["hemangioma"], (12.0, 25.0)),
    ("small_lesion", "meditone_c3", "normal", ["metastasis"], (5.0, 9.5)),
    ("normal_liver", "echowave_c4m", "steatosis", [], None),
)


EXAMPLE_CEUS_TIMES_S = (0, 10, 14, 18, 25, 40, 60, 90, 120, 180)
DICOM_STILL = "small_lesion"


def _scene_with(rng: np.random.Generator, geom: ScanGeometry, state: str, diagnoses: list[str],
                size_mm: tuple[float, float] | None) -> Scene:
    """A scene with exactly the requested lesions (re-sampled until they fit and have the size)."""
    for _ in range(60):
        scene = sample_anatomy(rng, geom, state)
        place_lesions(rng, scene, geom, diagnoses)
        if len(scene.lesions) != len(diagnoses):
            continue
        if size_mm is None or all(size_mm[0] <= les.diameter_mm <= size_mm[1] for les in scene.lesions):
            scene.ribs = []
            return scene
    raise RuntimeError(f"could not place {diagnoses} of {size_mm} mm")


def write_examples(out: Path, seed: int = 7) -> Path:
    """Write the examples folder (images/, clips, dicom/, labels/annotations.json)."""
    out = Path(out)
    labels = out / "labels"
    for sub in ("labels", "dicom"):
        shutil.rmtree(out / sub, ignore_errors=True)
    for old in list(out.glob("*.png")) + list(out.glob("*.avi")) + list(out.glob("*.mp4")):
        old.unlink()
    rng = np.random.default_rng(seed)
    cache = GeometryCache()
    patients = make_patients(rng, len(STILL_SPECS) + 2, None)
    writer = DatasetWriter(labels)
    first_still: list[tuple[SimulatedImage, object, object]] = []
    for k, (name, prof_name, state, diags, size) in enumerate(STILL_SPECS):
        pat = patients[k]
        pat.profile = get_profile(prof_name)
        when = pat.next_time(rng)
        geom = cache.get(pat.profile)
        scene = _scene_with(rng, geom, state, diags, size)
        sim = simulate_still(rng, geom, info=overlay_info_for(pat.profile, pat.name, pat.patient_id, when), scene=scene)
        rec = writer.add(sim, f"images/{name}", pat, when)
        # the image itself also sits at the top of examples/ (what `livus analyze examples` reads)
        shutil.copyfile(labels / rec.file_name, out / f"{name}.png")
        if name == DICOM_STILL:
            first_still.append((sim, pat, when))

    # B-mode clip: 2 s at 10 fps, linear-free convex profile at a small export size
    pat = patients[-2]
    pat.profile = get_profile("echowave_c4m")
    when = pat.next_time(rng)
    geom = cache.get(pat.profile)
    scene = _scene_with(rng, geom, "cirrhosis", ["hcc"], (12.0, 30.0))
    info = overlay_info_for(pat.profile, pat.name, pat.patient_id, when)
    frames = simulate_bmode_clip(rng, geom, scene, 20, 10.0, info, ClipMotion(elev_sweep_mm=5.0), bad_events=False)
    for i, fr in enumerate(frames):
        writer.add(fr, f"clips/bmode_clip/f{i:04d}", pat, when + timedelta(seconds=i / 10), clip_id="bmode_clip",
                   frame_index=i, time_s=i / 10)
    write_video(out / "bmode_clip.avi", [f.image for f in frames], 10.0, quality=70)

    # CEUS clip (HCC: arterial hyperenhancement, late washout)
    pat = patients[-1]
    pat.profile = get_profile("echowave_c4m")
    when = pat.next_time(rng)
    scene = _scene_with(rng, geom, "cirrhosis", ["hcc"], (15.0, 30.0))
    info = overlay_info_for(pat.profile, pat.name, pat.patient_id, when)
    info.extra_lines = ["CEUS  MI 0.08"]
    cframes = simulate_ceus_clip(rng, geom, scene, times_s=EXAMPLE_CEUS_TIMES_S, info=info)
    for i, fr in enumerate(cframes):
        t = fr.extra["seconds_after_injection"]
        writer.add(fr, f"clips/ceus_clip/f{i:04d}", pat, when + timedelta(seconds=t), clip_id="ceus_clip",
                   frame_index=i, time_s=t, sai=t)
    write_video(out / "ceus_clip.avi", [f.image for f in cframes], 4.0, quality=70)

    write_dicom_files(out / "dicom", first_still, [])
    (out / "dicom" / "still_001.dcm").rename(out / "dicom" / f"{DICOM_STILL}.dcm")
    save_dataset(labels, writer.records, {"generator": "livus.simulate.examples", "seed": seed})
    (out / "README.md").write_text(_README, encoding="utf-8")
    return out


_README = """# Examples (simulated)

Everything here is produced by the livus phantom simulator (`make examples`, i.e.
`livus simulate-examples --out examples`); no real patient data, fake names only.

- `hcc_malignant.png`, `hemangioma_benign.png`, `small_lesion.png` (< 10 mm), `normal_liver.png`:
  B-mode stills with burned-in scanner overlays. "Normal" means no focal lesion. The simulated
  liver behind each still may be normal, fatty or cirrhotic (`labels/annotations.json`,
  `extra.liver_state`), and its report's liver-background line reads that liver. A fatty
  `normal_liver` gets a steatosis line, as it should.
- `bmode_clip.avi`: 2 s B-mode sweep at 10 fps (one HCC, stable `lesion_id`).
- `ceus_clip.avi`: contrast-mode frames 0–180 s after injection (HCC pattern).
- `dicom/small_lesion.dcm`: US Image Storage with a Sequence of Ultrasound Regions (true spacing).
- `labels/`: the same in the livus dataset format (`annotations.json`, masks, overlay masks),
  so `livus evaluate --data examples/labels` can score results.

## Real images in the demo (not stored here)

`make demo` also analyses six real AUL images when the AUL folder lies beside the clone
(`../shared/data/aul`, or `make demo AUL=/path/to/aul`): the two lowest image ids of each class
whose file names are not taken by an earlier class (inputs with the same file name form one case):
`Benign/image/1.jpg`, `2.jpg`, `Malignant/image/4.jpg`, `5.jpg`, `Normal/image/3.jpg`, `6.jpg`,
read in place — the project never commits AUL files. AUL: Xu Y. et al., *Annotated Ultrasound
Liver images*, Zenodo 7272660 (2022), CC BY 4.0. These images belong to the data the shipped
models were trained on, so the demo shows the models in-sample: it is a demonstration, not a
measurement (the cross-validated figures are in `models/MODEL_CARD.md`).
"""
