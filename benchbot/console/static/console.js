// benchbot console page: renders the run's state (server-sent events) and sends answers.
// Everything shown comes from the server as text (textContent only); answers are checked there.
"use strict";
const token = document.body.dataset.token;
const withToken = (path) => `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
const $ = (id) => document.getElementById(id);
let state = null;
let shownKey = null;
let shownImage = null;
let elapsedBase = null;
let sending = false;
let source = null;

function text(el, value) { el.textContent = value == null ? "" : String(value); }
function fmtPct(x) { return x == null ? "n/a" : x.toFixed(1); }
function fmtDuration(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
}

function showMessage(message, kind) {
  const el = $("msg");
  text(el, message);
  el.className = `msg ${kind}`;
}

function banner(message) {
  const el = $("banner");
  el.hidden = !message;
  text(el, message || "");
}

async function post(path, body) {
  const r = await fetch(withToken(path), {method: "POST", headers: {"content-type": "application/json"},
                                          body: JSON.stringify(body), cache: "no-store"});
  const raw = await r.text();
  let message = raw;
  try { message = JSON.parse(raw).message || raw; } catch (e) { /* plain-text refusal */ }
  return {ok: r.ok, message};
}

async function answer(payload) {
  const q = state && state.question;
  if (!q || sending) return;
  sending = true;
  setButtonsDisabled(true);
  showMessage("sending…", "info");
  try {
    const res = await post("api/answer", {run_id: q.run_id, qid: q.qid, answer: payload});
    showMessage(res.ok ? res.message : `refused: ${res.message}`, res.ok ? "ok" : "refused");
    if (res.ok) $("note").value = "";
  } catch (e) {
    showMessage("refused: the console is not reachable (the run has ended or the network is down) — nothing was recorded",
                "refused");
  } finally {
    sending = false;
    setButtonsDisabled(false);
  }
}

function setButtonsDisabled(disabled) {
  document.querySelectorAll(".ask button").forEach((b) => { b.disabled = disabled; });
}

function renderHeader(s) {
  const run = s.run || {};
  text($("run"), run.run_id ? `run ${run.run_id} · ${run.protocol} · ${run.backend}` : "waiting for the run…");
  const mode = $("mode");
  mode.hidden = !run.run_id;
  text(mode, s.watch_only ? "watch only — the backend judges" : "operator judges");
  mode.className = `badge ${s.watch_only ? "watch" : "judge"}`;
}

const STEPS = {
  waiting: "waiting", starting: "starting", placing: "place the object", plan: "grasp planned",
  executing: "robot moving", judging: "judge the attempt", recorded: "attempt recorded", finished: "run finished", stopped: "run stopped",
};

function renderNow(s) {
  const t = s.trial, q = s.question;
  text($("step"), STEPS[s.phase] || s.phase);
  let headline = "Waiting for the first trial", detail = "";
  if (t) {
    headline = `Place the ${t.object_name}`;
    detail = s.phase === "placing" ? t.instruction : "";
    if (s.phase === "plan") headline = `${s.watch_only ? "Grasp planned on" : "Check the grasp on"} the ${t.object_name}`;
    if (s.phase === "executing") { headline = "Robot moving — stand clear"; detail = ""; }
    if (q && q.kind === "judge") { headline = `Judge the grasp of the ${t.object_name}`; detail = ""; }
  }
  if (s.finished) {
    headline = s.finished.interrupted ? "Run stopped" : "Run finished";
    detail = s.finished.interrupted
      ? `${s.finished.pending} trial(s) pending — resume with benchbot run --resume`
      : "every trial of the schedule is recorded";
  }
  text($("headline"), headline);
  text($("detail"), detail);
  text($("stat-trial"), t ? `trial ${t.trial_no} of ${t.n_trials} · ${t.method} · attempt ${t.attempt_no}` : "trial –");
  const done = s.table.done || 0, total = s.table.total || (s.run && s.run.n_trials) || 0;
  text($("stat-done"), `${done} / ${total} done`);
  $("progress-fill").style.width = total ? `${(100 * done / total).toFixed(1)}%` : "0%";
  text($("stat-rate"), s.picks_per_hour == null ? "– picks/h" : `${s.picks_per_hour.toFixed(0)} picks/h`);
  elapsedBase = s.elapsed_s == null ? null : {s: s.elapsed_s, at: performance.now(), running: !s.finished};
  tick();
}

function tick() {
  if (!elapsedBase) return;
  const extra = elapsedBase.running ? (performance.now() - elapsedBase.at) / 1000 : 0;
  text($("stat-elapsed"), fmtDuration(elapsedBase.s + extra));
}

function fact(dl, name, value, cls) {
  const dt = document.createElement("dt"), dd = document.createElement("dd");
  text(dt, name);
  text(dd, value);
  if (cls) dd.className = cls;
  dl.append(dt, dd);
}

const SVG = "http://www.w3.org/2000/svg";

function qColor(q) {  // as the overlay PNG: red (q=0) → yellow → green (q=1), grey when unknown
  if (q == null) return "rgb(170,170,170)";
  q = Math.min(1, Math.max(0, q));
  return `rgb(${Math.round(255 * Math.min(1, 2 * (1 - q)))},${Math.round(255 * Math.min(1, 2 * q))},0)`;
}

function drawGrasp(p, width, height) {  // the grasp again, thick, in image pixels: readable on a tablet
  const svg = $("plan-grasp");
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (p.row == null) return;
  const a = p.angle_deg * Math.PI / 180, ax = [Math.cos(a), -Math.sin(a)], jaw = [-ax[1], ax[0]];
  const half = p.width_px / 2, jawHalf = Math.max(6, 0.3 * half), c = [p.col, p.row];
  const at = (base, dir, k) => [base[0] + k * dir[0], base[1] + k * dir[1]];
  const p1 = at(c, ax, -half), p2 = at(c, ax, half);
  const segments = [[p1, p2], [at(p1, jaw, -jawHalf), at(p1, jaw, jawHalf)], [at(p2, jaw, -jawHalf), at(p2, jaw, jawHalf)]];
  const stroke = Math.max(3, width / 160);
  for (const [color, w] of [["rgba(0,0,0,0.75)", stroke * 2.2], [qColor(p.q), stroke]]) {
    for (const [u, v] of segments) {
      const l = document.createElementNS(SVG, "line");
      l.setAttribute("x1", u[0]); l.setAttribute("y1", u[1]); l.setAttribute("x2", v[0]); l.setAttribute("y2", v[1]);
      l.setAttribute("stroke", color); l.setAttribute("stroke-width", w); l.setAttribute("stroke-linecap", "round");
      svg.append(l);
    }
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", c[0]); dot.setAttribute("cy", c[1]); dot.setAttribute("r", stroke * 1.6);
    dot.setAttribute("fill", "none"); dot.setAttribute("stroke", color); dot.setAttribute("stroke-width", w / 2);
    svg.append(dot);
  }
}

function renderPlan(s) {
  const p = s.plan, img = $("plan-img"), dl = $("plan-facts");
  dl.replaceChildren();
  if (!p) {
    $("plan-stage").hidden = true; $("plan-empty").hidden = false; shownKey = shownImage = null;
    return;
  }
  if (p.key !== shownKey) {  // a new attempt: never leave the previous grasp on screen
    shownKey = p.key; shownImage = null;
    $("plan-stage").hidden = true; $("plan-empty").hidden = false;
    text($("plan-empty"), "drawing the grasp…");
  }
  const imageId = p.image ? `${p.key}/${p.image}` : null;
  if (imageId && imageId !== shownImage) {
    shownImage = imageId;
    const key = p.key;
    img.onload = () => {
      if (shownKey !== key) return;
      drawGrasp(state.plan, img.naturalWidth, img.naturalHeight);
      $("plan-stage").hidden = false; $("plan-empty").hidden = true;
      requestAnimationFrame(() => requestAnimationFrame(() => post("api/seen", {key}).catch(() => {})));
    };
    img.src = withToken(`img/${p.image}`);
  } else if (shownImage && img.complete && img.naturalWidth) {
    drawGrasp(p, img.naturalWidth, img.naturalHeight);  // q arrived: its colour
  }
  if (p.error) fact(dl, "no grasp", p.error, "bad");
  if (p.q_pending) fact(dl, "q", "computing…");
  else if (p.q != null) {
    const robust = p.threshold != null ? (p.q >= p.threshold ? " (robust)" : " (not robust)") : "";
    fact(dl, "q", `${p.q.toFixed(3)}${robust}`, p.threshold != null && p.q >= p.threshold ? "good" : "warn");
  } else if (!p.error) fact(dl, "q", "n/a (no evaluator)");
  if (p.row != null) fact(dl, "grasp", `(${p.row.toFixed(0)}, ${p.col.toFixed(0)}) · ${p.angle_deg.toFixed(0)}° · ${p.width_px.toFixed(0)} px · ${p.depth_m.toFixed(3)} m`);
  const ms = p.timings_ms || {};
  const parts = ["capture", "inpaint", "detect", "robust"].filter((k) => ms[k] != null).map((k) => `${k} ${ms[k].toFixed(0)} ms`);
  if (parts.length) fact(dl, "timings", parts.join(" · "));
  if (s.seen_ms != null) fact(dl, "on this page", `${s.seen_ms.toFixed(0)} ms after detection`);
}

function renderAsk(s) {
  const q = s.question;
  const qid = q ? q.qid : null;
  if (qid !== renderAsk.qid) {  // a new question: the last message was about the previous one
    renderAsk.qid = qid;
    if (qid && !sending) showMessage("", "");
  }
  for (const kind of ["confirm", "review", "judge"]) $(`ask-${kind}`).hidden = !q || q.kind !== kind;
  let prompt = "No question open.";
  if (q) prompt = {review: "Execute this grasp? Nothing moves until Go.", judge: "Outcome of this attempt?"}[q.kind] || q.text;
  else if (s.finished) prompt = "This run is over: nothing more can be answered here.";
  else if (s.watch_only) prompt = "Watch only: the backend judges every attempt, no answer is needed.";
  else if (s.phase === "executing") prompt = "The robot is moving.";
  text($("ask-text"), prompt);
  $("ask-text").className = q ? "ask-text open" : "ask-text";
  const la = s.last_answer;
  if (la && la.by && la.by !== "page" && la.qid !== renderAsk.lastNoted) {
    renderAsk.lastNoted = la.qid;
    showMessage(`answered in the ${la.by}: ${la.label}`, "info");
  }
}

function renderTable(s) {
  const body = $("t2");
  body.replaceChildren();
  for (const r of s.table.rows || []) {
    const tr = document.createElement("tr");
    const ci = r.judged ? `${fmtPct(r.success_pct)} [${fmtPct(r.ci_low_pct)}, ${fmtPct(r.ci_high_pct)}]` : "n/a";
    const cells = [r.method, r.source, r.judged, ci, fmtPct(r.robust_pct),
                   r.detect_median_s == null ? "n/a" : r.detect_median_s.toFixed(3),
                   `${r.aborted} / ${r.voided} / ${r.pending}`];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      if (i === 3 && r.judged) {
        const bar = document.createElement("div"), range = document.createElement("span"), dot = document.createElement("i");
        bar.className = "ci";
        range.style.left = `${r.ci_low_pct}%`;
        range.style.width = `${Math.max(0.5, r.ci_high_pct - r.ci_low_pct)}%`;
        dot.style.left = `${r.success_pct}%`;
        bar.append(range, dot);
        const label = document.createElement("div");
        text(label, c);
        td.append(label, bar);
      } else text(td, c);
      tr.append(td);
    });
    body.append(tr);
  }
}

function renderRecent(s) {
  const box = $("thumbs");
  box.replaceChildren();
  for (const a of s.recent || []) {
    const fig = document.createElement("figure"), cap = document.createElement("figcaption");
    fig.className = `thumb ${a.verdict}`;
    if (a.image) {
      const img = document.createElement("img");
      img.src = withToken(`img/${a.image}`);
      img.alt = `attempt ${a.attempt_no} of trial ${a.trial_no}`;
      fig.append(img);
    }
    const badge = document.createElement("b");
    text(badge, a.cause && a.cause !== a.verdict ? `${a.verdict}: ${a.cause}` : a.verdict);
    const who = document.createElement("span");
    text(who, `#${a.trial_no} ${a.object_id} · ${a.method}`);
    cap.append(badge, who);
    if (a.note) { const n = document.createElement("em"); text(n, a.note); cap.append(n); }
    fig.append(cap);
    box.append(fig);
  }
}

