// livus web page: plain JavaScript, no external resources. All data is inserted with
// textContent (never innerHTML), so names and results cannot inject markup.
"use strict";

const I18N = {
  zh: {
    subtitle: "肝脏超声病灶分析", nav_studies: "检查", nav_live: "实时", nav_monitor: "模型监测", nav_admin: "管理",
    logout: "退出", login: "登录", username: "用户名", password: "密码",
    disclaimer: "辅助决策工具：结果须经医师确认，不作为诊断依据。",
    upload: "上传图像、DICOM 或视频", patient_id: "患者 ID", description: "描述", analyse: "上传并分析",
    studies: "检查列表", time: "时间", status: "状态", frames: "帧数", lesions: "病灶数", study: "检查",
    live: "实时模式", live_video: "视频文件", live_camera: "使用摄像头/采集卡", live_stop: "停止",
    performance: "各模型版本的敏感度与特异度", version: "版本", sensitivity: "敏感度", specificity: "特异度",
    drift: "输入漂移", csv_import: "导入确认结果 CSV（frame_id,lesion_id,malignant,method）", import: "导入",
    models: "模型版本", model: "模型", registered: "注册时间", active: "当前", activate: "启用", rollback: "回滚到上一版本",
    add_user: "新建账户", role: "角色", role_physician: "医师", role_researcher: "研究人员", role_admin: "管理员",
    add: "添加", users: "账户", audit: "审计日志",
    lesion: "病灶", score: "检出置信度", malignancy: "恶性概率", long_axis: "长径", short_axis: "短径",
    centre: "中心 (像素)", confirm: "确认结果", malignant: "恶性", benign: "良性", pathology: "病理", followup: "随访",
    no_lesion: "未检出病灶", warnings: "提示", overlay: "叠加图（含 Grad-CAM 热力图）", original: "原始图像",
    report: "报告", queued: "排队中", running: "分析中", done: "完成", failed: "失败", storing: "保存中",
    uploading: "正在上传…", uploaded: "已上传，正在分析",
    too_many: "尝试次数过多，请稍候", confirmed: "已确认",
    risk: "风险", priority: "处理优先级", follow_up: "随访间隔", reasons: "依据", model_version: "模型版本", site_report_threshold: "本院设定的报告阈值",
    export: "导出结果（JSON；研究人员为去标识化数据）", model_card: "模型说明", routine: "常规", soon: "尽快", urgent: "紧急", pacs: "从 PACS 调取", study_uid: "检查实例 UID", retrieve: "调取并分析",
    unknown_mm: "未知（缺少像素间距）", shown_fps: "显示 帧/秒", fps: "分析 帧/秒", p95: "服务器 p95", dropped: "跳过帧",
    patient_name: "患者姓名", identity_hint: "DICOM 文件的患者 ID 与姓名取自文件头；普通图像请填写。",
    features: "特征（置信度）", malig_short: "恶性", no_features: "—",
    no_outcomes: "尚无确认结果：在检查页确认病灶的病理或随访结果，或导入 CSV 后，此处显示各版本的敏感度与特异度。",
    chart_x: "已确认病灶（滑动窗口，最新在右）", chart_y: "比例",
    zoom_hint: "滚轮缩放，拖动平移，双击复原", layer_outline: "轮廓", layer_axes: "长短径 (mm)", layer_fan: "扇区", layer_liver: "肝脏",
    department: "科室", drift_none: "尚无足够的近期图像判断输入漂移", drift_stat: "统计量", drift_recent: "近期均值", drift_train: "训练集均值",
    live_login: "实时模式无法连接：请重新登录", live_role: "实时模式仅限医师和管理员", live_failed: "实时模式无法连接服务器",
    login_failed_wait: "用户名或密码错误（多次失败后，此地址需等待一段时间）", analysis_finished: "分析完成",
    dicom_sr: "DICOM 结构化报告 (SR)", dicom_seg: "DICOM 分割 (SEG)", send_sent: "已发送至 PACS", send_pending: "等待发送至 PACS",
    send_retrying: "发送至 PACS 失败，将自动重试", send_failed: "发送至 PACS 失败", send_again: "重新发送至 PACS",
  },
  en: {
    subtitle: "liver ultrasound lesion analysis", nav_studies: "Studies", nav_live: "Live", nav_monitor: "Model monitoring",
    nav_admin: "Admin", logout: "Log out", login: "Log in", username: "User name", password: "Password",
    disclaimer: "Decision support only: results must be confirmed by a physician and are not a diagnosis.",
    upload: "Upload images, DICOM or clips", patient_id: "Patient ID", description: "Description",
    analyse: "Upload and analyse", studies: "Studies", time: "Time", status: "Status", frames: "Frames",
    lesions: "Lesions", study: "Study", live: "Live mode", live_video: "Video file", live_camera: "Use camera/capture device",
    live_stop: "Stop", performance: "Sensitivity and specificity per model version", version: "Version",
    sensitivity: "Sensitivity", specificity: "Specificity", drift: "Input drift",
    csv_import: "Import confirmed outcomes CSV (frame_id,lesion_id,malignant,method)", import: "Import",
    models: "Model versions", model: "Model", registered: "Registered", active: "Active", activate: "Activate",
    rollback: "Roll back to previous version", add_user: "New account", role: "Role", role_physician: "Physician",
    role_researcher: "Researcher", role_admin: "Administrator", add: "Add", users: "Accounts", audit: "Audit log",
    lesion: "Lesion", score: "Detection confidence", malignancy: "Malignancy probability", long_axis: "Long axis",
    short_axis: "Short axis", centre: "Centre (px)", confirm: "Confirm outcome", malignant: "Malignant", benign: "Benign",
    pathology: "Pathology", followup: "Follow-up", no_lesion: "No lesion detected", warnings: "Notes",
    overlay: "Overlay (with Grad-CAM heat map)", original: "Original image", report: "Report", queued: "queued",
    running: "analysing", done: "done", failed: "failed", storing: "storing", uploading: "Uploading…",
    uploaded: "Uploaded, analysing",
    too_many: "Too many attempts; please wait",
    confirmed: "confirmed", risk: "Risk", priority: "Priority", follow_up: "Follow-up interval",
    reasons: "Reasons", model_version: "Model version", site_report_threshold: "site-set report threshold", export: "Export results (JSON; de-identified for researchers)", model_card: "Model card", routine: "routine", soon: "soon", urgent: "urgent", pacs: "Retrieve from PACS",
    study_uid: "Study Instance UID", retrieve: "Retrieve and analyse", unknown_mm: "unknown (no pixel spacing)", shown_fps: "shown frames/s", fps: "analysed frames/s",
    p95: "server p95", dropped: "skipped frames",
    patient_name: "Patient name", identity_hint: "DICOM files: patient ID and name come from the file header; plain images: type them.",
    features: "Features (confidence)", malig_short: "malig.", no_features: "—",
    no_outcomes: "No confirmed outcomes yet: confirm lesions (pathology or follow-up) on a study or import a CSV, and sensitivity and specificity per version appear here.",
    chart_x: "confirmed lesions (sliding window, newest right)", chart_y: "proportion",
    zoom_hint: "wheel: zoom, drag: pan, double click: reset", layer_outline: "Outline", layer_axes: "Axes (mm)",
    layer_fan: "Fan", layer_liver: "Liver", department: "Department", drift_none: "Not enough recent images to judge input drift yet", drift_stat: "Statistic", drift_recent: "Recent mean", drift_train: "Training mean",
    live_login: "Live mode cannot connect: please log in again", live_role: "Live mode is for physicians and administrators",
    live_failed: "Live mode cannot reach the server", login_failed_wait: "Wrong user name or password (after repeated failures this address waits a while)",
    analysis_finished: "Analysis finished",
    dicom_sr: "DICOM SR", dicom_seg: "DICOM SEG", send_sent: "Sent to the PACS", send_pending: "Waiting to be sent to the PACS",
    send_retrying: "Sending to the PACS failed, will retry", send_failed: "Sending to the PACS failed", send_again: "Send to the PACS again",
  },
};

