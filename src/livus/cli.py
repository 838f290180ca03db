"""``livus`` command line. Every sub-command is a thin call into the package.

Imports are done inside the handlers so that ``livus --help`` stays fast and a sub-command only
loads what it needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_analyze(args: argparse.Namespace) -> int:
    import os

    from livus.infer.pipeline import analyze_paths
    from livus.io.sources import as_source, read_source_list

    paths = [as_source(p) for p in args.paths]  # a URI (s3://, file://, ...) stays a URI
    if args.inputs_from:  # one path or URI a line (blank lines and '#' comments skipped)
        paths += read_source_list(as_source(args.inputs_from))
    if not paths:
        raise ValueError("no input: give PATHS or --inputs-from FILE")
    workers, engine = args.workers or 1, None
    if args.engine == "ray":
        from livus.infer.ray_engine import RayEngine, import_ray

        try:
            import_ray()
        except RuntimeError as exc:
            print(f"livus: error: {exc}", file=sys.stderr)
            return 2
        engine = RayEngine(Path(args.out) / "shards", address=args.address, actors=args.workers)
        workers = min(args.workers or os.cpu_count() or 1, os.cpu_count() or 1)  # the report pool, here
    elif args.address:
        raise ValueError("--address needs --engine ray")
    summary = analyze_paths(
        paths,
        Path(args.out),
        config_path=args.config,
        patient_path=args.patient,
        workers=workers,
        language=args.language,
        overlays=not args.no_overlays,
        ceus_offset_s=args.ceus_offset,
        engine=engine,
        reports=args.reports,
    )
    if engine is not None:
        print(f"  ray: {engine.stats.get('reused', 0)} input(s) from earlier shards, "
              f"{engine.stats.get('analysed', 0)} analysed, {engine.stats.get('failed', 0)} failed")
    return 0 if summary.n_frames > 0 or not summary.errors else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from livus.evaluate.run import evaluate_results

    metrics = evaluate_results(Path(args.results), Path(args.data), out_dir=Path(args.out) if args.out else None)
    print(metrics.summary_text())
    return 0


def _cmd_data_import(args: argparse.Namespace) -> int:
    from livus.io.importers import import_dataset

    ds = import_dataset(Path(args.src), args.format, Path(args.out))
    print(f"imported {len(ds)} images into {args.out}")
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from livus.io.dataset import load_dataset
    from livus.io.importers import dataset_info

    print(dataset_info(load_dataset(Path(args.dir))))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from livus.simulate.dataset import simulate_dataset
    from livus.simulate.diffuse import parse_mix

    path = simulate_dataset(
        Path(args.out),
        n=args.n,
        clips=args.clips,
        ceus=args.ceus,
        dicom=args.dicom,
        profile=args.profile,
        seed=args.seed,
        diffuse=parse_mix(args.diffuse) if args.diffuse is not None else None,
        lesion_free=args.no_lesions,
        lesion_free_share=args.lesion_free_share,
    )
    print(f"simulated dataset written to {path}")
    return 0


def _cmd_simulate_examples(args: argparse.Namespace) -> int:
    from livus.simulate.examples import write_examples

    path = write_examples(Path(args.out), seed=args.seed)
    print(f"examples written to {path}")
    return 0


def _cmd_train_detector(args: argparse.Namespace) -> int:
    from livus.train.detector import train_detector_cli

    return train_detector_cli(args)


def _cmd_train_classifier(args: argparse.Namespace) -> int:
    from livus.train.classifier import train_classifier_cli

    return train_classifier_cli(args)


def _cmd_train_ceus(args: argparse.Namespace) -> int:
    from livus.train.ceus import train_ceus_cli

    return train_ceus_cli(args)


def _cmd_train_retrain(args: argparse.Namespace) -> int:
    from livus.train.retrain import retrain_cli

    return retrain_cli(args)


def _cmd_train_average(args: argparse.Namespace) -> int:
    from livus.train.weight_average import average_cv_runs, average_detectors

    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    members = [Path(m) for m in args.members]
    if all(m.is_dir() for m in members):
        written = average_cv_runs(members, Path(args.out), weights)
        print(f"{len(written)} averaged fold models written to {args.out}")
    elif all(m.is_file() for m in members):
        print(f"averaged detector written to {average_detectors(members, Path(args.out), weights)}")
    else:
        raise ValueError("members must all be detector checkpoints or all CV run folders (and exist)")
    print("the score calibration and report threshold are the first member's: refit them on the averaged CV run "
          "(benchmarks/pretrained_cv_report.py --cv) before shipping")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from livus.report.deidentify import deidentify_path

    if not args.deidentify:
        print("livus: error: exports are always de-identified: add --deidentify", file=sys.stderr)
        return 2
    report = deidentify_path(Path(args.src), Path(args.dst), key=args.key, write_uncertain=args.keep_unverified)
    print(report.summary_text())
    return 0 if report.written else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from livus.train.bench import bench_cli

    return bench_cli(args)


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from livus.train.onnx_build import build_onnx_models

    for name, path in build_onnx_models(Path(args.models), Path(args.data), n_calibration=args.calibration).items():
        print(f"{name:18s} {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="livus", description="Liver ultrasound lesion analysis (decision support).")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse images, DICOM, clips → results.jsonl, overlays, report")
    a.add_argument("paths", nargs="*", help="files or folders (recursive), or URIs read through pyarrow "
                                            "(file://, s3://, gs://, hdfs://...; pip install 'livus[cluster]')")
    a.add_argument("--inputs-from", "--paths-from", dest="inputs_from", default=None, metavar="FILE",
                   help="also the inputs listed in FILE, one path or URI a line")
    a.add_argument("--out", required=True, help="output folder")
    a.add_argument("--config", default=None, help="YAML config (see livus.config)")
    a.add_argument("--patient", default=None, help="JSON file with the patient's liver background")
    a.add_argument("--workers", type=int, default=None,
                   help="parallel worker processes for files (default 1); with --engine ray: Ray actors "
                        "(default: one per CPU of the cluster)")
    a.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local processes, or a Ray cluster (pip install 'livus[cluster]'; resumable: "
                        "a re-run into the same --out analyses only inputs without results)")
    a.add_argument("--address", default=None, help="with --engine ray: the cluster (e.g. auto, host:6379, "
                                                   "ray://host:10001); default: a local Ray")
    a.add_argument("--language", choices=["zh", "en"], default="zh", help="report language")
    a.add_argument("--no-overlays", action="store_true", help="skip overlay PNGs")
    a.add_argument("--reports", choices=["all", "findings", "none"], default=None,
                   help="HTML/PDF reports for every case, only for cases that need a reader's attention "
                        "(lesion, priority not routine, limited/not assessable, warning, LI-RADS other than "
                        "US-1 vis A, cirrhosis signs or moderate/severe steatosis), or none "
                        "(default: the config's analyze.reports, all)")
    a.add_argument("--ceus-offset", type=float, default=None, metavar="SECONDS",
                   help="clips are CEUS: clip time 0 is SECONDS after the contrast injection (adds CEUS features; "
                        "a DICOM clip's ContrastBolusStartTime is used when present)")
    a.set_defaults(func=_cmd_analyze)

    e = sub.add_parser("evaluate", help="metrics of results.jsonl against a labelled dataset")
    e.add_argument("--results", required=True, help="folder with results.jsonl")
    e.add_argument("--data", required=True, help="livus dataset folder")
    e.add_argument("--out", default=None, help="where to write metrics.json and plots (default: results folder)")
    e.set_defaults(func=_cmd_evaluate)

    d = sub.add_parser("data", help="dataset import and info")
    dsub = d.add_subparsers(dest="data_command", required=True)
    di = dsub.add_parser("import", help="import a dataset into the livus format")
    di.add_argument("src")
    di.add_argument("--format", required=True, choices=["aul", "coco", "masks", "csv"])
    di.add_argument("--out", required=True)
    di.set_defaults(func=_cmd_data_import)
    dn = dsub.add_parser("info", help="counts per class and lesion-size quantiles")
    dn.add_argument("dir")
    dn.set_defaults(func=_cmd_data_info)

    s = sub.add_parser("simulate", help="simulated, fully labelled B-mode/CEUS data")
    s.add_argument("--n", type=int, default=100, help="number of still images")
    s.add_argument("--out", required=True)
    s.add_argument("--clips", action="store_true", help="also write B-mode clips")
    s.add_argument("--ceus", action="store_true", help="also write CEUS clips")
    s.add_argument("--dicom", action="store_true", help="also write DICOM files")
    s.add_argument("--profile", default=None, help="scanner profile name (default: mix of all)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--diffuse", default=None, metavar="MIX",
                   help="diffuse liver disease in the stills, labelled per image: 'default' or weights such as "
                        "'steatosis=0.3,fibrosis=0.4,fibrosis:4=0.1,schistosomal=0.1,mixed=0.1,none=0.1'")
    s.add_argument("--no-lesions", action="store_true", help="stills without focal lesions (e.g. hard negatives)")
    s.add_argument("--lesion-free-share", type=float, default=0.0, metavar="F",
                   help="share (0-1) of the stills drawn without focal lesions, the rest with the usual class mix")
    s.set_defaults(func=_cmd_simulate)

    se = sub.add_parser("simulate-examples", help="regenerate the bundled examples/ folder")
    se.add_argument("--out", default="examples")
    se.add_argument("--seed", type=int, default=7)
    se.set_defaults(func=_cmd_simulate_examples)

    t = sub.add_parser("train", help="train models")
    tsub = t.add_subparsers(dest="train_command", required=True)
    td = tsub.add_parser("detector", help="train the lesion detector/segmenter")
    td.add_argument("--data", required=True, help="livus dataset folder (see `livus data import`)")
    td.add_argument("--config", default=None, help="YAML config")
    td.add_argument("--out", default="runs/detector", help="run folder (checkpoints, log.csv)")
    td.add_argument("--folds", type=int, default=None, help="k for cross-validation (0 = train on all)")
    td.add_argument("--resume", action="store_true", help="resume from the run folder's checkpoint")
    td.add_argument("--device", default=None, choices=["cpu", "cuda", "mps"], help="training device (default: config, cpu)")
    td.add_argument("--ddp", action="store_true", help="one rank of a data-parallel run started by torchrun (gloo on "
                    "cpu, NCCL on cuda): torchrun --nproc-per-node N -m livus.cli train detector --ddp ...")
    td.set_defaults(func=_cmd_train_detector)
    tc = tsub.add_parser("classifier", help="cross-validate and train the lesion classifier (malignancy + features)")
    tc.add_argument("--data", required=True, help="livus dataset folder with lesion outlines")
    tc.add_argument("--out", default="runs/classifier", help="run folder (cv.json, cv.md, reliability PNGs, classifier.pt)")
    tc.add_argument("--folds", type=int, default=5, help="k for cross-validation (0 = only train on all)")
    tc.add_argument("--device", default="cpu", choices=["cpu", "cuda", "mps"], help="training device")
    tc.add_argument("--epochs", type=int, default=None, help="epochs per model (default: ClassifierTrainConfig)")
    tc.add_argument("--save", default=None, help="also write the final model here (e.g. models/classifier.pt)")
    tc.add_argument("--sim", default=None, help="simulated dataset adding B-mode feature labels (see `livus simulate`)")
    tc.set_defaults(func=_cmd_train_classifier)
    tr = tsub.add_parser("retrain", help="retrain the detector with confirmed cases; register the candidate (inactive)")
    tr.add_argument("--data", required=True, help="base livus dataset (its fixed validation images are never trained on)")
    tr.add_argument("--confirmed", nargs="+", required=True, help="dataset folders of physician-confirmed cases (service export)")
    tr.add_argument("--registry", required=True, help="model registry folder (the service's <data_dir>/models)")
    tr.add_argument("--config", default=None, help="YAML config")
    tr.add_argument("--out", default="runs/retrain", help="run folder")
    tr.add_argument("--epochs", type=int, default=None)
    tr.set_defaults(func=_cmd_train_retrain)
    tce = tsub.add_parser("ceus", help="CEUS feature heads (APHE, washout, capsule) on simulated contrast clips")
    tce.add_argument("--clips", type=int, default=200, help="simulated CEUS clips (70/30 split by clip)")
    tce.add_argument("--seed", type=int, default=0)
    tce.add_argument("--kind", default="mlp", choices=["mlp", "cnn"], help="time-intensity MLP or phase-crop CNN")
    tce.add_argument("--save", default=None, help="write the model here (e.g. models/ceus.pt)")
    tce.add_argument("--threads", type=int, default=1)
    tce.set_defaults(func=_cmd_train_ceus)
    ta = tsub.add_parser("average", help="weight average (model soup) of detectors fine-tuned from one another")
    ta.add_argument("members", nargs="+", help="detector checkpoints, or CV run folders averaged fold by fold")
    ta.add_argument("--out", required=True, help="averaged checkpoint (members are files) or run folder (members are runs)")
    ta.add_argument("--weights", default=None, help="comma-separated member weights (default equal; normalised)")
    ta.set_defaults(func=_cmd_train_average)

    x = sub.add_parser("export", help="de-identified copy of DICOM, images and results (JSON/CSV)")
    x.add_argument("--deidentify", action="store_true", help="required: DICOM confidentiality profile, "
                   "pseudonyms, burned-in text blacked out")
    x.add_argument("src", help="file or folder to export")
    x.add_argument("dst", help="output folder (outside SRC)")
    x.add_argument("--key", default=None, help="site key for pseudonyms (default: $LIVUS_DEID_KEY)")
    x.add_argument("--keep-unverified", action="store_true",
                   help="write images whose burned-in text OCR could not verify clean (default: withhold them); "
                        "they are listed and marked (DICOM BurnedInAnnotation YES, no Clean Pixel Data option)")
    x.set_defaults(func=_cmd_export)

    bn = sub.add_parser("bench", help="speed/memory of the per-frame analysis on this machine (torch vs ONNX fp32/int8)")
    bn.add_argument("--quick", action="store_true", help="one size, few iterations (smoke test)")
    bn.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    bn.add_argument("--sizes", default=None, help="detector input sizes, e.g. 256,384,512")
    bn.add_argument("--runtimes", default=None, help="e.g. torch,onnx-fp32,onnx-int8")
    bn.add_argument("--workers", default=None, help="worker-process counts for throughput, e.g. 1,2")
    bn.add_argument("--iterations", type=int, default=None, help="timed frames per configuration")
    bn.add_argument("--threads", type=int, default=None, help="CPU threads of the single-stream runs (default 2)")
    bn.add_argument("--model-dir", default=None, help="folder with detector.pt/classifier.pt (default: models/)")
    bn.add_argument("--frame", default=None, help="image to analyse (default: examples/hcc_malignant.png, 1024x768)")
    bn.add_argument("--data", default=None, help="livus dataset for int8 calibration of generated files")
    bn.add_argument("--work-dir", default=None, help="keep generated ONNX files here")
    bn.add_argument("--default-runtime", default=None, help="runtime whose figures are the headline (default onnx-int8)")
    bn.add_argument("--default-size", type=int, default=None, help="input size of the headline (default: the detector's)")
    bn.set_defaults(func=_cmd_bench)

    eo = sub.add_parser("export-onnx", help="export models/*.pt to ONNX fp32 + static int8 (calibrated on a dataset)")
    eo.add_argument("--models", default="models", help="folder with detector.pt / classifier.pt")
    eo.add_argument("--data", required=True, help="livus dataset for int8 calibration (e.g. AUL imported)")
    eo.add_argument("--calibration", type=int, default=64, help="calibration images (classifier: twice as many crops)")
    eo.set_defaults(func=_cmd_export_onnx)

    from livus.service.admin import add_subparsers as add_service_subparsers  # serve, user, model

    add_service_subparsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from livus.errors import InputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InputError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"livus: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
