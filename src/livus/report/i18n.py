"""Chinese and English strings of the outputs (overlays, HTML/PDF report, SR notes).

One table, keyed by a short English id; ``text(key, language)`` picks the string. Medical terms
follow common Chinese ultrasound usage (肝细胞癌, 低回声, 后方回声增强, 动脉期高增强, 廓清...).
Unknown keys fall back to the key itself so that a new feature name shows up readable rather
than crashing a report.
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")

# B-mode and CEUS feature names of livus.vocab.FEATURE_NAMES / CEUS_FEATURE_NAMES.
FEATURE_LABELS: dict[str, dict[str, str]] = {
    "echo_hypo": {"zh": "低回声", "en": "hypoechoic"},
    "echo_iso": {"zh": "等回声", "en": "isoechoic"},
    "echo_hyper": {"zh": "高回声", "en": "hyperechoic"},
    "echo_anechoic": {"zh": "无回声", "en": "anechoic"},
    "margin_ill_defined": {"zh": "边界不清", "en": "ill-defined margin"},
    "halo": {"zh": "晕环", "en": "halo"},
    "posterior_enhancement": {"zh": "后方回声增强", "en": "posterior acoustic enhancement"},
    "posterior_shadowing": {"zh": "后方声影", "en": "posterior acoustic shadowing"},
    "heterogeneous": {"zh": "回声不均匀", "en": "heterogeneous echotexture"},
    "target_sign": {"zh": "靶环征", "en": "target sign"},
    "arterial_phase_hyperenhancement": {"zh": "动脉期高增强", "en": "arterial phase hyperenhancement"},
    "washout": {"zh": "廓清", "en": "washout"},
    "washout_early": {"zh": "早廓清", "en": "early washout"},
    "washout_late": {"zh": "晚廓清", "en": "late washout"},
    "capsule_enhancement": {"zh": "包膜样增强", "en": "capsule-like enhancement"},
}

DIAGNOSIS_LABELS: dict[str, dict[str, str]] = {
    "hcc": {"zh": "肝细胞癌", "en": "hepatocellular carcinoma"},
    "metastasis": {"zh": "转移瘤", "en": "metastasis"},
    "hemangioma": {"zh": "血管瘤", "en": "haemangioma"},
    "cyst": {"zh": "囊肿", "en": "cyst"},
    "fnh": {"zh": "局灶性结节增生", "en": "focal nodular hyperplasia"},
}

PRIORITY_LABELS: dict[str, dict[str, str]] = {
    "routine": {"zh": "常规", "en": "routine"},
    "soon": {"zh": "尽快", "en": "soon"},
    "urgent": {"zh": "紧急", "en": "urgent"},
}

# Quality gate verdicts (livus.preprocess.quality; ceus_unchecked: livus.infer.ceus.ceus_verdict).
QUALITY_LABELS: dict[str, dict[str, str]] = {
    "ok": {"zh": "质量良好", "en": "good quality"},
    "not_ultrasound": {"zh": "非超声图像", "en": "not an ultrasound image"},
    "blank": {"zh": "空白图像", "en": "blank image"},
    "frozen": {"zh": "画面冻结", "en": "frozen image"},
    "heavily_shadowed": {"zh": "声影遮挡严重", "en": "heavily shadowed"},
    "liver_not_in_view": {"zh": "未显示肝脏", "en": "liver not in view"},
    "doppler_colour": {"zh": "彩色多普勒图像", "en": "colour Doppler image"},
    "ceus_unchecked": {"zh": "造影帧未经质量检查", "en": "contrast frame, quality not checked"},
}

# Reasons of livus.infer.assessability (frame verdicts not listed here use QUALITY_LABELS).
ASSESSABILITY_REASONS: dict[str, dict[str, str]] = {
    "shadowing": {"zh": "声影遮挡", "en": "acoustic shadowing"},
    "partial_liver": {"zh": "肝脏可能未完全显示", "en": "liver possibly only partly in view"},
    "quality_unchecked": {"zh": "造影帧未经质量检查", "en": "contrast frames, quality not checked"},
    "low_quality": {"zh": "图像质量差", "en": "low image quality"},
    "not_liver": {"zh": "片段未显示肝脏（如心脏或其他器官）", "en": "the clip does not show the liver (heart or another organ?)"},
    "no_frames": {"zh": "无可分析的图像", "en": "no frame could be analysed"},
}

# Fixed English warnings of the frame results (results.jsonl keeps them in English); the report
# words them in its language. The low-quality frame warning is built from the frame's verdict.
FRAME_WARNINGS: dict[str, dict[str, str]] = {
    "pixel spacing unknown: sizes in pixels only": {"zh": "未知像素间距：尺寸仅以像素表示"},
    "no fan found: using the whole image": {"zh": "未找到扫描扇区：使用整幅图像"},
    "colour (Doppler) overlay present: colour pixels ignored": {"zh": "存在彩色（多普勒）叠加：已忽略彩色像素"},
    "no detector model found: lesions not analysed": {"zh": "未找到病灶检测模型：未分析病灶"},
    "no lesion classifier model found: malignancy not assessed": {"zh": "未找到病灶分类模型：未评估恶性概率"},
}

# Coarse image position: (vertical, horizontal) thirds of the image.
LOCATION_LABELS: dict[str, dict[str, str]] = {
    "upper-left": {"zh": "图像左上部", "en": "upper-left of the image"},
    "upper-centre": {"zh": "图像上部中央", "en": "upper centre of the image"},
    "upper-right": {"zh": "图像右上部", "en": "upper-right of the image"},
    "middle-left": {"zh": "图像中部左侧", "en": "middle left of the image"},
    "middle-centre": {"zh": "图像中央", "en": "centre of the image"},
    "middle-right": {"zh": "图像中部右侧", "en": "middle right of the image"},
    "lower-left": {"zh": "图像左下部", "en": "lower-left of the image"},
    "lower-centre": {"zh": "图像下部中央", "en": "lower centre of the image"},
    "lower-right": {"zh": "图像右下部", "en": "lower-right of the image"},
}

STRINGS: dict[str, dict[str, str]] = {
    # overlay labels (short)
    "det": {"zh": "检出", "en": "det"},
    "malig_short": {"zh": "恶性", "en": "malig."},
    "not_assessed_short": {"zh": "未评估", "en": "—"},
    "no_spacing_banner": {"zh": "无像素间距：尺寸单位为像素", "en": "no pixel spacing: sizes in pixels"},
    "heatmap_panel": {"zh": "Grad-CAM 热力图", "en": "Grad-CAM heatmap"},
    # report
    "title": {"zh": "肝脏超声病灶分析报告", "en": "Liver ultrasound lesion analysis report"},
    "decision_support_banner": {
        "zh": "辅助决策结果，非诊断结论",
        "en": "Decision support, not a diagnosis",
    },
    "case_id": {"zh": "病例编号", "en": "Case ID"},
    "patient_id": {"zh": "患者编号", "en": "Patient ID"},
    "patient_name": {"zh": "患者姓名", "en": "Patient name"},
    "study": {"zh": "检查", "en": "Study"},
    "generated_at": {"zh": "生成时间", "en": "Generated"},
    "sources": {"zh": "图像来源", "en": "Images"},
    "n_lesions": {"zh": "病灶数目", "en": "Number of lesions"},
    "lesions": {"zh": "病灶", "en": "Lesions"},
    "lesion": {"zh": "病灶", "en": "Lesion"},
    "image": {"zh": "图像", "en": "Image"},
    "frame": {"zh": "帧", "en": "frame"},
    "position": {"zh": "位置", "en": "Position"},
    "centre_px": {"zh": "中心 (像素)", "en": "centre (px)"},
    "long_axis": {"zh": "长径", "en": "Long axis"},
    "short_axis": {"zh": "短径", "en": "Short axis"},
    "size": {"zh": "长径 × 短径", "en": "Long × short axis"},
    "detection_score": {"zh": "检出置信度", "en": "Detection score"},
    "malignancy": {"zh": "恶性概率", "en": "Malignancy probability"},
    "detection_score_short": {"zh": "检出置信度", "en": "Det. score"},
    "malignancy_short": {"zh": "恶性概率", "en": "Malignancy"},
    "features": {"zh": "征象 (置信度)", "en": "Features (confidence)"},
    "overlay": {"zh": "标注图", "en": "Overlay"},
    "no_lesion": {"zh": "未检出病灶", "en": "No lesion detected"},
    "not_assessed": {"zh": "未评估", "en": "not assessed"},
    "no_features": {"zh": "无征象输出", "en": "no feature output"},
    "px_warning": {
        "zh": "未知像素间距：尺寸以像素表示，不能换算为毫米",
        "en": "pixel spacing unknown: sizes are in pixels and cannot be converted to mm",
    },
    "assessment": {"zh": "病例评估", "en": "Case assessment"},
    "risk": {"zh": "病例风险", "en": "Case risk"},
    "priority": {"zh": "处理优先级", "en": "Priority"},
    "follow_up": {"zh": "建议随访间隔", "en": "Follow-up interval"},
    "months": {"zh": "{n}个月", "en": "{n} months", "en_one": "{n} month"},
    "weeks": {"zh": "{n}周", "en": "{n} weeks", "en_one": "{n} week"},
    "immediately": {"zh": "立即", "en": "immediately"},
    # assessability (livus.infer.assessability) and case reasoning (livus.infer.case)
    "assessability": {"zh": "可评估性", "en": "Assessability"},
    "status_assessable": {"zh": "可评估", "en": "assessable"},
    "status_limited": {"zh": "评估受限", "en": "limited"},
    "status_not_assessable": {"zh": "不可评估", "en": "not assessable"},
    "not_assessable_advice": {
        "zh": "不可评估：请重复检查或核对输入图像",
        "en": "not assessable: repeat the examination / check the input",
    },
    "limited_note": {
        "zh": "评估受限（{reasons}）：结果仅供参考，未检出病灶不能排除病灶存在",
        "en": "limited assessment ({reasons}): interpret with care; no lesion found does not rule one out",
    },
    "no_lesion_not_assessable": {
        "zh": "图像不可评估，未分析病灶",
        "en": "The images are not assessable: lesions were not analysed",
    },
    "reasons_intro": {"zh": "原因", "en": "reasons"},
    "also_holds": {"zh": "同时符合", "en": "also"},
    "lesions_line": {"zh": "病灶：{lesions}", "en": "lesions: {lesions}"},
    "no_lesion_short": {"zh": "未见病灶", "en": "no lesion"},
    "lesion_describe": {
        "zh": "病灶{n}（长径 {size}，恶性概率 {malignancy}）",
        "en": "lesion {n} ({size}, malignancy {malignancy})",
    },
    "size_unknown": {"zh": "大小未知", "en": "size unknown"},
    "no_rule_applies": {"zh": "没有适用的病例规则，请检查规则表", "en": "no case rule applies; check the rules table"},
    "no_detector_case": {
        "zh": "未找到病灶检测模型：未分析病灶，未作病例评估",
        "en": "no detector model: lesions not analysed, no case assessment",
    },
    "frames_not_assessable": {
        "zh": "{n}帧不可评估，未报告其病灶",
        "en": "{n} frames not assessable: no lesions reported from them",
        "en_one": "{n} frame not assessable: no lesions reported from it",
    },
    "frames_limited": {
        "zh": "{n}帧评估受限，其结果已标注且权重降低",
        "en": "{n} frames of limited quality: their results are marked and weigh less",
        "en_one": "{n} frame of limited quality: its results are marked and weigh less",
    },
    "low_quality_frame": {"zh": "低质量帧（{verdict}）：{reason}", "en": "low-quality frame ({verdict}): {reason}"},
    "reasons": {"zh": "依据", "en": "Reasons"},
    "background": {"zh": "肝脏背景", "en": "Liver background"},
    "unknown": {"zh": "未知", "en": "unknown"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
    "hbv": {"zh": "乙肝 (HBV)", "en": "HBV"},
    "hcv": {"zh": "丙肝 (HCV)", "en": "HCV"},
    "cirrhosis": {"zh": "肝硬化", "en": "cirrhosis"},
    "afp": {"zh": "甲胎蛋白 AFP (ng/mL)", "en": "AFP (ng/mL)"},
    # image-derived liver background (livus.infer.liver_background, livus.report.background_text)
    "image_background": {"zh": "影像推断肝脏背景", "en": "Image-derived liver background"},
    "steatosis_none": {"zh": "未见明显脂肪肝征象", "en": "no signs of steatosis"},
    "steatosis_mild": {"zh": "脂肪肝 轻度", "en": "steatosis, mild"},
    "steatosis_moderate": {"zh": "脂肪肝 中度", "en": "steatosis, moderate"},
    "steatosis_severe": {"zh": "脂肪肝 重度", "en": "steatosis, severe"},
    "fibrosis_no_cirrhosis": {
        "zh": "未见明确肝硬化征象（灰阶图像不能可靠评估肝纤维化程度，必要时行弹性成像）",
        "en": "no definite signs of cirrhosis (B-mode images cannot grade liver fibrosis reliably; elastography if needed)",
    },
    "fibrosis_cirrhosis": {"zh": "影像提示肝硬化可能", "en": "image suggests cirrhosis"},
    "background_confidence": {"zh": "置信度", "en": "confidence"},
    "background_note": {
        "zh": "影像推断（仅经模拟数据校准），非诊断结论，请结合临床及随访",
        "en": "image-derived (calibrated on simulated livers only), not a diagnosis; confirm clinically",
    },
    "background_no_liver_outline": {"zh": "未评估：无肝脏轮廓", "en": "not assessed: no liver outline"},
    "background_liver_too_small": {"zh": "未评估：显示的肝脏过少", "en": "not assessed: too little liver in view"},
    "background_no_frame": {"zh": "未评估：无可评估图像", "en": "not assessed: no assessable frame"},
    "warnings": {"zh": "提示", "en": "Warnings"},
    "model": {"zh": "模型", "en": "Model"},
    "site_report_threshold": {"zh": "本院设定的报告阈值", "en": "site-set report threshold"},
    # CEUS (contrast clips, livus.models.ceus; see docs/ceus.md)
    "ceus_line": {
        "zh": "超声造影（仅用模拟造影数据训练）：{aphe}；廓清：{washout}；{capsule}",
        "en": "CEUS (trained on simulated contrast clips only): {aphe}; washout: {washout}; {capsule}",
    },
    "ceus_washout_none": {"zh": "无", "en": "none"},
    "ceus_washout_late": {"zh": "晚期", "en": "late"},
    "ceus_washout_early": {"zh": "早期", "en": "early"},
    "ceus_low_confidence": {"zh": "低可信度，试验性", "en": "low confidence, experimental"},
    "clip_low_quality": {
        "zh": "{name}：片段{n_all}帧中有{n_bad}帧质量不佳（{detail}）",
        "en": "{name}: {n_bad} of {n_all} clip frames of low quality ({detail})",
    },
    "ceus_mode": {
        "zh": "超声造影模式：片段起点为注射后 {offset} 秒（{origin}）",
        "en": "CEUS mode: clip time 0 is {offset} s after the contrast injection ({origin})",
    },
    "ceus_origin_dicom": {"zh": "取自 DICOM 造影剂注射时间", "en": "from the DICOM ContrastBolusStartTime"},
    "ceus_origin_config": {"zh": "用户设定", "en": "set by the user"},
    "ceus_no_times": {
        "zh": "超声造影：帧时间未知，未计算造影征象",
        "en": "CEUS: frame times unknown, CEUS features not computed",
    },
    "ceus_phase_missing": {
        "zh": "超声造影：片段未覆盖{phases}，相应造影征象不可靠",
        "en": "CEUS: the clip does not cover the {phases}; the CEUS features that need it are unreliable",
    },
    "ceus_phase_arterial": {"zh": "动脉期（注射后10–30秒）", "en": "arterial phase (10–30 s after injection)"},
    "ceus_phase_late": {"zh": "延迟期（注射后120秒以后）", "en": "late phase (after 120 s)"},
    "ceus_no_model": {
        "zh": "超声造影：造影征象模型不可用（{error}），未计算造影征象",
        "en": "CEUS: no CEUS feature model ({error}); CEUS features not computed",
    },
    "ceus_no_lesion": {
        "zh": "超声造影：片段中未追踪到病灶，未评估造影征象及 CEUS LI-RADS",
        "en": "CEUS: no lesion was tracked in the clip; CEUS features and CEUS LI-RADS not assessed",
    },
    "ceus_no_lesion_case": {
        "zh": "超声造影片段中未追踪到病灶：本次造影未能评估，不据此给出随访建议；请医师结合常规超声及其他影像判断",
        "en": "no lesion was tracked in the contrast clip: the CEUS examination could not be assessed and no "
              "follow-up is advised from it; the reader decides with the B-mode and other imaging",
    },
    "ceus_track_unusable": {
        "zh": "超声造影：片段内病灶轨迹 {track} 无可用帧，未计算其造影征象",
        "en": "CEUS: lesion track {track} of the clip has no usable frame; no CEUS features for it",
    },
    "ceus_track_failed": {
        "zh": "超声造影：片段内病灶轨迹 {track} 的造影征象计算失败（{error}）",
        "en": "CEUS: CEUS features of lesion track {track} of the clip failed ({error})",
    },
    "ceus_capsule_experimental": {
        "zh": "超声造影征象仅用模拟造影数据训练，未经真实造影验证；包膜样增强为试验性输出，可信度低",
        "en": "CEUS features were trained on simulated contrast clips only and are not validated on real CEUS; "
              "capsule-like enhancement is experimental and of low confidence",
    },
    # LI-RADS (livus.infer.lirads, livus.infer.lirads_case; ACR US LI-RADS v2017, CEUS LI-RADS v2017)
    "lirads": {"zh": "LI-RADS 分类", "en": "LI-RADS"},
    "lirads_software_note": {
        "zh": "由软件自动分类，须经阅片医师确认",
        "en": "assigned by software, to be confirmed by the reader",
    },
    "lirads_system_us": {
        "zh": "美国放射学会（ACR）超声 LI-RADS v2017（高危人群监测）",
        "en": "ACR US LI-RADS v2017 (surveillance ultrasound)",
    },
    "lirads_system_ceus": {
        "zh": "美国放射学会（ACR）超声造影 LI-RADS v2017（CEUS LI-RADS）",
        "en": "ACR CEUS LI-RADS v2017 (contrast-enhanced ultrasound)",
    },
    "lirads_category": {"zh": "分类", "en": "Category"},
    "lirads_visualization": {"zh": "可视化评分", "en": "Visualization score"},
    "lirads_deciding": {"zh": "决定分类的病灶", "en": "Deciding observation"},
    "lirads_management": {"zh": "处理建议", "en": "Management"},
    "lirads_observations": {"zh": "病灶", "en": "Observations"},
    "lirads_observation": {"zh": "病灶{n}", "en": "observation {n}"},
    "lirads_not_applicable": {"zh": "不适用", "en": "not applicable"},
    "lirads_not_categorised": {"zh": "未分类", "en": "not categorised"},
    "lirads_low_confidence": {"zh": "低可信度", "en": "low confidence"},
    "lirads_would_change": {
        "zh": "若{feature}为{value}（概率 {p}）则为 {category}",
        "en": "{category} if {feature} were {value} (p {p})",
    },
    "lirads_assumptions": {"zh": "未测量的征象", "en": "Not measured"},
    "lirads_note": {"zh": "说明", "en": "Note"},
    "lirads_simple_cyst": {
        "zh": "单纯囊肿（无回声 {anechoic}，后方回声增强 {enhancement}）：肯定良性，不计入",
        "en": "simple cyst (anechoic {anechoic}, posterior enhancement {enhancement}): definitely benign, not counted",
    },
    "lirads_measures": {
        "zh": "依据：可用图像 {frames} 帧（评估受限 {limited} 帧），肝脏/扇区面积比 {coverage}，"
              "肝脏显示深度比 {depth}，声影比例 {shadow}",
        "en": "measures: usable frames {frames} (of limited quality: {limited}), liver/fan area {coverage}, "
              "liver depth share {depth}, shadow share {shadow}",
    },
    "lirads_cat_US-1": {"zh": "US-1 阴性", "en": "US-1 negative"},
    "lirads_cat_US-2": {"zh": "US-2 阈值下", "en": "US-2 subthreshold"},
    "lirads_cat_US-3": {"zh": "US-3 阳性", "en": "US-3 positive"},
    "lirads_cat_LR-1": {"zh": "LR-1 肯定良性", "en": "LR-1 definitely benign"},
    "lirads_cat_LR-2": {"zh": "LR-2 可能良性", "en": "LR-2 probably benign"},
    "lirads_cat_LR-3": {"zh": "LR-3 恶性可能性中等", "en": "LR-3 intermediate probability of malignancy"},
    "lirads_cat_LR-4": {"zh": "LR-4 可能为肝细胞癌", "en": "LR-4 probably HCC"},
    "lirads_cat_LR-5": {"zh": "LR-5 肯定为肝细胞癌", "en": "LR-5 definitely HCC"},
    "lirads_cat_LR-M": {"zh": "LR-M 可能或肯定为恶性，非肝细胞癌特异",
                        "en": "LR-M probably or definitely malignant, not HCC-specific"},
    "lirads_cat_LR-TIV": {"zh": "LR-TIV 静脉内癌栓", "en": "LR-TIV tumour in vein"},
    "lirads_vis_A": {"zh": "A：无或轻微受限", "en": "A: no or minimal limitations"},
    "lirads_vis_B": {"zh": "B：中度受限", "en": "B: moderate limitations"},
    "lirads_vis_C": {"zh": "C：重度受限", "en": "C: severe limitations"},
    "vis_all_frames_limited": {"zh": "所有可用图像均评估受限", "en": "every usable frame is of limited quality"},
    "vis_some_frames_limited": {"zh": "部分图像评估受限", "en": "some frames are of limited quality"},
    "vis_coverage_not_measured": {"zh": "未能测量肝脏显示范围（无肝脏轮廓）",
                                  "en": "liver coverage not measured (no liver outline)"},
    "vis_coverage_very_low": {"zh": "肝脏仅占扫描扇区的很小部分", "en": "the liver fills a very small part of the fan"},
    "vis_coverage_low": {"zh": "肝脏占扫描扇区的比例低", "en": "the liver fills a small part of the fan"},
    "vis_liver_shallow": {"zh": "肝脏仅显示于扇区上部（穿透不足）",
                          "en": "the liver is seen only in the upper part of the fan (poor penetration)"},
    "vis_shadowing_severe": {"zh": "严重声影遮挡", "en": "severe acoustic shadowing"},
    "vis_shadowing": {"zh": "声影遮挡", "en": "acoustic shadowing"},
    "lirads_reason_not_at_risk": {
        "zh": "患者无已知肝细胞癌高危因素（肝硬化、慢性乙肝或丙肝），LI-RADS 仅适用于高危人群",
        "en": "the patient is not known to be at risk of HCC (cirrhosis, chronic HBV or HCV); "
              "LI-RADS applies to at-risk patients only",
    },
    "lirads_reason_not_assessable": {"zh": "图像不可评估", "en": "the images are not assessable"},
    "lirads_reason_lesions_not_analysed": {"zh": "未分析病灶（无病灶检测模型）",
                                           "en": "lesions were not analysed (no detector model)"},
    "lirads_reason_size_unknown": {
        "zh": "像素间距未知，无法应用毫米大小阈值（可能为 {candidates}）",
        "en": "pixel spacing unknown: the size threshold in mm cannot be applied (could be {candidates})",
    },
    "lirads_reason_timing_unknown": {
        "zh": "造影剂注射时间或帧时间未知，无法判断廓清时间",
        "en": "contrast injection or frame time unknown: the washout timing cannot be read",
    },
    "lirads_reason_no_ceus_features": {"zh": "该病灶无造影征象", "en": "no CEUS features for this observation"},
    "lirads_reason_no_ceus_model": {"zh": "造影征象模型不可用", "en": "no CEUS feature model"},
    "lirads_reason_no_observation": {"zh": "造影片段中未检出病灶", "en": "no observation found on the contrast clips"},
    "lirads_present": {"zh": "有", "en": "present"},
    "lirads_absent": {"zh": "无", "en": "absent"},
    "lirads_aphe": {"zh": "动脉期高增强", "en": "APHE"},
    "lirads_rim_aphe": {"zh": "环状动脉期高增强", "en": "rim APHE"},
    "lirads_marked_washout": {"zh": "显著廓清", "en": "marked washout"},
    "lirads_washout": {"zh": "廓清", "en": "washout"},
    "lirads_washout_none": {"zh": "无廓清", "en": "no washout"},
    "lirads_washout_late": {"zh": "晚期（≥60秒）廓清", "en": "late (≥ 60 s) washout"},
    "lirads_washout_early": {"zh": "早期（<60秒）廓清", "en": "early (< 60 s) washout"},
    "rim_aphe_not_measured": {"zh": "未区分环状与非环状动脉期高增强（按非环状计）",
                              "en": "rim vs non-rim APHE not measured (taken as non-rim)"},
    "washout_degree_not_measured": {"zh": "未测量廓清程度（按轻度计）",
                                    "en": "washout degree not measured (taken as mild)"},
    "disclaimer_title": {"zh": "声明", "en": "Disclaimer"},
    "disclaimer": {
        "zh": (
            "本模型使用 AUL 肝脏超声数据集（Xu 等，Zenodo 7272660，CC BY 4.0）及模拟图像训练。"
            "本结果仅为辅助决策信息，不是诊断结论，且未经临床使用验证；"
            "请由有资质的医师结合临床资料判断。"
        ),
        "en": (
            "The model was trained on the AUL liver ultrasound dataset (Xu et al., Zenodo 7272660, "
            "CC BY 4.0) and on simulated images. This result is decision support, not a diagnosis, "
            "and it is not validated for clinical use; a qualified physician must interpret it "
            "together with the clinical findings."
        ),
    },
}


def _pick(table: dict[str, dict[str, str]], key: str, language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    entry = table.get(key)
    return key if entry is None else entry[language]


def text(key: str, language: str) -> str:
    """The string ``key`` in ``language`` (``zh`` or ``en``); the key itself when unknown."""
    return _pick(STRINGS, key, language)


def feature_label(name: str, language: str) -> str:
    """Display name of a feature probability key (e.g. ``echo_hypo`` → 低回声)."""
    if name.startswith("dx_") or name.startswith("diagnosis_"):
        return _pick(DIAGNOSIS_LABELS, name.split("_", 1)[1], language)
    return _pick(FEATURE_LABELS, name, language)


def priority_label(priority: str, language: str) -> str:
    return _pick(PRIORITY_LABELS, priority, language)


def location_label(key: str, language: str) -> str:
    return _pick(LOCATION_LABELS, key, language)


def text_n(key: str, n: int | float, language: str) -> str:
    """The string ``key`` for the count ``n``, with ``{n}`` filled in: English takes the
    singular form (``en_one``) for exactly 1; Chinese has no plural."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    entry = STRINGS.get(key)
    if entry is None:
        return f"{n:g} {key}"
    form = entry.get("en_one", entry["en"]) if language == "en" and n == 1 else entry[language]
    return form.format(n=f"{n:g}")


