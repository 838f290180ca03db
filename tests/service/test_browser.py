"""A real browser: Playwright drives Debian's Chromium (headless) against a running server:
log in, upload an image, see the overlay and the lesion table, switch language, run live mode
on a clip. Screenshots go to the test artefacts folder. Skips cleanly without chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import make_service, png_bytes, serving, ultrasound_like, upload_as_doctor
from .system_packages import ensure_debian_package

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or ensure_debian_package("chromium", "chromium")
    if path is None:
        pytest.skip("chromium could not be installed (Debian package 'chromium'): browser test skipped")
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) not installed")
    return path


@pytest.fixture()
def server(tmp_path):
    svc = make_service(tmp_path / "data")
    with serving(svc.app) as url:
        yield url, svc


def _clip(path: Path, n: int = 40) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 25, (320, 240), False)
    for i in range(n):
        w.write(np.roll(ultrasound_like(320, 240, seed=0), i, axis=1))
    w.release()
    return path


def test_browser_login_upload_overlay_live(chromium, server, tmp_path, artifacts_dir):
    from playwright.sync_api import sync_playwright

    url, svc = server
    image = EXAMPLES / "hcc_malignant.png"  # the bundled simulated example (a lesion to show)
    if not image.is_file():
        image = tmp_path / "liver_example.png"
        image.write_bytes(png_bytes(ultrasound_like(480, 360)))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, bypass_csp=True)  # lets wait_for_function evaluate; the page itself needs no eval
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.select_option("#lang", "en")  # the login page switches language too
            page.wait_for_function("document.querySelector('#login-form h2').textContent === 'Log in'")
            page.select_option("#lang", "zh")
            page.fill("#login-user", "doc")
            page.fill("#login-pass", "wrong-password")
            page.click("#login-submit")
            page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
            assert "用户名或密码错误" in page.locator("#login-error").inner_text()
            page.fill("#login-pass", "doctor-pass-123")
            page.click("#login-submit")
            page.wait_for_selector("#view-studies:not([hidden])")
            page.set_input_files("#upload-files", str(image))
            page.fill("#upload-desc", "browser test")
            page.fill("#upload-patient", "P-BROWSER-1")
            page.fill("#upload-name", "ZHANG^SAN")
            page.click("#upload-submit")
            page.wait_for_selector(".lesion-table", timeout=60000)
            page.wait_for_function("document.querySelector('#study-detail').dataset.status === 'done'", timeout=60000)
            page.wait_for_selector(".lesion-table")
            page.wait_for_function("document.querySelector('#upload-status').textContent === '分析完成'")  # the note clears
            assert "P-BROWSER-1" in page.locator("#study-table").inner_text()
            assert "ZHANG^SAN" in page.locator("#detail-title").inner_text()
            assert "特征（置信度）" in page.locator(".lesion-table").first.inner_text()
            page.locator("input[data-layer='liver']").first.check()  # layers toggle, the frame zooms and pans
            page.locator("input[data-layer='axes']").first.uncheck()
            page.locator(".frame-canvas").first.hover()
            page.mouse.wheel(0, -400)
            page.mouse.down()
            page.mouse.move(300, 600)
            page.mouse.up()
            assert page.locator(".frame-canvas").count() == 1
            overlay = page.locator("img.overlay")
            if overlay.count():
                page.wait_for_function("document.querySelector('img.overlay').naturalWidth > 0")
                assert overlay.first.get_attribute("src").endswith("?lang=zh")  # labelled in the viewer's language
            table = page.locator(".lesion-table").first.inner_text()
            assert "恶性概率" in table and "病灶" in table  # Chinese by default for this user
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(artifacts_dir / "service_study_zh.png"), full_page=True)

            page.select_option("#lang", "en")
            page.wait_for_function("document.documentElement.lang === 'en'")
            page.wait_for_function("document.querySelector('.lesion-table').textContent.includes('Malignancy probability')")
            assert "Studies" in page.locator("#view-studies").inner_text()
            page.screenshot(path=str(artifacts_dir / "service_study_en.png"), full_page=True)
            page.click("button[data-view='monitor']")  # no confirmed outcome yet: the empty state, no raw JSON
            page.wait_for_selector("#chart-empty:not([hidden])")
            assert "No confirmed outcomes yet" in page.locator("#chart-empty").inner_text()
            assert "{" not in page.locator("#drift-table").inner_text()
            page.click("button[data-view='studies']")
            page.wait_for_selector(".lesion-table")
            confirm = page.locator(".lesion-table button")
            if confirm.count():  # the detector found a lesion: the physician confirms its outcome
                confirm.first.click()
                page.wait_for_function("document.querySelector('.lesion-table').textContent.includes('confirmed')")

            page.click("button[data-view='live']")
            page.set_input_files("#live-file", str(_clip(tmp_path / "clip.webm")))
            live_ok = True
            try:
                page.wait_for_function(
                    "(() => { const m = /analysed frames\\/s: ([0-9.]+)/.exec(document.querySelector('#live-stats').textContent); "
                    "return m && parseFloat(m[1]) > 0; })()", timeout=20000)
            except Exception:  # noqa: BLE001 - a chromium without the codec cannot play the clip
                live_ok = False
            page.screenshot(path=str(artifacts_dir / "service_live.png"))
            if live_ok:
                assert "analysed frames/s" in page.locator("#live-stats").inner_text()
            # monitoring view with confirmed outcomes of two model versions
            from livus.service.monitoring import add_outcome

            from .test_monitoring import add_scored_frames

            w = tmp_path / "w.bin"
            w.write_bytes(b"w")
            svc.state.registry.register("detector", "v1", [w], activate=True)
            svc.state.registry.register("detector", "v2", [w], activate=True)
            with svc.state.sm() as db:
                for version, scores in (("v1", [0.9] * 15 + [0.2] * 15), ("v2", [0.3] * 15 + [0.2] * 15)):
                    for k, fid in enumerate(add_scored_frames(svc, version, scores)):
                        add_outcome(db, None, fid, 1, k < 15, "pathology")
            page.click("button[data-view='studies']")
            page.click("button[data-view='monitor']")
            page.wait_for_selector("#chart:not([hidden])")
            assert page.locator("#metrics-table tbody tr").count() >= 2  # v1, v2 (+ the version a confirmed lesion came from)
            page.screenshot(path=str(artifacts_dir / "service_monitor.png"), full_page=True)
            assert errors == [], errors
        finally:
            browser.close()
    with svc.state.sm() as db:
        from livus.service.storage import AuditEvent

        actions = {e.action for e in db.query(AuditEvent).all()}
    assert {"login", "login-failed", "upload", "view"} <= actions
    with svc.state.sm() as db:
        from livus.service.storage import Outcome

        n_outcomes = db.query(Outcome).count()
    assert n_outcomes >= 60  # the seeded ones (+1 when the page confirmed a lesion)


def test_browser_names_a_site_report_threshold(chromium, tmp_path, artifacts_dir):
    """With ``analyze.report_threshold`` in the analysis config, each frame's heading on the page
    names the site's operating point next to the model version."""
    from playwright.sync_api import sync_playwright

    config = tmp_path / "site.yaml"
    config.write_text("analyze: {report_threshold: 0.65}\n", encoding="utf-8")
    svc = make_service(tmp_path / "data", analysis_config=str(config))
    image = tmp_path / "liver_example.png"
    image.write_bytes(png_bytes(ultrasound_like(480, 360)))
    with serving(svc.app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            upload_as_doctor(page, url, image)
            page.wait_for_selector(".frame h3")
            heading = page.locator(".frame h3").first.inner_text()
            assert "本院设定的报告阈值 0.650" in heading
            assert "livus-detector livus-detector" not in heading  # a version that names itself is shown once
            page.screenshot(path=str(artifacts_dir / "service_site_threshold_zh.png"), full_page=True)
        finally:
            browser.close()
