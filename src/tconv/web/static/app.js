// tconv serve: the page. It computes nothing: every number, choice and picture comes
// from the JSON/SVG API of tconv.web.app. This file only asks, shows and keeps the URL
// (/?spec=TEXT&input=SHAPE) in step with what is shown.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { spec: null, input: null, view: null, form: null, token: 0, playing: null, frames: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== null && v !== undefined) q.append(k, v);
  }
  const res = await fetch(`${path}?${q}`);
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body && body.error ? body.error : `${res.status} ${res.statusText}`);
  return body;
}

// ------------------------------------------------------------------ navigation

function urlFor(spec, input) {
  return `/?${new URLSearchParams({ spec, input })}`;
}

function navigate(spec, input, push = true) {
  if (push && (spec !== state.spec || input !== state.input)) {
    history.pushState({ spec, input }, "", urlFor(spec, input));
  }
  return show(spec, input);
}

window.addEventListener("popstate", (event) => {
  const s = event.state || Object.fromEntries(new URLSearchParams(location.search));
  if (s.spec) show(s.spec, s.input || "");
});

// ------------------------------------------------------------------------ show

async function show(spec, input) {
  const token = ++state.token;
  stop();
  state.spec = spec;
  state.input = input;
  $("spec-text").value = spec;
  $("input-shape").value = input;
  setError(null);
  $("output-shape").textContent = "…";
  document.body.dataset.busy = "1";
  const [form, explained] = await Promise.allSettled([
    api("/api/form", { spec, input }), api("/api/explain", { spec, input })]);
  if (token !== state.token) return;
  if (form.status === "fulfilled") renderForm(form.value);
  if (explained.status === "rejected") {
    $("output-shape").textContent = "—";
    $("explanation").replaceChildren();
    setError(explained.reason.message);
    $("picture").replaceChildren();
    $("picture-note").textContent = "";
    $("equivalents").replaceChildren();
    delete document.body.dataset.busy;
    return;
  }
  const e = explained.value;
  if (e.spec !== spec) {  // the canonical text: the URL names the layer as tconv writes it
    state.spec = e.spec;
    $("spec-text").value = e.spec;
    history.replaceState({ spec: e.spec, input }, "", urlFor(e.spec, input));
  }
  renderExplanation(e);
  const views = form.status === "fulfilled" ? form.value : null;
  if (!state.view || (views && !views.choices.view.includes(state.view))) state.view = views ? views.view : "scatter";
  if (e.refused) {
    $("picture").replaceChildren();
    $("player").hidden = true;
    $("picture-note").textContent = "No picture: the framework refuses this layer.";
    $("equivalents").replaceChildren(el("p", { class: "hint", text: "None: the framework refuses this layer." }));
    renderTabs(views);
    delete document.body.dataset.busy;
    return;
  }
  renderTabs(views);
  await Promise.all([drawPicture(token), renderEquivalents(e, token)]);
  if (token === state.token) delete document.body.dataset.busy;
}

function setError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// ------------------------------------------------------------------------ form

function option(value, label, selected, refused) {
  const o = el("option", { value, text: label, class: refused ? "refused" : null });
  o.selected = selected;
  return o;
}

function renderForm(f) {
  state.form = f;
  for (const name of ["framework", "kind", "rank"]) {
    const select = $(name);
    select.replaceChildren(...f.choices[name].map((v) =>
      option(String(v), name === "rank" ? `${v}-D` : String(v), String(v) === String(f[name]))));
  }
  $("callee").textContent = f.callee;
  $("input-hint").textContent = `(${f.input_hint})`;
  const fields = $("fields");
  fields.replaceChildren();
  for (const field of f.fields) {
    let input;
    if (field.kind === "select") {
      input = el("select");
      const current = field.value === null ? "" : field.value;
      for (const o of field.options) input.append(option(o.value, o.label, o.value === current, o.refused));
      if (field.options.some((o) => o.refused && o.value === current)) input.classList.add("refused");
    } else if (field.kind === "int") {
      input = el("input", { type: "number", min: field.min, max: field.max, step: 1,
                            value: field.value === null ? "" : field.value, placeholder: field.default || "" });
    } else if (field.kind === "bool") {
      input = el("input", { type: "checkbox" });
      input.checked = (field.value === null ? field.default : field.value) === "True";
    } else {
      input = el("input", { type: "text", value: field.value === null ? "" : field.value,
                            placeholder: field.default === null ? "(not given)" : field.default, spellcheck: "false" });
    }
    input.id = `field-${field.name}`;
    input.dataset.name = field.name;
    input.addEventListener("change", onFieldChange);
    const name = el("span", { text: field.name }, field.required ? el("span", { class: "req", text: " *" }) : "");
    fields.append(el("label", { title: field.default === null ? "" : `default: ${field.default}` }, name, input));
  }
}

