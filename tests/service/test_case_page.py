"""The study page in Chromium shows each case's assessability (list and case view, per frame),
its LI-RADS and its reasons in the VIEWER's language, whatever the uploader's language was.

The studies are made from real case results (``assess_case``, ``lirads_for_case``: the objects
the pipeline writes to case.json, analysed "by an English-speaking uploader") and stored
directly, so the test needs no analysis run; the page is driven by a Chinese-speaking physician.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livus.infer.case import assess_case, load_case_rules
from livus.infer.lirads_case import lirads_for_case
from livus.infer.lirads_table import cached_lirads_table
from livus.service.storage import FrameRecord, Study
from livus.types import Assessability, FrameResult, Lesion, LesionTrack, PatientBackground

from .conftest import make_service, serving
from .test_browser import CHROMIUM_ARGS, chromium  # noqa: F401 - fixture (skips without chromium/playwright)

pytestmark = pytest.mark.slow

FAN = [[20, 10], [300, 10], [300, 230], [20, 230]]
LIVER = [[30, 20], [290, 20], [290, 220], [30, 220]]
AT_RISK = PatientBackground(cirrhosis=True, hbv=True)


def _frame(name: str, assess: Assessability, lesions: list[Lesion], warnings: list[str] | None = None) -> FrameResult:
    return FrameResult(name, 0, (320, 240), pixel_spacing_mm=(0.2, 0.2), fan_polygon_px=FAN, liver_polygon_px=LIVER,
                       lesions=lesions, model={"name": "detector", "version": "test"}, assessability=assess,
                       quality={"verdict": "ok"}, warnings=warnings or [])


def _lesion() -> Lesion:
    return Lesion(1, 0.9, (160.0, 120.0), 70.0, 50.0, 0.0, long_axis_mm=14.0, short_axis_mm=10.0, malignancy=0.8,
                  track_id=1)


def _case(frames: list[FrameResult], assess: Assessability, patient: PatientBackground,
          tracks: list[LesionTrack], ceus: list[LesionTrack] | None = None, language: str = "en") -> dict:
    """case.json of the pipeline's own objects, worded in ``language`` (the uploader's)."""
    case = assess_case("case", tracks, patient, load_case_rules(), language, assess)
    case.lirads = lirads_for_case(patient, frames, tracks, ceus, cached_lirads_table(None), language, assess)
    return json.loads(json.dumps(case.to_json_dict(), ensure_ascii=False))


def add_study(svc, description: str, frames: list[FrameResult], case: dict) -> str:
    """A finished study with these frame results and case.json, in the physicians' department."""
    with svc.state.sm() as db:
        s = Study(source="upload", description=description, patient_id=f"P-{description}", status="done",
                  case_json={"cases": [case]})
        db.add(s)
        db.flush()
        for f in frames:
            d = f.to_json_dict()
            db.add(FrameRecord(study_id=s.id, frame_index=f.frame_index, width_px=320, height_px=240, result=d,
                               n_lesions=len(f.lesions), model_name="detector", model_version="test"))
        db.commit()
        return s.uid


def seed_studies(svc) -> dict[str, str]:
    """Three studies: assessable at-risk (US-3, CEUS low confidence), limited (not at risk), not
    assessable (not ultrasound); all analysed in English."""
    ok = Assessability("assessable")
    f1 = _frame("liver.png", ok, [_lesion()])
    track = LesionTrack(1, "liver.png", malignancy=0.8, long_axis_mm=14.0)
    ceus_track = LesionTrack(2, "clip.mp4", malignancy=0.7, long_axis_mm=25.0,
                             ceus_features={"arterial_phase_hyperenhancement": 0.55, "washout_late": 0.8,
                                            "washout_none": 0.1, "washout_early": 0.1})
    limited = Assessability("limited", ["shadowing"])
    f2 = _frame("shadowed.png", limited, [], ["no lesion classifier model found: malignancy not assessed"])
    bad = Assessability("not_assessable", ["not_ultrasound"])
    f3 = _frame("photo.png", bad, [])
    return {
        "ok": add_study(svc, "ok", [f1], _case([f1], ok, AT_RISK, [track], [ceus_track])),
        "limited": add_study(svc, "limited", [f2], _case([f2], limited, PatientBackground(), [])),
        "bad": add_study(svc, "bad", [f3], _case([f3], bad, AT_RISK, [])),
    }


@pytest.fixture()
def seeded(tmp_path):
    svc = make_service(tmp_path / "data")
    uids = seed_studies(svc)
    with serving(svc.app) as url:
        yield url, svc, uids


