"""Upload load test of ``livus serve`` over loopback: ``--users`` physicians upload studies at
the same time; per study the time from the upload to the finished analysis (results, overlays,
report), its p50/p95, and the analyses finished per second.

Without ``--url`` it starts its own server (temporary data directory, uvicorn in a thread on a
free 127.0.0.1 port, ``--workers`` analysis processes). One study is analysed first to start the
worker processes (reported apart as the cold start). Each user then uploads ``--per-user``
studies one after the other (a bundled example image each), polling the study's status route.
All loops are bounded in count and time; only 127.0.0.1 is contacted.

    .venv/bin/python benchmarks/service_uploads.py [--users 8] [--per-user 2] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from service_load import login_token, start_server  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
IMAGES = ("hcc_malignant.png", "hemangioma_benign.png", "small_lesion.png", "normal_liver.png")


def one_study(url: str, token: str, image: Path, deadline: float) -> tuple[float, str]:
    """Upload ``image`` as a study and wait until it is analysed; ``(seconds, final status)``."""
    import httpx

    auth = {"Authorization": f"Bearer {token}"}
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/api/studies", headers=auth, timeout=60,
                   files=[("files", (image.name, image.read_bytes(), "image/png"))])
    r.raise_for_status()
    uid = r.json()["uid"]
    status = "queued"
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/api/studies/{uid}/status", headers=auth, timeout=30).json()["status"]
        if status in ("done", "failed"):
            break
        time.sleep(0.1)
    return time.perf_counter() - t0, status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default=None, help="running server (default: start one on 127.0.0.1)")
    p.add_argument("--user", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--per-user", type=int, default=2)
    p.add_argument("--workers", type=int, default=0, help="analysis processes of the server it starts (0 = cores)")
    p.add_argument("--max-seconds", type=float, default=600.0)
    args = p.parse_args(argv)

    server = None
    if args.url is None:
        tmp = tempfile.mkdtemp(prefix="livus-bench-")
        args.url, args.user, args.password, server = start_server(Path(tmp), analysis_workers=args.workers)
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        print("refusing: this load test only targets the loopback address")
        return 2
    deadline = time.monotonic() + min(args.max_seconds, 1800)
    images = [EXAMPLES / n for n in IMAGES]
    cold_s, cold_status = one_study(args.url, login_token(args.url, args.user, args.password), images[0], deadline)

    latencies: list[float] = []
    statuses: list[str] = []
    lock = threading.Lock()
    tokens = [login_token(args.url, args.user, args.password) for _ in range(args.users)]

    def user(k: int) -> None:
        for j in range(args.per_user):
            if time.monotonic() >= deadline:
                return
            s, status = one_study(args.url, tokens[k], images[(k + j) % len(images)], deadline)
            with lock:
                latencies.append(s)
                statuses.append(status)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(k,)) for k in range(args.users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    workers = args.workers or os.cpu_count()
    done = statuses.count("done")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes share the CPU)")
    print(f"livus upload load test: {args.users} users x {args.per_user} studies (one example PNG each), "
          f"{workers if server else '?'} analysis worker process(es)")
    print(f"  cold start (first study, starts the workers): {cold_s:.1f} s ({cold_status})")
    print(f"  upload -> analysed   p50 {np.percentile(latencies, 50):.1f} s   p95 {np.percentile(latencies, 95):.1f} s   "
          f"max {max(latencies):.1f} s   ({done} done, {len(statuses) - done} not done)")
    print(f"  throughput           {done / wall:.2f} analyses/s over {wall:.1f} s")
    if server is not None:
        server.should_exit = True
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
