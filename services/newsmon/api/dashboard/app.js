// newsmon operations dashboard: live alerts (SSE), story view, map, topic activity, feed and delivery health.
// Everything untrusted is inserted as text (never innerHTML); Arabic gets dir="rtl", other text dir="auto".
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const state = { token: null, alerts: new Map(), places: new Map(), source: null };
  const COLORS = ["#2454d6", "#c62828", "#2e7d32", "#e65100", "#6a1b9a", "#00838f"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const dirOf = (lang) => (lang === "ar" || lang === "fa" || lang === "he" ? "rtl" : "auto");
  const when = (t) => { if (t === null || t === undefined) return "—";
    const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
    return d.toISOString().replace("T", " ").slice(0, 16) + "Z"; };
  function showError(msg) { const e = $("error"); e.textContent = msg; e.hidden = !msg; }

  // text with <mark> around spans [start, end) (offsets into this very string; overlaps merged)
  function highlighted(text, spans) {
    const frag = document.createDocumentFragment();
    const ranges = spans.filter((s) => s.start >= 0 && s.end <= text.length && s.end > s.start)
      .map((s) => [s.start, s.end, s.term]).sort((a, b) => a[0] - b[0]);
    let pos = 0;
    for (const [start, end, term] of ranges) {
      if (start < pos) continue;
      frag.append(text.slice(pos, start));
      frag.append(el("mark", { title: term }, text.slice(start, end)));
      pos = end;
    }
    frag.append(text.slice(pos));
    return frag;
  }

  function occurrences(text, needles) {
    const found = [];
    for (const needle of new Set(needles)) {
      for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) {
        found.push({ start: i, end: i + needle.length, term: needle });
      }
    }
    return found;
  }

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers.Authorization = "Bearer " + state.token;
    if (opts.body) opts.headers["Content-Type"] = "application/json";
    const res = await fetch(path, opts);
    if (res.status === 401) { signOut("token refused; sign in again"); throw new Error("unauthorized"); }
    const body = res.status === 204 ? null : await res.json();
    if (!res.ok) throw new Error(body && body.detail ? body.detail : "HTTP " + res.status);
    return body;
  }

  function alertItem(a, fresh) {
    const summary = a.summary || "";
    const titleSpans = a.spans.filter((s) => s.field === "title");
    // The engine caps spans per match, so text spans may be missing: find the matched forms in the summary too.
    const textSpans = a.spans.some((s) => s.field === "text") ? a.spans.filter((s) => s.field === "text")
      : occurrences(summary, a.spans.map((s) => s.text).filter(Boolean));
    const item = el("li", { class: `alert sev-${a.severity}${fresh ? " fresh" : ""}`, "data-alert": a.alert_id,
                            "data-story": a.story_id, lang: a.lang || null,
                            onclick: () => openStory(a.story_id) },
      el("div", { class: "meta" }, el("span", { class: `tag badge-${a.kind}` }, a.kind),
         el("span", {}, a.topic_title || a.topic), el("span", {}, "score " + a.score.toFixed(2)),
         el("span", {}, a.source_count + " source" + (a.source_count === 1 ? "" : "s")),
         el("time", {}, when(a.created_at)), el("span", {}, reported(a).map((p) => p.name_en).join(", "))),
      el("div", { class: "title", dir: dirOf(a.lang) }, highlighted(a.title, titleSpans)));
    if (summary) item.append(el("div", { class: "summary", dir: dirOf(a.lang) }, highlighted(summary, textSpans)));
    if (a.changes && a.changes.length) item.append(el("div", { class: "meta" }, "changes: " + a.changes.join("; ")));
    return item;
  }

  function addAlert(a, fresh) {
    const list = $("alerts");
    const old = list.querySelector(`[data-alert="${CSS.escape(a.alert_id)}"]`);
    if (old) old.remove();
    const item = alertItem(a, fresh);
    if (fresh) list.prepend(item); else list.append(item);
    state.alerts.set(a.alert_id, a);
    $("alert-count").textContent = `(${state.alerts.size})`;
    for (const p of reported(a)) addPlace(p);
  }

  // The places an alert or a match reports on (named in a title or lead; all when focus is unknown), as the
  // API's place filter and routing read them (events.reported_places): background places are not drawn.
  function reported(x) {
    const places = x.places || [];
    return x.focus && x.focus.length ? places.filter((p) => x.focus.includes(p.id)) : places;
  }

  function addPlace(p) {
    if (p.lat === null || p.lon === null || p.lat === undefined) return;
    const known = state.places.get(p.id) || Object.assign({ count: 0 }, p);
    known.count += 1;
    state.places.set(p.id, known);
    drawPoints();
  }

  function drawMap() {
    const map = $("map"), S = window.SYRIA;
    map.replaceChildren(svg("path", { class: "land", d: S.path(S.outline) + " Z" }),
                        svg("path", { class: "river", d: S.path(S.euphrates) }), svg("g", { id: "points" }));
    for (const [name, lon, lat] of S.cities) {
      const [x, y] = S.project(lon, lat);
      map.append(svg("circle", { class: "city", cx: x, cy: y, r: 1.8 }),
                 svg("text", { class: "city-label", x: x + 3, y: y - 2 }, name));
    }
  }
  function drawPoints() {
    const g = $("points"), S = window.SYRIA;
    g.replaceChildren();
    for (const p of state.places.values()) {
      const [x, y] = S.project(p.lon, p.lat);
      const dot = svg("circle", { class: "hit", cx: x, cy: y, r: Math.min(4 + 2 * Math.sqrt(p.count), 14),
                                  "data-place": p.id });
      dot.append(svg("title", {}, `${p.name_en} ${p.name_ar || ""} — ${p.count}`));
      g.append(dot, svg("text", { class: "hit-label", x: x + 6, y: y + 10 }, p.name_en));
    }
  }

  async function openStory(id) {
    const box = $("story");
    box.hidden = false;
    $("story-id").textContent = id;
    const body = $("story-body");
    body.replaceChildren(el("p", {}, "loading…"));
    try {
      const s = await api("/api/v1/stories/" + encodeURIComponent(id));
      const langs = [...new Set(s.sources.map((x) => x.lang).filter(Boolean))].join(", ");
      const sources = el("ul", { class: "sources" }, ...s.sources.map((x) => el("li", { class: "source", dir: dirOf(x.lang), lang: x.lang || null },
        el("div", { class: "meta" }, `${x.source || x.feed_id} · ${x.lang || "?"} · ${when(x.published)}`),
        x.url ? el("a", { href: x.url, target: "_blank", rel: "noopener noreferrer" }, x.title) : x.title)));
      const timeline = el("ol", { class: "timeline" }, ...s.timeline.map((e) => el("li", { dir: "auto" },
        el("time", {}, when(e.at)), " ", el("b", {}, e.event), " ", e.title,
        e.source ? ` — ${e.source}` : "", e.changes && e.changes.length ? ` (${e.changes.join("; ")})` : "")));
      body.replaceChildren(el("p", {}, `${s.sources.length} sources · languages: ${langs || "—"}`),
                           el("h3", {}, "Sources"), sources, el("h3", {}, "Timeline"), timeline);
      box.scrollIntoView({ behavior: "smooth", block: "start" });
    } catch (err) { body.replaceChildren(el("p", { class: "error" }, String(err.message))); }
  }

  async function loadActivity() {
    const data = await api("/api/v1/activity?hours=24");
    const chart = $("chart"), legend = $("legend");
    chart.replaceChildren(); legend.replaceChildren();
    const topics = Object.keys(data.series);
    const max = Math.max(1, ...topics.flatMap((t) => data.series[t]));
    const W = 360, H = 110, n = 24, step = W / n;
    chart.append(svg("line", { x1: 0, y1: H, x2: W, y2: H, stroke: "#aaa" }));
    topics.forEach((t, i) => {
      const color = COLORS[i % COLORS.length];
      const pts = data.series[t].map((v, j) => `${(j + 0.5) * step},${H - (v / max) * (H - 10)}`).join(" ");
      chart.append(svg("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2, "data-topic": t }));
      legend.append(el("span", {}, el("i", { style: `background:${color}` }), t));
    });
    if (!topics.length) legend.append(el("span", {}, "no alerts in the last 24 h"));
  }

  async function loadFeeds() {
    const rows = await api("/api/v1/feeds");
    $("feeds").tBodies[0].replaceChildren(...rows.map((f) => el("tr", {},
      el("td", { dir: "auto", title: f.url }, f.name || f.title || f.id, f.active ? "" : " (paused)"),
      el("td", { class: "h-" + f.health }, f.health), el("td", {}, when(f.last_success)),
      el("td", { class: "err", title: f.last_error || "" }, f.last_error || ""), el("td", {}, f.error_streak),
      el("td", {}, when(f.next_poll)), el("td", {}, f.items_per_day === null ? "—" : f.items_per_day.toFixed(1)))));
  }

  async function loadDeliveries() {
    const data = await api("/api/v1/deliveries?limit=30");
    $("delivery-counts").textContent = Object.entries(data.counts).map(([k, v]) => `${k}: ${v}`).join(" · ");
    $("deliveries").tBodies[0].replaceChildren(...data.items.map((d) => el("tr", {},
      el("td", { title: d.id }, d.alert_id), el("td", {}, d.subscription_id), el("td", {}, d.channel),
      el("td", { class: d.status === "dead" ? "h-failing" : d.status === "delivered" ? "h-ok" : "" }, d.status),
      el("td", {}, d.attempts), el("td", { class: "err", title: d.last_error || "" }, d.last_error || ""),
      el("td", {}, d.status === "dead" ? el("button", { class: "replay", onclick: () => replay(d.id) }, "Replay") : ""))));
  }

  async function replay(id) {
    try {
      const r = await api("/api/v1/deliveries/replay", { method: "POST", body: JSON.stringify({ delivery: id }) });
      showError(""); await loadDeliveries();
      $("delivery-counts").textContent += ` · replayed ${r.replayed}`;
    } catch (err) { showError("replay: " + err.message); }
  }

  function connect() {
    if (state.source) state.source.close();
    const es = new EventSource("/api/v1/stream?token=" + encodeURIComponent(state.token));
    es.onopen = () => { $("live").textContent = "live"; $("live").className = "pill on"; };
    es.onerror = () => { $("live").textContent = "reconnecting"; $("live").className = "pill off"; };
    es.addEventListener("alert", (e) => { addAlert(JSON.parse(e.data), true); loadActivity().catch(() => {}); });
    es.addEventListener("match", (e) => { for (const p of reported(JSON.parse(e.data))) addPlace(p); });
    state.source = es;
  }

  async function refresh() {
    try { await Promise.all([loadFeeds(), loadDeliveries(), loadActivity()]); showError(""); }
    catch (err) { if (state.token) showError(String(err.message)); }
  }

  async function start() {
    $("login").hidden = true; $("logout").hidden = false;
    drawMap();
    try {
      const alerts = await api("/api/v1/alerts?limit=100");
      for (const a of alerts) if (!state.alerts.has(a.alert_id)) addAlert(a, false);
      const matches = await api("/api/v1/matches?limit=200");
      for (const m of matches) for (const p of reported(m)) addPlace(p);
    } catch (err) { if (state.token) showError(String(err.message)); return; }
    connect();
    await refresh();
    setInterval(refresh, 15000);
  }

  function signOut(msg) {
    localStorage.removeItem("newsmon.token"); state.token = null;
    if (state.source) state.source.close();
    $("login").hidden = false; $("logout").hidden = true; showError(msg || "");
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    localStorage.setItem("newsmon.token", state.token);
    start();
  });
  $("logout").addEventListener("click", () => signOut(""));
  $("story-close").addEventListener("click", () => { $("story").hidden = true; });

  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) { localStorage.setItem("newsmon.token", fromUrl); history.replaceState(null, "", location.pathname); }
  state.token = localStorage.getItem("newsmon.token");
  drawMap();
  if (state.token) start(); else signOut("");
})();
