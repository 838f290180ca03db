"""Control for tests/train/test_ddp.py (issue 17): the same 2-gloo-rank vs 1-process detector run
with batch norm frozen (running statistics, never batch statistics) in both. If the two loss
curves then agree to the log's rounding, the ~1% gap of the real test comes from batch norm
computed per rank (2 images) instead of over the global batch (4 images), not from the data
split, the gradient averaging or the sampler.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ddp_batchnorm_control.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "train"))
import test_ddp  # noqa: E402 - the test's dataset, config and rank function


def _frozen(self, x):  # type: ignore[no-untyped-def]
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


_BatchNorm.forward = _frozen  # module level: the spawned ranks import this file too


def main() -> None:
    import torch.multiprocessing as mp

    tmp = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "ds"
    test_ddp._make_dataset(data, n=8)
    test_ddp.train_detector(data, test_ddp._cfg(), tmp / "one", progress=False)
    (tmp / "ddp").mkdir(exist_ok=True)
    mp.spawn(test_ddp._rank, args=(2, test_ddp._free_port(), data, tmp / "ddp"), nprocs=2, join=True)
    for f in (0, 1):
        a = test_ddp._losses(tmp / "one" / f"fold{f}" / "log.csv")
        b = test_ddp._losses(tmp / "ddp" / f"fold{f}" / "log.csv")
        print(f"fold{f}: 1 process {a.tolist()}, 2 ranks {b.tolist()}, max rel diff {float(np.max(np.abs(a - b) / a)):.2e}")


if __name__ == "__main__":
    main()