def _open(page, uid: str) -> None:
    page.click(f"#study-table tr[data-uid='{uid}']")
    page.wait_for_function(f"document.querySelector('#study-detail').dataset.uid === '{uid}'")
    page.wait_for_selector("#detail-case .case")


def test_page_assessability_lirads_in_viewers_language(chromium, seeded):  # noqa: F811
    from playwright.sync_api import sync_playwright

    url, _svc, uids = seeded
    shots = Path("/tmp")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100}, bypass_csp=True)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.fill("#login-user", "doc")  # a Chinese-speaking physician
            page.fill("#login-pass", "doctor-pass-123")
            page.click("#login-submit")
            page.wait_for_selector("#study-table tbody tr .badge")
            rows = {uid: page.locator(f"#study-table tr[data-uid='{uid}'] .badge") for uid in uids.values()}
            assert rows[uids["ok"]].inner_text() == "可评估"
            assert rows[uids["limited"]].inner_text() == "评估受限（声影遮挡）"
            assert rows[uids["bad"]].inner_text() == "不可评估（非超声图像）"
            assert rows[uids["bad"]].get_attribute("data-status") == "not_assessable"

            # not assessable: the advice to repeat, its reason, no lesion table, no follow-up advice
            _open(page, uids["bad"])
            case = page.locator("#detail-case").inner_text()
            assert "不可评估：请重复检查或核对输入图像（非超声图像）" in case, case
            assert page.locator("#detail-case .case-advice").count() == 0
            assert "随访" not in case and "处理建议" not in case
            assert page.locator(".lesion-table").count() == 0
            assert "图像不可评估，未分析病灶" in page.locator(".frame").inner_text()
            assert page.locator(".frame h3 .badge").get_attribute("data-status") == "not_assessable"
            assert "未分类：图像不可评估" in case  # LI-RADS: not categorised, with the reason
            page.screenshot(path=str(shots / "livus_case_not_assessable_zh.png"), full_page=True)

            # limited, not at risk: badge with reason, warning in Chinese, LI-RADS not applicable with why
            _open(page, uids["limited"])
            case = page.locator("#detail-case").inner_text()
            assert "评估受限（声影遮挡）" in case
            assert "评估受限（声影遮挡）：结果仅供参考" in case  # the case warning, re-worded from English
            assert "不适用：患者无已知肝细胞癌高危因素" in case, case
            assert "未找到病灶分类模型" in page.locator(".frame").inner_text()  # frame warning in Chinese
            assert page.locator(".lesion-table").count() == 1

            # assessable, at risk, analysed in English: reasons and LI-RADS in Chinese
            _open(page, uids["ok"])
            case = page.locator("#detail-case").inner_text()
            assert "病灶恶性概率≥0.70 → 紧急处理" in case and "[high_malignancy]" not in case, case
            assert "病灶：病灶1（长径 14.0 mm，恶性概率 0.80）" in case
            assert "随访间隔: 2周" in case  # 0.5 months, in words
            assert "美国放射学会（ACR）超声 LI-RADS v2017" in case
            assert "美国放射学会（ACR）超声造影 LI-RADS v2017" in case
            us = page.locator(".lirads-system[data-system='US LI-RADS'] .badge")
            assert us.inner_text() == "US-3 阳性" and us.get_attribute("data-category") == "US-3"
            assert "可视化评分" in case and "A：无或轻微受限" in case and "肝脏/扇区面积比" in case
            assert "进一步诊断性影像检查" in case  # management from the LI-RADS table, in Chinese
            ceus = page.locator(".lirads-system[data-system='CEUS LI-RADS'] .badge")
            assert "低可信度" in ceus.inner_text() and "low-confidence" in ceus.get_attribute("class")
            assert "若动脉期高增强为" in case  # the feature that would change it
            assert "由软件自动分类，须经阅片医师确认" in case
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(shots / "livus_case_lirads_zh.png"), full_page=True)

            # the language switch re-renders everything in English
            page.select_option("#lang", "en")
            page.wait_for_function("document.querySelector('#detail-case').textContent.includes('ACR US LI-RADS v2017')")
            case = page.locator("#detail-case").inner_text()
            assert "[high_malignancy]" in case and "US-3 positive" in case
            assert "Follow-up interval: 2 weeks" in case
            assert "assigned by software, to be confirmed by the reader" in case
            assert "if arterial phase" in case.lower() or "if APHE" in case, case
            assert page.locator(f"#study-table tr[data-uid='{uids['bad']}'] .badge").inner_text() == \
                "not assessable (not an ultrasound image)"
            page.screenshot(path=str(shots / "livus_case_lirads_en.png"), full_page=True)
            assert errors == [], errors
        finally:
            browser.close()