async function onFieldChange() {
  const f = state.form;
  const params = { callee: f.callee };
  for (const field of f.fields) {
    const input = $(`field-${field.name}`);
    if (field.kind === "bool") {
      const value = input.checked ? "True" : "False";
      if (field.value !== null || value !== field.default) params[field.name] = value;
    } else if (input.value !== "") {
      params[field.name] = input.value;
    }
  }
  try {
    const built = await api("/api/spec", params);
    await navigate(built.spec, $("input-shape").value.trim());
  } catch (err) {
    setError(err.message);
  }
}

async function onLayerChange() {
  try {
    const f = await api("/api/form", { framework: $("framework").value, kind: $("kind").value, rank: $("rank").value });
    state.view = null;
    await navigate(f.spec, f.input);
  } catch (err) {
    setError(err.message);
  }
}

// ----------------------------------------------------------------- explanation

function renderExplanation(e) {
  const box = $("explanation");
  if (e.refused) {
    $("output-shape").textContent = "refused";
    setError(e.refused);
    box.replaceChildren();
    return;
  }
  $("output-shape").textContent = e.output_shape.join(" × ");
  const parts = [el("h3", { text: "The arithmetic" }),
    el("p", { class: "hint", text: `${e.spec} on input (${e.input_shape.join(", ")})` })];
  const skip = new Set(["formula", "rule"]);
  const cols = Object.keys(e.axes[0]).filter((k) => !skip.has(k));
  const table = el("table", {}, el("tr", {}, ...cols.map((c) => el("th", { text: c }))));
  for (const a of e.axes) {
    table.append(el("tr", {}, ...cols.map((c) => el("td", { text: Array.isArray(a[c]) ? a[c].join(" ") : a[c] }))));
  }
  parts.push(el("h4", { text: "Per axis" }), table);
  const list = (title, lines, cls) => {
    if (!lines || !lines.length) return;
    parts.push(el("h4", { text: title }), el("ul", { class: cls || null }, ...lines.map((t) => el("li", { text: t }))));
  };
  list("How the numbers come about", e.axes.map((a) => `${a.name}: ${a.formula}`));
  const rules = e.axes.map((a) => a.rule);
  list("The rule, in words", rules.every((r) => r === rules[0]) && rules.length > 1
    ? [`each axis: ${rules[0]}`] : e.axes.map((a) => `${a.name}: ${a.rule}`));
  list("The likely misreading", e.misreading, "warn");
  list("Channels and kernel", [e.channels, e.kernel, `parameters: ${e.parameters.toLocaleString("en")}`,
    `multiply-adds: ${e.multiply_adds.toLocaleString("en")} (FLOPs ~ ${e.flops.toLocaleString("en")})`]);
  list("Warnings", e.warnings, "warn");
  box.replaceChildren(...parts);
}

// --------------------------------------------------------------------- pictures

function renderTabs(f) {
  const views = f ? f.choices.view : ["scatter", "zeros", "overlap", "matrix", "conv"];
  $("views").replaceChildren(...views.map((v) => {
    const b = el("button", { type: "button", class: "tab", id: `view-${v}`, role: "tab", text: v,
                             "aria-selected": v === state.view ? "true" : "false" });
    b.addEventListener("click", () => { state.view = v; stop(); renderTabs(f); drawPicture(state.token); });
    return b;
  }));
}

function drawParams(extra) {
  return { spec: state.spec, input: state.input, view: state.view, ...extra };
}

function putSvg(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") throw new Error("the server sent no SVG");
  $("picture").replaceChildren(document.importNode(svg, true));
}