function render() {
  const s = state;
  renderHeader(s); renderNow(s); renderPlan(s); renderAsk(s); renderTable(s); renderRecent(s);
  document.body.dataset.phase = s.phase;
  document.body.dataset.question = s.question ? s.question.kind : "";
  document.body.dataset.qid = s.question ? s.question.qid : "";
}

function setConnected(ok, why) {
  const el = $("conn");
  el.className = `conn ${ok ? "up" : "down"}`;
  text(el, ok ? "live" : "disconnected");
  banner(ok ? "" : why);
}

async function diagnose() {
  try {
    const r = await fetch(withToken("api/state"), {cache: "no-store"});
    if (r.status === 403) return `refused: ${await r.text()}`;
    return r.ok ? "" : `the console answered ${r.status}`;
  } catch (e) {
    return "the console is not reachable: the run has ended or the network is down. Answers cannot be recorded.";
  }
}

function connect() {
  source = new EventSource(withToken("events"));
  source.onmessage = (e) => {
    state = JSON.parse(e.data);
    causeButtons(state.causes || []);
    setConnected(true);
    render();
  };
  source.onerror = async () => {
    const why = await diagnose();
    if (why) setConnected(false, why);
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  };
}

function causeButtons(causes) {
  if ($("causes").childElementCount) return;
  for (const cause of causes) {
    const b = document.createElement("button");
    b.className = "fail";
    b.dataset.kind = "failure";
    b.dataset.cause = cause;
    text(b, cause);
    $("causes").append(b);
  }
}

document.addEventListener("click", (ev) => {
  const b = ev.target.closest(".ask button");
  if (!b || b.disabled) return;
  if (b.dataset.answer) return void answer({value: b.dataset.answer});
  const note = $("note").value.trim() || null;
  answer({kind: b.dataset.kind, cause: b.dataset.cause || null, note});
});

setInterval(tick, 1000);
connect();
