"""The study page in Chromium shows a DICOM study's SR and SEG downloads and the state of sending
them back to the PACS (a failed send with its reason and a "send again" button)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import make_service, serving, upload_as_doctor
from .dicom_helpers import free_port
from .test_browser import chromium  # noqa: F401 - fixture (skips without chromium/playwright)

EXAMPLE_DICOM = Path(__file__).resolve().parents[2] / "examples" / "dicom" / "small_lesion.dcm"


@pytest.fixture()
def dicom_server(tmp_path):
    unreachable = f"http://127.0.0.1:{free_port()}/dicom-web"
    svc = make_service(tmp_path / "data", send_results="dicomweb", dicomweb_url=unreachable, send_retries=1)
    with serving(svc.app) as url:
        yield url, svc


def test_page_shows_dicom_results_and_failed_send(chromium, dicom_server, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    url, _svc = dicom_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, bypass_csp=True)  # lets wait_for_function evaluate
            upload_as_doctor(page, url, EXAMPLE_DICOM, timeout_ms=120000)
            deadline = time.monotonic() + 90  # the failed send comes a few seconds after "done"; slow on a loaded machine
            while time.monotonic() < deadline and not page.locator(".dicom-send button").count():
                page.evaluate("openStudy(document.querySelector('#study-detail').dataset.uid)")  # what a reload does
                try:  # one reload at a time: a reload every second outran the page's own rendering
                    page.wait_for_selector(".dicom-send button", timeout=8000)
                except Exception:  # noqa: BLE001 - not sent yet: reload again
                    pass
            text = page.locator("#detail-reports").inner_text()
            assert "DICOM 分割 (SEG)" in text and "DICOM 结构化报告 (SR)" in text, text
            assert "发送至 PACS 失败" in text and "cannot connect" in text, text
            seg = page.locator("#detail-reports a", has_text="SEG").get_attribute("href")
            assert page.request.get(url + seg).headers["content-type"] == "application/dicom"
            page.screenshot(path=str(tmp_path / "dicom_page.png"), full_page=True)
        finally:
            browser.close()