async function drawPicture(token) {
  $("picture-note").textContent = "";
  try {
    const [svg, frames] = await Promise.all([api("/api/draw", drawParams()), api("/api/frames", drawParams())]);
    if (token !== state.token) return;
    putSvg(svg);
    state.frames = frames;
    const slider = $("frame-slider");
    slider.max = frames.frames.length - 1;
    slider.value = frames.static;
    $("frame-caption").textContent = frameWords(frames.static);
    $("player").hidden = frames.frames.length < 2;
  } catch (err) {
    if (token !== state.token) return;
    $("picture").replaceChildren();
    $("player").hidden = true;
    state.frames = null;
    $("picture-note").textContent = err.message;
  }
}

async function showFrame(i, token) {
  const svg = await api("/api/draw", drawParams({ frame: i }));
  if (token !== state.token) return false;
  putSvg(svg);
  $("frame-slider").value = i;
  $("frame-caption").textContent = frameWords(i);
  return true;
}

function frameWords(i) {
  const f = state.frames.frames;
  return `frame ${i + 1} of ${f.length} (${f[i].kind})`;
}

function stop() {
  if (state.playing) clearTimeout(state.playing);
  state.playing = null;
  $("play").textContent = "▶ play";
}

async function play() {
  if (state.playing) { stop(); return; }
  if (!state.frames) return;
  const token = state.token;
  $("play").textContent = "■ stop";
  let i = 0;
  const step = async () => {
    if (token !== state.token || !$("play").textContent.startsWith("■")) return;
    try {
      if (!(await showFrame(i, token))) return;
    } catch (err) { $("picture-note").textContent = err.message; stop(); return; }
    const ms = state.frames.frames[i].ms;
    i = (i + 1) % state.frames.frames.length;
    state.playing = setTimeout(step, ms);
  };
  state.playing = setTimeout(step, 0);
}

// ------------------------------------------------------------------ equivalents

async function renderEquivalents(e, token) {
  const box = $("equivalents");
  const others = (state.form ? state.form.choices.framework : []).filter((f) => f !== e.framework);
  const lines = new Map((e.equivalents || []).map((line) => [line.split(":")[0], line]));
  box.replaceChildren(el("ul", { class: "hint" }, ...[...lines.values()].map((t) => el("li", { text: t }))));
  const results = await Promise.allSettled(others.map((to) => api("/api/translate", { spec: state.spec, input: state.input, to })));
  if (token !== state.token) return;
  results.forEach((r, k) => {
    const to = others[k];
    if (r.status === "rejected") {
      box.append(el("details", {}, el("summary", { text: `${to}: no exact translation` }), el("p", { text: r.reason.message })));
      return;
    }
    const t = r.value;
    const summary = `${to}: ${t.spec}${t.single_call ? "" : "  (+ " + (t.steps.length - 1) + " step(s) around it)"}`;
    box.append(el("details", { "data-framework": to }, el("summary", { text: summary }),
      el("ol", {}, ...t.steps.map((s) => el("li", { text: s }))),
      el("p", { class: "hint", text: `exact for: ${t.validity.join("; ")}` }),
      el("pre", { text: t.code })));
  });
}

// ------------------------------------------------------------------------ start

async function start() {
  for (const name of ["framework", "kind", "rank"]) $(name).addEventListener("change", onLayerChange);
  $("apply").addEventListener("click", () => navigate($("spec-text").value.trim(), $("input-shape").value.trim()));
  $("input-shape").addEventListener("change", () => navigate(state.spec || $("spec-text").value.trim(), $("input-shape").value.trim()));
  $("play").addEventListener("click", play);
  $("frame-slider").addEventListener("input", (ev) => { stop(); showFrame(Number(ev.target.value), state.token).catch(() => {}); });
  const params = new URLSearchParams(location.search);
  let spec = params.get("spec"), input = params.get("input");
  if (!spec) {
    try {
      const f = await api("/api/form", {});
      spec = f.spec; input = f.input;
    } catch (err) { setError(err.message); return; }
  }
  history.replaceState({ spec, input: input || "" }, "", urlFor(spec, input || ""));
  await show(spec, input || "");
}

document.addEventListener("DOMContentLoaded", start);