const S = { user: null, csrf: "", lang: initialLanguage(), studyTimer: null, live: null, labels: null, uploadUid: null };

// before login: the language chosen last on this computer, else the browser's
function initialLanguage() {
  const saved = window.localStorage && localStorage.getItem("livus-lang");
  if (saved === "zh" || saved === "en") return saved;
  return (navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en";
}

// the page's own texts, else those the server shares from the report's tables (/api/labels)
function t(key) { return (I18N[S.lang] || I18N.zh)[key] || pick(S.labels && S.labels.strings && S.labels.strings[key]) || key; }
function pick(entry) { return entry ? entry[S.lang] || entry.en : null; }
function $(sel) { return document.querySelector(sel); }
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmt(v, d = 2) { return v === null || v === undefined ? "—" : Number(v).toFixed(d); }
function locale() { return S.lang === "zh" ? "zh-CN" : "en-GB"; }
function fmtDate(iso) { return iso ? new Date(iso).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" }) : "—"; }

function applyLanguage() {
  document.documentElement.lang = S.lang;
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  $("#lang").value = S.lang;
}

async function api(path, opts = {}) {
  const o = { credentials: "same-origin", ...opts, headers: { ...(opts.headers || {}) } };
  if (o.method && o.method !== "GET") o.headers["X-CSRF-Token"] = S.csrf;
  if (o.json !== undefined) { o.body = JSON.stringify(o.json); o.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, o);
  if (r.status === 401 && path !== "/api/login") { showLogin(); throw new Error("login required"); }
  let data = null;
  const ct = r.headers.get("content-type") || "";
  if (ct.includes("json")) data = await r.json();
  if (!r.ok) { const err = new Error((data && data.detail) || r.statusText); err.status = r.status; throw err; }
  return data;
}

// ---------------------------------------------------------------- login / session
function showLogin() {
  S.user = null;
  $("#nav").hidden = true; $("#logout").hidden = true; $("#who-name").textContent = "";
  applyLanguage();
  showView("login");
}

async function onLoggedIn(info) {
  S.user = info.user; S.csrf = info.csrf_token; S.lang = info.user.language || "zh";
  if (!S.labels) S.labels = await api("/api/labels").catch(() => null);
  applyLanguage();
  $("#nav").hidden = false; $("#logout").hidden = false;
  $("#who-name").textContent = `${S.user.username} (${t("role_" + S.user.role)})`;
  document.body.dataset.role = S.user.role;
  showAlerts(info.alerts || []);
  showView("studies");
}

function showAlerts(alerts) {
  const b = $("#banner");
  b.replaceChildren();
  alerts.forEach((a) => b.appendChild(el("div", `⚠ ${a.message}`)));
  b.hidden = alerts.length === 0;
}

async function login(ev) {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    const info = await api("/api/login", { method: "POST", json: { username: $("#login-user").value, password: $("#login-pass").value } });
    $("#login-pass").value = "";
    const s = await api("/api/session");
    await onLoggedIn({ ...info, alerts: s.alerts });
  } catch (e) {
    $("#login-error").textContent = e.status === 429 ? t("too_many") : t("login_failed_wait");
  }
}

// ---------------------------------------------------------------- views
function showView(name) {
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${name}`; });
  if (name !== "live") stopLive();
  if (name === "studies") loadStudies();
  if (name === "monitor") loadMonitor();
  if (name === "admin") loadAdmin();
}

async function loadStudies() {
  const rows = await api("/api/studies");
  const tb = $("#study-table tbody");
  tb.replaceChildren();
  rows.forEach((s) => {
    const tr = el("tr");
    tr.dataset.uid = s.uid;
    tr.className = "clickable";
    [fmtDate(s.created_at), s.patient_id, s.patient_name, s.description, t(s.status), s.n_frames, s.n_lesions]
      .forEach((v) => tr.appendChild(el("td", v)));
    const td = el("td", null, "assess-cell");
    (s.assessability || []).forEach((a) => td.appendChild(assessBadge(a, true)));
    tr.appendChild(td);
    tr.addEventListener("click", () => openStudy(s.uid));
    tb.appendChild(tr);
  });
}

async function upload(ev) {
  ev.preventDefault();
  const files = $("#upload-files").files;
  if (!files.length) return;
  const fd = new FormData();
  for (const f of files) fd.append("files", f, f.name);
  fd.append("patient_id", $("#upload-patient").value);
  fd.append("patient_name", $("#upload-name").value);
  fd.append("description", $("#upload-desc").value);
  $("#upload-status").textContent = t("uploading");
  try {
    const s = await api("/api/studies", { method: "POST", body: fd });
    $("#upload-status").textContent = t("uploaded");
    S.uploadUid = s.uid;
    $("#upload-files").value = "";
    await loadStudies();
    openStudy(s.uid);
  } catch (e) { $("#upload-status").textContent = e.message; }
}

async function pacsRetrieve(ev) {
  ev.preventDefault();
  $("#pacs-status").textContent = "…";
  try {
    const out = await api("/api/pacs/retrieve", { method: "POST", json: { patient_id: $("#pacs-patient").value, study_instance_uid: $("#pacs-study").value } });
    $("#pacs-status").textContent = `${out.studies.length} ${t("studies")}`;
    await loadStudies();
    if (out.studies.length) openStudy(out.studies[0]);
  } catch (e) { $("#pacs-status").textContent = e.message; }
}

async function openStudy(uid) {
  clearTimeout(S.studyTimer);
  const s = await api(`/api/studies/${encodeURIComponent(uid)}`);
  const box = $("#study-detail");
  box.hidden = false;
  box.dataset.uid = uid;
  box.dataset.status = s.status;
  $("#detail-title").textContent = [s.patient_id, s.patient_name, s.description].filter(Boolean).join(" · ");
  $("#detail-status").textContent = `${t("status")}: ${t(s.status)} ${s.error || ""}`;
  const views = s.case_views || [];
  renderCase(s.case, views);
  const rep = $("#detail-reports");
  rep.replaceChildren();
  s.reports.forEach((r) => {
    const a = el("a", `${t("report")} (${r.kind.toUpperCase()})`);
    a.href = r.url; a.target = "_blank"; a.rel = "noopener";
    rep.appendChild(a); rep.appendChild(document.createTextNode(" "));
  });
  if (S.user.role !== "researcher" && s.status === "done") renderDicom(uid, rep);
  const fr = $("#detail-frames");
  fr.replaceChildren();
  // a case that is not assessable shows no lesion table on any frame (nothing was assessed)
  const caseNotAssessable = views.length > 0 && views.every((v) => v.assessability && v.assessability.status === "not_assessable");
  s.frames.forEach((f) => fr.appendChild(renderFrame(f, caseNotAssessable)));
  if (busy(s.status)) pollStudy(uid, s.status);
  else if (S.uploadUid === uid) {  // the upload's "analysing" note ends with the analysis
    $("#upload-status").textContent = s.status === "done" ? t("analysis_finished") : t("failed");
    S.uploadUid = null;
  }
}

// DICOM SR/SEG of the study and the state of sending them back to the PACS (/api/studies/{uid}/dicom)
async function renderDicom(uid, box) {
  let d;
  try { d = await api(`/api/studies/${encodeURIComponent(uid)}/dicom`); } catch (e) { return; }
  d.objects.forEach((o) => {
    const a = el("a", `${t("dicom_" + o.kind)} ${o.name}`);
    a.href = o.url;
    box.appendChild(a); box.appendChild(document.createTextNode(" "));
  });
  if (!d.send) return;
  const p = el("p", `${t("send_" + d.send.status)}${d.send.error ? ": " + d.send.error : ""}`);
  p.className = "dicom-send";
  if (d.send.status !== "sent") {
    const b = el("button", t("send_again"));
    b.type = "button";
    b.onclick = async () => {
      b.disabled = true;
      try { await api(`/api/studies/${encodeURIComponent(uid)}/dicom/send`, { method: "POST" }); } catch (e) { /* shown below */ }
      openStudy(uid);
    };
    p.appendChild(document.createTextNode(" ")); p.appendChild(b);
  }
  box.appendChild(p);
}

function busy(status) { return status === "queued" || status === "running" || status === "storing"; }

// while the analysis runs, poll the light status route (not audited); open the study once when it changes
function pollStudy(uid, status) {
  clearTimeout(S.studyTimer);
  S.studyTimer = setTimeout(async () => {
    if ($("#study-detail").dataset.uid !== uid) return;
    const st = await api(`/api/studies/${encodeURIComponent(uid)}/status`);
    if (st.status !== status) { loadStudies(); openStudy(uid); } else if (busy(st.status)) pollStudy(uid, status);
  }, 1000);
}

function reasonLabel(key) { return pick(S.labels && S.labels.reasons && S.labels.reasons[key]) || key.replace(/_/g, " "); }

// the assessability of a frame or case as a badge: status, and (limited / not assessable) its reasons
function assessBadge(a, withReasons) {
  const reasons = (a.reasons || []).map(reasonLabel).join(S.lang === "zh" ? "；" : "; ");
  const text = t("status_" + a.status) + (withReasons && reasons ? (S.lang === "zh" ? `（${reasons}）` : ` (${reasons})`) : "");
  const b = el("span", text, `badge assess-${a.status}`);
  b.dataset.status = a.status;
  if (reasons) b.title = reasons;
  return b;
}

// each case: assessability, then (assessable or limited) risk, priority and follow-up with the
// reasons, or (not assessable) only the reason; the case's LI-RADS; all in the viewer's language
function renderCase(caseJson, views) {
  const box = $("#detail-case");
  box.replaceChildren();
  const cases = (caseJson && caseJson.cases) || [];
  cases.forEach((c, i) => {
    const v = views[i] || { assessability: c.assessability, text: {} };
    const words = v.text[S.lang] || { reasons: c.reasons || [], warnings: c.warnings || [], lirads: null };
    const wrap = el("div", null, "case");
    if (v.assessability) {
      const p = el("p", `${t("assessability")}: `, "assessability");
      p.appendChild(assessBadge(v.assessability, true));
      wrap.appendChild(p);
    }
    const notAssessable = v.assessability && v.assessability.status === "not_assessable";
    if (notAssessable) {  // no risk, priority or follow-up: only why, and what to do
      wrap.appendChild(el("p", words.reasons.join("; ") || t("not_assessable_advice"), "not-assessable"));
    } else {
      wrap.appendChild(el("p", `${t("risk")}: ${fmt(c.risk)}  ${t("priority")}: ${c.priority ? t(c.priority) : "—"}  ${t("follow_up")}: ${words.follow_up || "—"}`, "case-advice"));
      if (words.reasons.length) wrap.appendChild(el("p", `${t("reasons")}: ${words.reasons.join("; ")}`, "small case-reasons"));
    }
    if (words.warnings.length) wrap.appendChild(el("p", `${t("warnings")}: ${words.warnings.join("; ")}`, "small case-warnings"));
    if (words.lirads) wrap.appendChild(renderLirads(words.lirads));
    box.appendChild(wrap);
  });
}

// the case's LI-RADS (US and/or CEUS), worded by the server in this language: per system its ACR
// name and version, the category (or why there is none) as a badge, the rows behind it, the note
function renderLirads(l) {
  const sec = el("div", null, "lirads");
  sec.appendChild(el("h3", t("lirads")));
  l.systems.forEach((s) => {
    const head = el("p", null, "lirads-system");
    head.dataset.system = s.system;
    head.appendChild(el("strong", s.title));
    head.appendChild(document.createTextNode(" "));
    const badge = el("span", s.summary, `badge lirads-${s.status}${s.low_confidence ? " low-confidence" : ""}`);
    badge.dataset.category = s.category || "";
    head.appendChild(badge);
    sec.appendChild(head);
    if (s.rows.length) {
      const table = el("table", null, "lirads-table");
      s.rows.forEach(([label, value]) => {
        const tr = el("tr");
        tr.append(el("th", label), el("td", value));
        table.appendChild(tr);
      });
      sec.appendChild(table);
    }
  });
  sec.appendChild(el("p", `⚠ ${l.note}`, "small lirads-note"));
  return sec;
}

function renderFrame(f, caseNotAssessable) {
  const wrap = el("div", null, "frame");
  wrap.dataset.frameId = f.id;
  const r = f.result;
  const siteThreshold = r && r.model && r.model.report_threshold;  // analyze.report_threshold of this site
  const modelLabel = String(f.model_version).startsWith(f.model_name) ? f.model_version : `${f.model_name} ${f.model_version}`;
  const h = el("h3", `${f.file} #${f.frame_index}  — ${t("model_version")}: ${modelLabel}` +
    (siteThreshold ? ` · ${t("site_report_threshold")} ${siteThreshold} ` : " "));
  if (f.assessability) h.appendChild(assessBadge(f.assessability, true));
  wrap.appendChild(h);
  const imgs = el("div", null, "row");
  const cv = el("canvas", null, "frame-canvas");
  cv.setAttribute("aria-label", t("original"));
  cv.title = t("zoom_hint");
  const img = new Image();
  const view = { scale: 1, tx: 0, ty: 0, layers: { outline: true, axes: true, fan: true, liver: false } };
  const redraw = () => {
    const g = cv.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, cv.width, cv.height);
    g.setTransform(view.scale, 0, 0, view.scale, view.tx, view.ty);
    g.drawImage(img, 0, 0);
    drawResult(g, r, 1, view.layers);
  };
  img.onload = () => { cv.width = img.width; cv.height = img.height; redraw(); };
  img.src = f.image_url;
  wrap.appendChild(layerControls(view.layers, redraw));
  enableZoomPan(cv, view, redraw);
  imgs.appendChild(cv);
  wrap.appendChild(imgs);
  if (f.overlay_url) {  // labelled in the viewer's language (the server re-draws and caches it)
    const url = `${f.overlay_url}?lang=${encodeURIComponent(S.lang)}`;
    const link = el("a");
    link.href = url; link.target = "_blank"; link.rel = "noopener";
    const ov = el("img", null, "overlay");
    ov.alt = t("overlay"); ov.title = t("overlay"); ov.src = url;
    link.appendChild(ov);
    wrap.appendChild(link);
  }
  const notAssessed = caseNotAssessable || (f.assessability && f.assessability.status === "not_assessable");
  wrap.appendChild(notAssessed ? el("p", t("no_lesion_not_assessable"), "not-assessable") : lesionTable(f));
  const warnings = (f.warnings_text && f.warnings_text[S.lang]) || r.warnings || [];
  if (warnings.length) wrap.appendChild(el("p", `${t("warnings")}: ${warnings.join("; ")}`, "small"));
  return wrap;
}

