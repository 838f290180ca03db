"""CPU time of the PDF report stage (``livus.report.pdf.pdf_bytes``) per report, on real report
contents (issue 17).

The contents are those ``livus analyze`` writes for the first ``--n`` AUL stills (Benign,
Malignant, Normal in turn; else the bundled examples) in Chinese and in English, captured in
this process; then every report is made ``--rounds`` times. Prints the median and the range of
CPU ms per PDF (process clock: the machine may be shared) for all reports, by language, and
the split into font + layout (``build_pdf``) and writing (``output``).

    .venv/bin/python benchmarks/pdf_report_cpu.py [--n 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from analyze_throughput import pick_inputs


def capture_contents(n: int, tmp: Path) -> list:
    """ReportContent of every case ``analyze_paths`` reports, for ``n`` stills, zh then en."""
    import livus.report.pdf as pdf
    from livus.infer.pipeline import analyze_paths

    captured = []
    original = pdf.write_pdf

    def capture(content, path):  # type: ignore[no-untyped-def]
        captured.append(content)
        return original(content, path)

    pdf.write_pdf = capture  # render_report looks it up at call time
    try:
        inputs = pick_inputs(n, tmp)
        for language in ("zh", "en"):
            with redirect_stdout(io.StringIO()):
                analyze_paths(inputs, tmp / f"out_{language}", workers=1, language=language, overlays=True,
                              progress=False)
    finally:
        pdf.write_pdf = original
    return captured


def _ms_per_report(fn, contents: list) -> float:
    t0 = time.process_time()
    for content in contents:
        fn(content)
    return (time.process_time() - t0) / len(contents) * 1000


def _split(content) -> tuple[float, float]:
    """CPU ms of laying out (font included) and of writing one report, prepared-font path."""
    from livus.report.fonts import prepared
    from livus.report.pdf import PreparedFontOutputProducer, _font_tiers, build_pdf

    t0 = time.process_time()
    doc = build_pdf(content, prepared.prepared_font(_font_tiers(content.language)[0]).path, share_font=True)
    t1 = time.process_time()
    doc.output(output_producer_class=PreparedFontOutputProducer)
    return (t1 - t0) * 1000, (time.process_time() - t1) * 1000


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} ms ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20, help="stills to analyse (each gives one report per language)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from livus.report.pdf import pdf_bytes

    with tempfile.TemporaryDirectory() as d:
        contents = capture_contents(args.n, Path(d))
        groups = {"all": contents, **{lang: [c for c in contents if c.language == lang] for lang in ("zh", "en")}}
        print(f"{len(contents)} reports; load average {os.getloadavg()[0]:.2f}")
        for content in contents[:4]:
            pdf_bytes(content)  # prepared fonts loaded, imports done
        times: dict[str, list[float]] = {k: [] for k in groups}
        layout, output = [], []
        for _ in range(args.rounds):
            for name, group in groups.items():
                times[name].append(_ms_per_report(pdf_bytes, group))
            split = [_split(c) for c in contents]
            layout.append(statistics.fmean(s[0] for s in split))
            output.append(statistics.fmean(s[1] for s in split))
        for name, values in times.items():
            print(f"pdf_bytes {name:3s}: {_summary(values)} CPU per PDF (median of {args.rounds} rounds, range)")
        print(f"  font + layout (build_pdf): {_summary(layout)}; writing (output): {_summary(output)}")
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