def follow_up_label(months: float, language: str) -> str:
    """A follow-up interval in words: ``2 weeks`` for 0.5 months (whole weeks below a month,
    4.345 weeks a month), ``1 month``, ``6 months``, ``immediately`` for 0; 2周 / 1个月 in Chinese."""
    if months <= 0:
        return text("immediately", language)
    if months < 1:
        weeks = max(1, round(months * 52 / 12))
        return text_n("weeks", weeks, language)
    return text_n("months", round(months, 1), language)


def quality_label(verdict: str, language: str) -> str:
    """Display name of a quality verdict (e.g. ``liver_not_in_view`` → 未显示肝脏)."""
    return _pick(QUALITY_LABELS, verdict, language)


def assessability_reason(reason: str, language: str) -> str:
    """Display name of an assessability reason (its own table, else the verdict's label)."""
    if reason in ASSESSABILITY_REASONS:
        return _pick(ASSESSABILITY_REASONS, reason, language)
    return quality_label(reason, language)


def frame_warning(warning: str, quality: dict | None, language: str) -> str:
    """A frame result's (English) warning in ``language``; the low-quality warning is rebuilt
    from the frame's verdict (``quality``); unknown warnings are returned unchanged."""
    if language == "en":
        return warning
    if warning.startswith("low-quality frame (") and quality:
        verdict = str(quality.get("verdict", ""))
        reason = quality.get(f"reason_{language}") or ""
        return text("low_quality_frame", language).format(verdict=quality_label(verdict, language), reason=reason).rstrip("：")
    entry = FRAME_WARNINGS.get(warning)
    return warning if entry is None else entry.get(language, warning)