// checkboxes that switch the drawn layers of a frame on and off
function layerControls(layers, redraw) {
  const bar = el("div", null, "layers");
  Object.keys(layers).forEach((name) => {
    const label = el("label", null, "inline");
    const box = el("input");
    box.type = "checkbox"; box.checked = layers[name]; box.dataset.layer = name;
    box.addEventListener("change", () => { layers[name] = box.checked; redraw(); });
    label.append(box, el("span", t("layer_" + name)));
    bar.appendChild(label);
  });
  return bar;
}

// mouse wheel zooms around the pointer, dragging pans, a double click resets
function enableZoomPan(cv, view, redraw) {
  const toCanvas = (ev) => {
    const b = cv.getBoundingClientRect();
    return [((ev.clientX - b.left) * cv.width) / b.width, ((ev.clientY - b.top) * cv.height) / b.height];
  };
  cv.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const [x, y] = toCanvas(ev);
    const k = Math.min(8, Math.max(1, view.scale * (ev.deltaY < 0 ? 1.25 : 0.8))) / view.scale;
    view.tx = x - k * (x - view.tx); view.ty = y - k * (y - view.ty); view.scale *= k;
    if (view.scale === 1) { view.tx = 0; view.ty = 0; }
    redraw();
  }, { passive: false });
  let drag = null;
  cv.addEventListener("mousedown", (ev) => { drag = toCanvas(ev); });
  window.addEventListener("mouseup", () => { drag = null; });
  cv.addEventListener("mousemove", (ev) => {
    if (!drag || view.scale === 1) return;
    const [x, y] = toCanvas(ev);
    view.tx += x - drag[0]; view.ty += y - drag[1]; drag = [x, y];
    redraw();
  });
  cv.addEventListener("dblclick", () => { view.scale = 1; view.tx = 0; view.ty = 0; redraw(); });
}

