"""Live-mode load test of ``livus serve`` over loopback: server-side latency per frame and the
rate the live view keeps up with.

Without ``--url`` it starts its own server (temporary data directory, uvicorn in a thread on a
free 127.0.0.1 port). It then plays a synthetic 1024×768 clip at ``--fps`` like the web page
does — one frame in flight, frames shown while the server works are skipped — and finally
floods the socket with frames without waiting, to show that the server skips rather than
queues (answered frames stay recent, latency stays flat). All loops are bounded in count and
time; only 127.0.0.1 is contacted.

    .venv/bin/python benchmarks/service_load.py [--frames 300] [--fps 30] [--url http://127.0.0.1:8000 --user U --password P]
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def synthetic_clip(n: int, width: int, height: int) -> list[bytes]:
    """JPEG frames of a fan with speckle and a lesion moving slowly (pre-encoded: the client's
    JPEG cost is not the server's)."""
    rng = np.random.default_rng(0)
    out = []
    base = np.clip(rng.gamma(2.0, 40.0, (height, width)), 0, 255).astype(np.uint8)
    fan = np.zeros((height, width), np.uint8)
    cv2.ellipse(fan, (width // 2, 20), (height - 40, height - 40), 90, -38, 38, 255, -1)
    for i in range(n):
        img = np.where(fan > 0, np.roll(base, i * 3, axis=1), 0).astype(np.uint8)
        cv2.circle(img, (width // 2 + int(60 * np.sin(i / 15)), height // 2), 40, 30, -1)
        cv2.putText(img, f"{i:04d}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 255, 2)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        out.append(buf.tobytes())
    return out


def clip_frames(path: Path, n: int, width: int, height: int) -> list[bytes]:
    """JPEG frames of a real-looking clip (default: the bundled simulated B-mode sweep), resized
    to ``width``×``height`` and looped to ``n`` frames."""
    cap = cv2.VideoCapture(str(path))
    src = []
    while len(src) < 500:
        ok, frame = cap.read()
        if not ok:
            break
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        src.append(cv2.resize(grey, (width, height), interpolation=cv2.INTER_LINEAR))
    cap.release()
    if not src:
        raise SystemExit(f"{path}: no frames")
    out = []
    for i in range(n):
        k = i % (2 * len(src) - 1)  # play forwards then backwards (no jump at the loop)
        img = src[k if k < len(src) else 2 * len(src) - 2 - k]
        out.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return out


DEFAULT_CLIP = Path(__file__).resolve().parents[1] / "examples" / "bmode_clip.avi"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, **overrides: object) -> tuple[str, str, str, object]:
    """A server on a free 127.0.0.1 port (uvicorn in a thread) with a ``bench`` physician;
    ``overrides``: ``ServiceConfig`` fields."""
    import uvicorn

    from livus.config import ServiceConfig
    from livus.service.app import create_app
    from livus.service.auth import create_user

    app = create_app(ServiceConfig(data_dir=str(data_dir), **overrides))
    with app.state.livus.sm() as db:
        create_user(db, "bench", "bench-password-1", "physician")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=16 << 20))
    threading.Thread(target=server.run, daemon=True).start()
    t0 = time.monotonic()
    while not server.started and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", "bench", "bench-password-1", server


def login_token(url: str, user: str, password: str) -> str:
    import httpx

    r = httpx.post(f"{url}/api/login", json={"username": user, "password": password, "want_token": True}, timeout=30)
    r.raise_for_status()
    return r.json()["token"]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def play(ws, frames: list[bytes], fps: float, max_s: float) -> dict:
    """Play at ``fps`` with one frame in flight; returns latency and rate figures."""
    period = 1.0 / fps
    sent_at: dict[int, float] = {}
    server_ms, rtt_ms, answered_t, decode_ms, analyze_ms = [], [], [], [], []
    inflight = False
    skipped = 0
    t_start = time.perf_counter()
    for k, data in enumerate(frames):
        tick = t_start + k * period
        if time.perf_counter() - t_start > max_s:
            break
        while True:  # collect replies until the next video tick
            timeout = tick - time.perf_counter()
            if not inflight or timeout <= 0:
                break
            try:
                msg = ws.recv(timeout=timeout)
            except TimeoutError:
                break
            reply = json.loads(msg)
            now = time.perf_counter()
            inflight = False
            if "result" in reply:
                server_ms.append(reply["server_ms"])
                decode_ms.append(reply["decode_ms"])
                analyze_ms.append(reply["analyze_ms"])
                rtt_ms.append((now - sent_at[reply["seq"]]) * 1000)
                answered_t.append(now)
        delay = tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if inflight:
            skipped += 1
            continue
        sent_at[k] = time.perf_counter()
        ws.send(struct.pack(">I", k) + data)
        inflight = True
    if inflight:
        reply = json.loads(ws.recv(timeout=10))
        if "result" in reply:
            server_ms.append(reply["server_ms"])
    wall = time.perf_counter() - t_start
    n_shown = len(frames)
    return {
        "frames_shown": n_shown, "display_fps": n_shown / wall, "results": len(server_ms),
        "result_fps": (len(answered_t) - 1) / (answered_t[-1] - answered_t[0]) if len(answered_t) > 1 else 0.0,
        "skipped": skipped, "server_ms_p50": pct(server_ms, 50), "server_ms_p95": pct(server_ms, 95),
        "server_ms_max": max(server_ms, default=float("nan")), "rtt_ms_p95": pct(rtt_ms, 95),
        "decode_ms_p95": pct(decode_ms, 95), "analyze_ms_p95": pct(analyze_ms, 95),
    }


def flood(ws, frames: list[bytes], max_s: float) -> dict:
    """Send every frame at once; the server answers only the newest ones."""
    t0 = time.perf_counter()
    for k, data in enumerate(frames):
        ws.send(struct.pack(">I", 100000 + k) + data)
    last = 100000 + len(frames) - 1
    answered, dropped = [], 0
    while time.perf_counter() - t0 < max_s:
        reply = json.loads(ws.recv(timeout=max_s))
        answered.append(reply["seq"])
        dropped = reply.get("dropped", dropped)
        if reply["seq"] == last:
            break
    return {"sent": len(frames), "answered": len(answered), "server_dropped_total": dropped,
            "last_answered_is_newest": bool(answered and answered[-1] == last), "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default=None, help="running server (default: start one on 127.0.0.1)")
    p.add_argument("--user", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=768)
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--clip", default=str(DEFAULT_CLIP),
                   help="video played as the live source (default: examples/bmode_clip.avi; 'synthetic' for generated noise frames)")
    args = p.parse_args(argv)

    from websockets.sync.client import connect

    server = None
    if args.url is None:
        tmp = tempfile.mkdtemp(prefix="livus-bench-")
        args.url, args.user, args.password, server = start_server(Path(tmp))
    host = urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("refusing: this load test only targets the loopback address")
        return 2
    token = login_token(args.url, args.user, args.password)
    n = min(args.frames, 2000)
    if args.clip != "synthetic" and Path(args.clip).is_file():
        frames, source = clip_frames(Path(args.clip), n, args.width, args.height), args.clip
    else:
        frames, source = synthetic_clip(n, args.width, args.height), "synthetic"
    ws_url = args.url.replace("http", "ws", 1) + "/api/live"
    with connect(ws_url, max_size=16 << 20) as ws:
        ws.send(json.dumps({"token": token}))  # the first message logs in (never a token in the URL)
        ws.send(struct.pack(">I", 0) + frames[0])  # warm-up (loads the model, detects the fan)
        first = json.loads(ws.recv(timeout=60))
        res = play(ws, frames, args.fps, args.max_seconds)
        fl = flood(ws, frames[:100], args.max_seconds)
    import torch

    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes share the CPU)")
    model = first.get("result", {}).get("model", {})
    print(f"livus live load test: {args.width}x{args.height} JPEG frames of {source} at {args.fps:g} fps, "
          f"{len(frames)} frames, torch threads {torch.get_num_threads()}")
    print(f"  model: {model.get('name')} {model.get('version')} ({model.get('runtime', '')}); "
          f"lesions in the first frame: {len(first.get('result', {}).get('lesions', []))}; "
          f"warnings: {'; '.join(first.get('result', {}).get('warnings', []))[:160]}")
    print(f"  server time per frame   p50 {res['server_ms_p50']:.1f} ms   p95 {res['server_ms_p95']:.1f} ms   "
          f"max {res['server_ms_max']:.1f} ms   (target p95 <= 50 ms)")
    print(f"    of which JPEG decode p95 {res['decode_ms_p95']:.1f} ms, analysis (preprocess + model) p95 {res['analyze_ms_p95']:.1f} ms")
    print(f"  round trip (loopback)   p95 {res['rtt_ms_p95']:.1f} ms")
    print(f"  live view               {res['display_fps']:.1f} frames/s shown (target >= 25), "
          f"{res['result_fps']:.1f} results/s, {res['skipped']} of {res['frames_shown']} frames skipped")
    print(f"  flood ({fl['sent']} frames at once): {fl['answered']} answered, server skipped {fl['server_dropped_total']}, "
          f"newest answered: {fl['last_answered_is_newest']}, {fl['seconds']:.2f} s")
    if server is not None:
        server.should_exit = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
