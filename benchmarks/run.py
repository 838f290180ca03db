"""Thin wrapper of ``livus bench`` (same options): per-stage latency, single-stream frames/s,
worker throughput, peak memory and model load time for PyTorch vs ONNX fp32 vs ONNX int8 at
256/384/512 input. Example: ``python benchmarks/run.py --json bench.json`` (``--quick`` for a
smoke run)."""

from __future__ import annotations

import sys

from livus.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