function mm(v) { return v === null || v === undefined ? t("unknown_mm") : `${fmt(v, 1)} mm`; }

function featureLabel(name) {
  const l = S.labels && S.labels.features && S.labels.features[name];
  return (l && (l[S.lang] || l.en)) || name.replace(/_/g, " ");
}

// the feature findings of a lesion with their confidences, likeliest first (those >= 0.5)
function featureText(les) {
  const all = { ...(les.features || {}), ...(les.ceus_features || {}) };
  const shown = Object.entries(all).filter(([, p]) => p >= 0.5).sort((a, b) => b[1] - a[1]);
  return shown.length ? shown.map(([k, p]) => `${featureLabel(k)} ${fmt(p)}`).join("; ") : t("no_features");
}

function lesionTable(f) {
  const r = f.result;
  const table = el("table", null, "lesion-table");
  const head = el("tr");
  [t("lesion"), t("score"), t("malignancy"), t("long_axis"), t("short_axis"), t("features"), t("centre"), t("confirm")]
    .forEach((h) => head.appendChild(el("th", h)));
  table.appendChild(head);
  if (!r.lesions.length) {
    const tr = el("tr"); const td = el("td", t("no_lesion")); td.colSpan = 8; tr.appendChild(td); table.appendChild(tr);
  }
  r.lesions.forEach((les) => {
    const tr = el("tr");
    [`#${les.id}`, fmt(les.score), fmt(les.malignancy), mm(les.long_axis_mm), mm(les.short_axis_mm), featureText(les),
      `${fmt(les.center_px[0], 0)}, ${fmt(les.center_px[1], 0)}`].forEach((v) => tr.appendChild(el("td", v)));
    const td = el("td");
    const done = (f.outcomes || []).find((o) => o.lesion_id === les.id);
    if (done) td.textContent = `${t("confirmed")}: ${done.malignant ? t("malignant") : t("benign")} (${done.method === "pathology" ? t("pathology") : t("followup")})`;
    else if (S.user.role !== "researcher") td.appendChild(outcomeControls(f.id, les.id));
    tr.appendChild(td);
    table.appendChild(tr);
  });
  return table;
}

