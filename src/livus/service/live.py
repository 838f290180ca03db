"""Live mode: frames stream in over a WebSocket (``/api/live``), results stream back.

Login: the page's session cookie; a script without cookies sends its bearer token as the FIRST
message, a text message ``{"token": "..."}`` (within ``AUTH_TIMEOUT_S``). A token is never
accepted in the URL (URLs end up in server and proxy logs).

Protocol: the client sends binary messages ``seq (4 bytes, big-endian) + JPEG/PNG bytes``;
the server answers each analysed frame with a JSON text message
``{"seq", "result", "server_ms", "analyze_ms", "dropped"}`` (``server_ms``: decode +
analysis + encoding, measured on the server) or ``{"seq", "error"}`` for a bad frame.

The server never queues: a receiver task keeps only the newest unanalysed frame, so frames that
arrive while one is being analysed replace each other (counted in ``dropped``) and the result
always belongs to a recent frame. The page sends its next frame when a result arrives (one in
flight) and draws the newest result over the video at the video's own frame rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import struct
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import cv2
import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from PIL import Image

from livus.service import audit
from livus.types import Frame

log = logging.getLogger("livus.live")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
LIVE_ROLES = frozenset({"admin", "physician"})  # live frames are not de-identified
HEADER = struct.Struct(">I")
AUTH_TIMEOUT_S = 10.0


async def token_from_first_message(websocket: WebSocket) -> str | None:
    """The token of an accepted socket's first message ``{"token": "..."}``, else ``None``."""
    try:
        msg = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_S)
    except (asyncio.TimeoutError, WebSocketDisconnect, RuntimeError):
        return None
    try:
        token = json.loads(msg.get("text") or "{}").get("token")
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None


def decode_live_frame(data: bytes, max_side_px: int) -> tuple[int, np.ndarray]:
    """``(seq, grey uint8 image)`` from one binary message; ``ValueError`` when unusable."""
    if len(data) <= HEADER.size:
        raise ValueError("message too short")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError("frame larger than 8 MB")
    (seq,) = HEADER.unpack_from(data)
    try:  # the header's size, read without decoding: a small file may claim a huge image
        with Image.open(io.BytesIO(memoryview(data)[HEADER.size:])) as probe:
            width, height = probe.size
    except Image.DecompressionBombError:
        raise ValueError(f"frame larger than {max_side_px} px (decompression bomb)") from None
    except (OSError, ValueError):
        raise ValueError("cannot decode frame (send JPEG or PNG)") from None
    if max(width, height) > max_side_px:
        raise ValueError(f"frame {width}x{height} larger than {max_side_px} px")
    img = cv2.imdecode(np.frombuffer(data, np.uint8, offset=HEADER.size), cv2.IMREAD_GRAYSCALE)
    if img is None or img.ndim != 2 or img.size == 0:
        raise ValueError("cannot decode frame (send JPEG or PNG)")
    if max(img.shape) > max_side_px:
        raise ValueError(f"frame {img.shape[1]}x{img.shape[0]} larger than {max_side_px} px")
    return seq, img


def same_origin(websocket: WebSocket) -> bool:
    """Browsers send Origin on WebSocket handshakes; it must name this host (blocks other sites)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser (scripts authenticate with a token)
    host = websocket.headers.get("host", "")
    return urlsplit(origin).netloc == host


class LatestFrame:
    """A one-slot mailbox: ``put`` replaces an unread frame (counted as dropped)."""

    def __init__(self) -> None:
        self._item: Any = None
        self._event = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, item: Any) -> None:
        if self._item is not None:
            self.dropped += 1
        self._item = item
        self._event.set()

    async def get(self) -> Any:
        while self._item is None and not self.closed:
            self._event.clear()
            await self._event.wait()
        item, self._item = self._item, None
        return item

    def close(self) -> None:
        self.closed = True
        self._event.set()


def analyse_live(analyzer: Any, cache: Any, data: bytes, max_side_px: int, source: str,
                 registry_version: str | None) -> dict[str, Any]:
    """Decode and analyse one live frame (runs in a worker thread); timings in milliseconds."""
    from livus.service.analysis import model_label

    t0 = time.perf_counter()
    try:
        seq, img = decode_live_frame(data, max_side_px)
    except ValueError as exc:
        seq = HEADER.unpack_from(data)[0] if len(data) >= HEADER.size else -1
        return {"seq": seq, "error": str(exc)}
    t1 = time.perf_counter()
    try:
        fa = analyzer.analyze(Frame(img, source=source, frame_index=seq), cache)
    except Exception as exc:  # noqa: BLE001 - one bad frame ends neither the session nor the server
        log.warning("live frame %s not analysed: %s: %s", seq, type(exc).__name__, exc)
        return {"seq": seq, "error": f"frame not analysed ({type(exc).__name__})"}
    t2 = time.perf_counter()
    result = fa.result.to_json_dict()
    model_label(result, registry_version)
    return {"seq": seq, "result": result, "decode_ms": round((t1 - t0) * 1000, 2),
            "analyze_ms": round((t2 - t1) * 1000, 2), "server_ms": round((time.perf_counter() - t0) * 1000, 2)}


def register_live(app: FastAPI, state: Any, session_for_token: Callable) -> None:
    """Add the ``/api/live`` WebSocket route to ``app``."""
    from livus.preprocess.fan import FanCache

    @app.websocket("/api/live")
    async def live(websocket: WebSocket) -> None:
        if not same_origin(websocket):  # another site's page
            await websocket.close(code=4403)
            return
        await websocket.accept()  # accepted first, so that a refusal reaches the page with its reason
        token = websocket.cookies.get("livus_session") or await token_from_first_message(websocket)
        with state.sm() as db:
            rec = session_for_token(db, token)
            user = rec.user if rec else None
            if user is not None and user.role in LIVE_ROLES:
                audit.record(db, user, "live", "live-session", "", websocket.client.host if websocket.client else "")
        if user is None or user.role not in LIVE_ROLES:
            # 4401: no login; 4403: a role that may not see identifiable images
            await websocket.close(code=4401 if user is None else 4403,
                                  reason="login required" if user is None else "live mode is for clinical roles")
            return
        analyzer, version = await asyncio.to_thread(state.models.analyzer)
        cache = FanCache()
        box = LatestFrame()
        source = f"live-{id(websocket):x}"
        max_side = state.cfg.live_max_side_px

        async def receive() -> None:
            try:
                while True:
                    msg = await websocket.receive()
                    if msg["type"] == "websocket.disconnect":
                        break
                    data = msg.get("bytes")
                    if data is None:
                        continue  # text messages (pings) are ignored
                    box.put(data)
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                box.close()

        receiver = asyncio.create_task(receive())
        try:
            while True:
                data = await box.get()
                if data is None:
                    break
                reply = await asyncio.to_thread(analyse_live, analyzer, cache, data, max_side, source, version)
                reply["dropped"] = box.dropped
                await websocket.send_text(json.dumps(reply, ensure_ascii=False))
        except (WebSocketDisconnect, RuntimeError):
            pass
        except Exception:  # noqa: BLE001 - a broken frame must not take the server down
            log.exception("live session failed")
        finally:
            receiver.cancel()
            with contextlib.suppress(Exception):
                await websocket.close()

