"""Live mode over the WebSocket: results per frame, bad frames answered, no login refused."""

from __future__ import annotations

import asyncio
import json
import struct

import cv2
import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from livus.service.live import LatestFrame, decode_live_frame

from .conftest import png_bomb, ultrasound_like


def message(seq: int, img: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return struct.pack(">I", seq) + buf.tobytes()


def test_decode_live_frame_checks_input():
    img = ultrasound_like(64, 48)
    seq, out = decode_live_frame(message(7, img, ".png"), 2048)
    assert seq == 7 and out.shape == (48, 64) and np.array_equal(out, img)
    for bad in (b"", b"\x00\x00\x00\x01", b"\x00\x00\x00\x01not an image"):
        with pytest.raises(ValueError):
            decode_live_frame(bad, 2048)
    with pytest.raises(ValueError, match="larger"):
        decode_live_frame(message(1, ultrasound_like(300, 200)), 256)
    # a small PNG that claims 60000 x 60000 pixels is refused from its header, before decoding
    with pytest.raises(ValueError, match="larger"):
        decode_live_frame(struct.pack(">I", 2) + png_bomb(), 2048)
    with pytest.raises(ValueError, match="larger"):
        decode_live_frame(struct.pack(">I", 2) + png_bomb(3000), 2048)


def test_latest_frame_keeps_only_the_newest():
    async def scenario() -> tuple[list, int]:
        box = LatestFrame()
        for i in range(5):
            box.put(i)  # five frames arrive while the analyser is busy
        first = await box.get()
        box.put(5)
        second = await box.get()
        box.close()
        return [first, second, await box.get()], box.dropped

    got, dropped = asyncio.run(scenario())
    assert got == [4, 5, None] and dropped == 4


def test_live_websocket_streams_results(service, doc):
    frames = [ultrasound_like(1024, 768, seed=i) for i in range(3)]
    with doc.websocket_connect("/api/live") as ws:
        for i, img in enumerate(frames, start=1):
            ws.send_bytes(message(i, img))
            reply = json.loads(ws.receive_text())
            assert reply["seq"] == i
            assert reply["result"]["schema"] == "livus.result/1"
            assert reply["result"]["image_size_px"] == [1024, 768]
            assert reply["server_ms"] >= reply["analyze_ms"] > 0
            assert "version" in reply["result"]["model"]
        ws.send_bytes(struct.pack(">I", 9) + b"garbage")
        reply = json.loads(ws.receive_text())
        assert reply["seq"] == 9 and "error" in reply
        ws.send_bytes(message(10, frames[0]))  # the session survives a bad frame
        assert json.loads(ws.receive_text())["seq"] == 10


def test_live_websocket_refuses_without_login(service):
    c = service.client()
    with pytest.raises(WebSocketDisconnect) as exc:
        with c.websocket_connect("/api/live") as ws:
            ws.receive_text()
    assert exc.value.code == 4401


def test_live_websocket_refuses_other_origins(service, doc):
    with pytest.raises(WebSocketDisconnect) as exc:
        with doc.websocket_connect("/api/live", headers={"origin": "http://evil.example"}) as ws:
            ws.receive_text()
    assert exc.value.code == 4403


def test_live_websocket_refuses_researchers(service, researcher):
    with pytest.raises(WebSocketDisconnect) as exc:
        with researcher.websocket_connect("/api/live") as ws:
            ws.receive_text()
    assert exc.value.code == 4403


def test_live_token_only_in_the_first_message(service):
    """Scripts send the bearer token as the first message; a token in the URL is ignored."""
    token = service.client().post("/api/login", json={"username": "doc", "password": "doctor-pass-123",
                                                      "want_token": True}).json()["token"]
    with pytest.raises(WebSocketDisconnect) as exc:
        with service.client().websocket_connect(f"/api/live?token={token}") as ws:
            ws.send_text("{}")
            ws.receive_text()
    assert exc.value.code == 4401
    with service.client().websocket_connect("/api/live") as ws:
        ws.send_text(json.dumps({"token": token}))
        ws.send_bytes(message(1, ultrasound_like(320, 240)))
        assert json.loads(ws.receive_text())["seq"] == 1