function outcomeControls(frameId, lesionId) {
  const span = el("span");
  const truth = el("select");
  [["1", t("malignant")], ["0", t("benign")]].forEach(([v, l]) => { const o = el("option", l); o.value = v; truth.appendChild(o); });
  const method = el("select");
  [["pathology", t("pathology")], ["follow-up", t("followup")]].forEach(([v, l]) => { const o = el("option", l); o.value = v; method.appendChild(o); });
  const b = el("button", t("confirm"));
  b.addEventListener("click", async () => {
    try {
      const out = await api("/api/outcomes", { method: "POST", json: { frame_id: frameId, lesion_id: lesionId, malignant: truth.value === "1", method: method.value } });
      span.replaceChildren(el("span", t("confirmed")));
      if (out.alerts && out.alerts.length) refreshAlerts();
    } catch (e) { span.appendChild(el("span", e.message, "error")); }
  });
  span.append(truth, method, b);
  return span;
}

async function refreshAlerts() { const s = await api("/api/session"); showAlerts(s.alerts || []); }

// Draw lesions of a result (original-image pixels) onto a 2-D context scaled by `k`; `layers`
// (default: outline and fan) picks what is drawn: outline, axes (with mm), fan, liver.
function drawResult(g, r, k, layers = { outline: true, fan: true }) {
  if (!r) return;
  g.save();
  g.lineWidth = Math.max(2, 2 * k);
  g.font = `${Math.max(14, 16 * k)}px livus-sc, sans-serif`;
  const outline = (poly, colour) => {
    g.strokeStyle = colour;
    g.beginPath();
    poly.forEach(([x, y], i) => (i ? g.lineTo(x * k, y * k) : g.moveTo(x * k, y * k)));
    g.closePath(); g.stroke();
  };
  if (layers.fan && r.fan_polygon_px && r.fan_polygon_px.length > 2) outline(r.fan_polygon_px, "rgba(80,160,255,0.5)");
  if (layers.liver && r.liver_polygon_px && r.liver_polygon_px.length > 2) outline(r.liver_polygon_px, "rgba(60,220,120,0.7)");
  (r.lesions || []).forEach((les) => {
    if (layers.axes) drawAxes(g, les, k);
    if (!layers.outline) return;
    const m = les.malignancy;
    g.strokeStyle = m === null || m === undefined ? "#ffd400" : m >= 0.5 ? "#ff3030" : "#30e060";
    if (les.polygon_px && les.polygon_px.length > 2) {
      g.beginPath();
      les.polygon_px.forEach(([x, y], i) => (i ? g.lineTo(x * k, y * k) : g.moveTo(x * k, y * k)));
      g.closePath(); g.stroke();
    } else {
      g.beginPath();
      g.ellipse(les.center_px[0] * k, les.center_px[1] * k, (les.long_axis_px / 2) * k, (les.short_axis_px / 2) * k,
        (les.angle_deg * Math.PI) / 180, 0, 2 * Math.PI);
      g.stroke();
    }
    g.fillStyle = g.strokeStyle;
    const label = `#${les.id} ${m === null || m === undefined ? "" : `${t("malig_short")} ${Math.round(m * 100)}%`}`;
    g.fillText(label, les.bbox_px[0] * k, Math.max(14, les.bbox_px[1] * k - 4));
  });
  g.restore();
}

// the lesion's long (cyan) and short (magenta) axes with their lengths in mm (px when unknown)
function drawAxes(g, les, k) {
  const a = (les.angle_deg * Math.PI) / 180;
  const [cx, cy] = les.center_px;
  [[les.long_axis_px, a, "#00e5ff", les.long_axis_mm], [les.short_axis_px, a + Math.PI / 2, "#ff40ff", les.short_axis_mm]]
    .forEach(([len, ang, colour, lenMm]) => {
      const dx = (Math.cos(ang) * len) / 2, dy = (Math.sin(ang) * len) / 2;
      g.strokeStyle = colour; g.fillStyle = colour;
      g.beginPath(); g.moveTo((cx - dx) * k, (cy - dy) * k); g.lineTo((cx + dx) * k, (cy + dy) * k); g.stroke();
      const text = lenMm === null || lenMm === undefined ? `${fmt(len, 0)} px` : `${fmt(lenMm, 1)} mm`;
      g.fillText(text, (cx + dx) * k + 4, (cy + dy) * k);
    });
}

// ---------------------------------------------------------------- live mode
function stopLive() {
  const L = S.live;
  if (!L) return;
  L.stopped = true;
  if (L.ws) L.ws.close();
  if (L.stream) L.stream.getTracks().forEach((tr) => tr.stop());
  const v = $("#live-video"); v.pause(); v.removeAttribute("src"); v.srcObject = null;
  S.live = null;
}

function startLive(setup) {
  stopLive();
  const L = { seq: 0, inflight: false, last: null, times: [], served: [], shown: [], dropped: 0, skipped: 0,
    lastTime: -1, frames: 0, lastFrames: -1, stopped: false };
  S.live = L;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  L.ws = new WebSocket(`${proto}//${location.host}/api/live`);
  L.ws.binaryType = "arraybuffer";
  L.ws.onclose = (ev) => {  // say why, instead of going silent
    if (L.stopped) return;
    L.stopped = true;
    const msg = ev.code === 4401 ? t("live_login") : ev.code === 4403 ? t("live_role") : t("live_failed");
    $("#live-stats").textContent = `⚠ ${msg}`;
    $("#live-stats").classList.add("error");
  };
  L.ws.onmessage = (m) => {
    const d = JSON.parse(m.data);
    L.inflight = false;
    if (d.result) { L.last = d.result; L.served.push(performance.now()); L.times.push(d.server_ms); }
    L.dropped = d.dropped || 0;
    if (L.times.length > 200) L.times.shift();
    if (L.served.length > 60) L.served.shift();
  };
  const video = $("#live-video");
  const grab = document.createElement("canvas");
  const canvas = $("#live-canvas");
  const g = canvas.getContext("2d");
  setup(video).then(() => {
    video.play();
    // count frames the video really presents (currentTime alone moves at the display's rate)
    const hasFrameCallback = typeof video.requestVideoFrameCallback === "function";
    const onFrame = () => { if (!L.stopped) { L.frames += 1; video.requestVideoFrameCallback(onFrame); } };
    if (hasFrameCallback) video.requestVideoFrameCallback(onFrame);
    const tick = () => {
      if (L.stopped) return;
      const fresh = hasFrameCallback ? L.frames !== L.lastFrames : video.currentTime !== L.lastTime;
      if (video.videoWidth && fresh) {  // a new video frame
        L.lastTime = video.currentTime;
        L.lastFrames = L.frames;
        L.shown.push(performance.now());
        if (L.shown.length > 60) L.shown.shift();
        if (canvas.width !== video.videoWidth) { canvas.width = video.videoWidth; canvas.height = video.videoHeight; }
        g.drawImage(video, 0, 0);
        drawResult(g, L.last, 1);
        if (!L.inflight && L.ws.readyState === 1) sendFrame(L, video, grab);
        else L.skipped += 1;  // shown with the latest result, not analysed (skipped, never queued)
      }
      showLiveStats(L);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

function sendFrame(L, video, grab) {
  // One frame in flight: frames shown while the server works are skipped, never queued.
  L.inflight = true;
  grab.width = video.videoWidth; grab.height = video.videoHeight;
  grab.getContext("2d").drawImage(video, 0, 0);
  const seq = ++L.seq;
  grab.toBlob(async (blob) => {
    if (!blob || L.stopped) { L.inflight = false; return; }
    const body = new Uint8Array(4 + blob.size);
    new DataView(body.buffer).setUint32(0, seq);
    body.set(new Uint8Array(await blob.arrayBuffer()), 4);
    L.ws.send(body);
  }, "image/jpeg", 0.85);
}

function rate(stamps) {
  const n = stamps.length;
  return n > 1 ? ((n - 1) * 1000) / (stamps[n - 1] - stamps[0]) : 0;
}

function showLiveStats(L) {
  $("#live-stats").classList.remove("error");
  const sorted = [...L.times].sort((a, b) => a - b);
  const p95 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))] : 0;
  $("#live-stats").textContent = `${t("shown_fps")}: ${rate(L.shown).toFixed(1)}  ${t("fps")}: ${rate(L.served).toFixed(1)}  ` +
    `${t("p95")}: ${p95.toFixed(1)} ms  ${t("dropped")}: ${L.skipped + L.dropped}`;
}

// ---------------------------------------------------------------- monitoring
async function loadMonitor() {
  const m = await api("/api/monitor");
  showAlerts(m.alerts);
  const tb = $("#metrics-table tbody");
  tb.replaceChildren();
  Object.entries(m.metrics).forEach(([v, x]) => {
    const tr = el("tr");
    [v, x.n, fmt(x.sensitivity), fmt(x.specificity)].forEach((c) => tr.appendChild(el("td", c)));
    tb.appendChild(tr);
  });
  if (!Object.keys(m.metrics).length) {
    const tr = el("tr"); const td = el("td", "—"); td.colSpan = 4; tr.appendChild(td); tb.appendChild(tr);
  }
  renderDrift(m.drift || {});
  const empty = !Object.values(m.series || {}).some((pts) => pts.length);
  $("#chart-empty").hidden = !empty;
  $("#chart").hidden = empty;
  if (!empty) drawChart($("#chart"), m.series, m.thresholds);
  const models = await api("/api/models");
  const mt = $("#model-table tbody");
  mt.replaceChildren();
  Object.entries(models).forEach(([name, info]) => {
    info.versions.forEach((v) => {
      const tr = el("tr");
      [name, v.version, fmtDate(v.registered_at), v.active ? "✔" : ""].forEach((c) => tr.appendChild(el("td", c)));
      const td = el("td");
      if (v.has_card) {
        const a = el("a", t("model_card"));
        a.href = `/api/models/${encodeURIComponent(name)}/${encodeURIComponent(v.version)}/card`;
        a.target = "_blank"; a.rel = "noopener";
        td.append(a, " ");
      }
      const m = Object.entries(v.metrics || {}).filter(([, x]) => typeof x === "number");
      if (m.length) td.append(el("span", m.map(([k, x]) => `${k} ${x.toFixed(3)}`).join(", ") + " ", "small"));
      if (S.user.role === "admin" && !v.active) {
        const b = el("button", t("activate"));
        b.addEventListener("click", async () => { await api(`/api/models/${encodeURIComponent(name)}/activate`, { method: "POST", json: { version: v.version } }); loadMonitor(); });
        td.appendChild(b);
      }
      if (S.user.role === "admin" && v.active && info.history.length > 1) {
        const b = el("button", t("rollback"));
        b.addEventListener("click", async () => { await api(`/api/models/${encodeURIComponent(name)}/rollback`, { method: "POST" }); loadMonitor(); });
        td.appendChild(b);
      }
      tr.appendChild(td);
      mt.appendChild(tr);
    });
  });
}

function renderDrift(d) {
  const tb = $("#drift-table tbody");
  tb.replaceChildren();
  const stats = Object.entries(d.stats || {});
  if (!stats.length) { const tr = el("tr"); tr.appendChild(el("td", t("drift_none"))); tb.appendChild(tr); }
  else {
    const head = el("tr");
    [t("drift_stat"), t("drift_recent"), t("drift_train"), "SMD"].forEach((h) => head.appendChild(el("th", h)));
    tb.appendChild(head);
    stats.forEach(([k, v]) => {
      const tr = el("tr");
      [k, v.recent_mean, v.train_mean, v.smd === undefined ? "—" : fmt(v.smd)].forEach((c) => tr.appendChild(el("td", c)));
      tb.appendChild(tr);
    });
  }
  (d.reasons || []).forEach((r) => { const tr = el("tr"); const td = el("td", `⚠ ${r}`); td.colSpan = 4; tr.appendChild(td); tb.appendChild(tr); });
}

function drawChart(cv, series, th) {
  const g = cv.getContext("2d");
  const legend = 170;  // legend column right of the plot
  const W = cv.width - legend, H = cv.height, pad = 50;
  g.clearRect(0, 0, cv.width, H);
  g.strokeStyle = "#888"; g.strokeRect(pad, 10, W - pad - 10, H - pad - 10);
  const y = (v) => 10 + (1 - v) * (H - pad - 20);
  g.fillStyle = "#555"; g.font = "12px livus-sc, sans-serif";
  [0, 0.5, 1].forEach((v) => g.fillText(v.toFixed(1), 24, y(v) + 4));
  g.fillText(t("chart_x"), pad + 4, H - 8);
  g.save(); g.translate(12, H / 2 + 30); g.rotate(-Math.PI / 2); g.fillText(t("chart_y"), 0, 0); g.restore();
  const dash = (v, c) => { g.setLineDash([5, 4]); g.strokeStyle = c; g.beginPath(); g.moveTo(pad, y(v)); g.lineTo(W - 10, y(v)); g.stroke(); g.setLineDash([]); };
  dash(th.min_sensitivity, "#d33"); dash(th.min_specificity, "#36c");
  g.fillStyle = "#555";
  g.fillText(`${t("sensitivity")} ≥ ${th.min_sensitivity}`, pad + 4, y(th.min_sensitivity) - 3);
  g.fillText(`${t("specificity")} ≥ ${th.min_specificity}`, pad + 4, y(th.min_specificity) - 3);
  const colours = ["#d33", "#36c", "#2a2", "#a2a", "#c80"];
  Object.entries(series).forEach(([ver, pts], vi) => {
    const n = Math.max(2, pts.length);
    const x = (i) => pad + (i / (n - 1)) * (W - pad - 20);
    [["sensitivity", 0], ["specificity", 1]].forEach(([key, k]) => {
      g.strokeStyle = colours[(2 * vi + k) % colours.length];
      g.beginPath();
      let started = false;
      pts.forEach((p, i) => { if (p[key] === null) return; started ? g.lineTo(x(i), y(p[key])) : g.moveTo(x(i), y(p[key])); started = true; });
      g.stroke();
      g.fillStyle = g.strokeStyle;
      g.fillText(`${ver} ${t(key)}`, W + 5, 25 + 16 * (2 * vi + k));
    });
  });
}

async function importCsv(ev) {
  ev.preventDefault();
  const f = $("#csv-file").files[0];
  if (!f) return;
  const fd = new FormData(); fd.append("file", f, f.name);
  try {
    const out = await api("/api/outcomes/import", { method: "POST", body: fd });
    $("#csv-status").textContent = `+${out.added}, ${out.n_errors} ✗ ${out.errors.slice(0, 3).join("; ")}`;
    loadMonitor();
  } catch (e) { $("#csv-status").textContent = e.message; }
}

// ---------------------------------------------------------------- admin
async function loadAdmin() {
  if (S.user.role !== "admin") return;
  const users = await api("/api/users");
  const ut = $("#user-table tbody");
  ut.replaceChildren();
  users.forEach((u) => {
    const tr = el("tr");
    [u.username, t("role_" + u.role), u.department || "", u.language, u.locked ? "🔒" : ""].forEach((c) => tr.appendChild(el("td", c)));
    ut.appendChild(tr);
  });
  const events = await api("/api/audit?limit=100");
  const at = $("#audit-table tbody");
  at.replaceChildren();
  events.forEach((e) => {
    const tr = el("tr");
    [fmtDate(e.time), e.user, e.action, e.target, e.detail].forEach((c) => tr.appendChild(el("td", c)));
    at.appendChild(tr);
  });
}

async function addUser(ev) {
  ev.preventDefault();
  try {
    await api("/api/users", { method: "POST", json: { username: $("#new-user").value, password: $("#new-pass").value, role: $("#new-role").value, language: S.lang, department: $("#new-dept").value } });
    $("#user-status").textContent = "✔"; $("#new-pass").value = "";
    loadAdmin();
  } catch (e) { $("#user-status").textContent = e.message; }
}

// ---------------------------------------------------------------- start
document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", login);
  $("#upload-form").addEventListener("submit", upload);
  $("#csv-form").addEventListener("submit", importCsv);
  $("#pacs-form").addEventListener("submit", pacsRetrieve);
  $("#user-form").addEventListener("submit", addUser);
  document.querySelectorAll("#nav button").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));
  $("#logout").addEventListener("click", async () => { try { await api("/api/logout", { method: "POST" }); } finally { showLogin(); } });
  $("#lang").addEventListener("change", async () => {
    S.lang = $("#lang").value; applyLanguage();
    if (window.localStorage) localStorage.setItem("livus-lang", S.lang);
    $("#upload-status").textContent = "";
    $("#login-error").textContent = "";
    if (S.user) {
      await api("/api/me/language", { method: "PUT", json: { language: S.lang } });
      $("#who-name").textContent = `${S.user.username} (${t("role_" + S.user.role)})`;
      const detail = $("#study-detail");
      if (!detail.hidden && detail.dataset.uid) openStudy(detail.dataset.uid);  // re-render in the new language
      if (!$("#view-studies").hidden) loadStudies();
      if (!$("#view-monitor").hidden) loadMonitor();
      if (!$("#view-admin").hidden) loadAdmin();
    }
  });
  $("#live-file").addEventListener("change", () => {
    const f = $("#live-file").files[0];
    if (f) startLive(async (v) => { v.srcObject = null; v.src = URL.createObjectURL(f); v.loop = true; });
  });
  $("#live-camera").addEventListener("click", () => startLive(async (v) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1024, height: 768 } });
    S.live.stream = stream; v.srcObject = stream;
  }));
  $("#live-stop").addEventListener("click", stopLive);
  applyLanguage();
  // text laid out before the bundled CJK font arrived may keep missing glyphs: lay it out again
  if (document.fonts) document.fonts.load("16px livus-sc", "中文").then(applyLanguage, () => {});
  try { await onLoggedIn(await api("/api/session")); } catch (e) { showLogin(); }
});
