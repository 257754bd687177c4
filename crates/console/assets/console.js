// skystream console. Plain browser JavaScript, no libraries, no outside requests.
//
// Safety rule: data from the server (post texts, authors, feed names, section figures) only
// ever reaches the page through textContent / createTextNode / setAttribute of fixed
// attribute names. Nothing here parses HTML from data. Every URL is relative, so the console
// works under a reverse proxy's path prefix.
"use strict";

(function () {
  const POLL_MS = 1500;
  const HOUR_POLL_MS = 10000;
  const MAX_SECONDS = 300;
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#0a66d8", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#5f3dc4", "#087f5b", "#e67700"];

  const $ = (id) => document.getElementById(id);

  // el("div", {class: "x"}, "text", child): children that are not nodes become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function fmtNum(v, digits = 1) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  function fmtBytes(v) {
    if (v === null || v === undefined) return "–";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return fmtNum(v, 1) + " " + units[i];
  }

  function fmtSeconds(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (v < 1) return fmtNum(v * 1000, 1) + " ms";
    return fmtNum(v, 1) + " s";
  }

  function sum(obj) {
    return Object.values(obj || {}).reduce((a, b) => a + (b || 0), 0);
  }

  // ---- Tabs -------------------------------------------------------------------------------

  function showTab() {
    const preview = location.hash === "#preview";
    $("status-page").hidden = preview;
    $("preview-page").hidden = !preview;
    $("tab-status").classList.toggle("on", !preview);
    $("tab-preview").classList.toggle("on", preview);
    if (preview && !previewStarted) startPreview();
  }

  // ---- Status -----------------------------------------------------------------------------

  // The per-second history, merged from each poll's new points.
  const seconds = { t: [], series: {} };
  let hour = null;
  let range = "minutes";
  let lastT = null;
  let lastStatus = null;

  function mergeHistory(h) {
    if (!h || !h.t || h.t.length === 0) return;
    const before = seconds.t.length;
    const names = new Set([...Object.keys(seconds.series), ...Object.keys(h.series)]);
    for (const name of names) {
      if (!seconds.series[name]) seconds.series[name] = new Array(before).fill(null);
      const incoming = h.series[name] || new Array(h.t.length).fill(null);
      seconds.series[name].push(...incoming);
    }
    seconds.t.push(...h.t);
    const drop = Math.max(0, seconds.t.length - MAX_SECONDS);
    if (drop > 0) {
      seconds.t.splice(0, drop);
      for (const name of Object.keys(seconds.series)) seconds.series[name].splice(0, drop);
    }
    lastT = seconds.t[seconds.t.length - 1];
  }

  function card(key, value, cls) {
    return el("div", { class: "card" }, el("div", { class: "k" }, key), el("div", { class: "v" + (cls ? " " + cls : "") }, value));
  }

  function renderCards(s) {
    const src = s.source || {};
    const cursor = (src.cursors || []).map((c) => fmtNum(c.cursor, 0)).join(", ") || "–";
    const ing = s.ingest || {};
    const cards = [
      card("Source", src.kind || "–"),
      card("Host", (src.hosts || []).join(", ") || "–"),
      card("Connected", src.connected ? "yes" : "no", src.connected ? "ok" : "bad"),
      card("Cursor", cursor),
      card("Lag", fmtSeconds(src.lag_seconds)),
      card("Events/s", fmtNum(sum(ing.events_per_second), 0)),
      card("Decode errors", fmtNum(sum(ing.decode_errors_total), 0)),
      card("Queue depth", fmtNum(ing.queue_depth, 0)),
    ];
    // A process that serves no feeds has no feed store (its own figures are in its section).
    if (s.store) cards.push(card("Store size", fmtBytes(s.store.size_bytes)));
    $("cards").replaceChildren(...cards);
  }

  // s.feeds is null when this process serves no feeds (skystream jetstream): no table and no
  // preview tab then. An empty list is a feed server with no feeds configured.
  function renderFeedsTable(s) {
    const serves = Array.isArray(s.feeds);
    $("feeds-block").hidden = !serves;
    $("tab-preview").hidden = !serves;
    if (!serves) return;
    if (s.feeds.length === 0) {
      $("feeds-table").tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No feeds are configured.")));
      return;
    }
    const rows = s.feeds.map((f) => el("tr", {},
      el("td", {}, f.id),
      el("td", {}, f.ranking),
      el("td", { class: "num" }, fmtNum(f.items, 0)),
      el("td", { class: "num" }, fmtNum(f.requests_per_second, 1)),
      el("td", { class: "num" }, fmtNum(f.requests_total, 0)),
      el("td", { class: "num" }, fmtSeconds(f.p99_seconds))));
    $("feeds-table").tBodies[0].replaceChildren(...rows);
  }

  // A figure's value as its unit reads: bytes scaled, a microsecond time as UTC with its age.
  function fmtFigure(f, nowMs) {
    const v = f.value;
    if (v === null || v === undefined) return "–";
    switch (f.unit) {
      case "bytes": return fmtBytes(v);
      case "time_us": {
        const ms = v / 1000;
        return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC (" + fmtSeconds(Math.max(0, nowMs - ms) / 1000) + " ago)";
      }
      case "ratio": return fmtNum(v, 2);
      default: return fmtNum(v, 0);
    }
  }

  // Extra sections (Jetstream's figures). Each row carries its figure's key and raw value in
  // data- attributes, for scripts and tests.
  function renderSections(s) {
    const parts = [];
    const nowMs = s.now_ms || Date.now();
    for (const section of s.sections || []) {
      const rows = (section.figures || []).map((f) => el("tr", { "data-key": f.key },
        el("th", {}, f.label),
        el("td", { class: "num", "data-value": f.value === null ? "" : f.value, title: f.unit === "bytes" && f.value !== null ? fmtNum(f.value, 0) + " bytes" : null }, fmtFigure(f, nowMs))));
      parts.push(el("h2", {}, section.name));
      parts.push(el("div", { class: "scroll" }, el("table", { class: "section", "data-section": section.name }, el("tbody", {}, ...rows))));
    }
    $("sections").replaceChildren(...parts);
  }

  // Draws series [{name, values}] over times t into the figure's SVG. Gaps (null) break the
  // line. The SVG keeps the number of points drawn in data-points, for tests.
  function drawChart(figureId, t, list) {
    const figure = $(figureId);
    const box = figure.querySelector("svg");
    const W = 400, H = 140, top = 12, bottom = 4;
    let max = 0;
    for (const s of list) for (const v of s.values) if (v !== null && v > max) max = v;
    if (max <= 0) max = 1;
    const t0 = t[0], t1 = t[t.length - 1];
    const span = Math.max(1, t1 - t0);
    const nodes = [];
    for (let i = 0; i <= 2; i++) {
      const y = top + (H - top - bottom) * i / 2;
      nodes.push(svg("line", { class: "grid", x1: 0, x2: W, y1: y, y2: y }));
    }
    const label = svg("text", { class: "axis", x: 2, y: 10 });
    label.textContent = fmtNum(max, max < 10 ? 2 : 0);
    nodes.push(label);
    let points = 0;
    list.forEach((s, i) => {
      let d = "";
      let pen = false;
      s.values.forEach((v, j) => {
        if (v === null || v === undefined || t[j] === undefined) { pen = false; return; }
        const x = ((t[j] - t0) / span) * W;
        const y = H - bottom - (v / max) * (H - top - bottom);
        d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1) + " ";
        pen = true;
        points++;
      });
      if (d) nodes.push(svg("path", { class: "line", d: d.trim(), stroke: COLORS[i % COLORS.length], "data-series": s.name }));
    });
    box.replaceChildren(...nodes);
    box.setAttribute("data-points", String(points));
    const legend = list.map((s, i) => {
      const last = [...s.values].reverse().find((v) => v !== null && v !== undefined);
      const swatch = el("i", {});
      swatch.style.background = COLORS[i % COLORS.length];
      return el("span", {}, swatch, s.name + " " + fmtNum(last, 2));
    });
    figure.querySelector(".legend").replaceChildren(...legend);
  }

  function renderCharts() {
    const h = range === "hour" && hour ? hour : seconds;
    const series = h.series || {};
    const t = h.t || [];
    const kinds = Object.keys(series).filter((k) => k.startsWith("events.")).sort();
    drawChart("chart-events", t, kinds.map((k) => ({ name: k.slice(7), values: series[k] })));
    drawChart("chart-errors", t, [{ name: "decode errors", values: series.decode_errors || [] }]);
    drawChart("chart-lag", t, [{ name: "lag", values: series.lag_seconds || [] }]);
    drawChart("chart-queue", t, [{ name: "queue", values: series.queue_depth || [] }]);
  }

  function setLive(ok, text) {
    const pill = $("live");
    pill.textContent = text;
    pill.className = "pill " + (ok ? "ok" : "bad");
  }

  async function pollStatus() {
    try {
      const url = "console/api/status" + (lastT !== null ? "?since=" + encodeURIComponent(lastT) : "");
      const res = await fetch(url, { cache: "no-store" });
      if (!res.ok) throw new Error("status " + res.status);
      const s = await res.json();
      lastStatus = s;
      mergeHistory(s.history);
      renderCards(s);
      renderFeedsTable(s);
      renderSections(s);
      renderCharts();
      const src = s.source || {};
      setLive(src.connected, src.connected ? "live" : "ingest not connected");
    } catch (e) {
      setLive(false, "server unreachable");
    } finally {
      setTimeout(pollStatus, POLL_MS);
    }
  }

  async function pollHour() {
    try {
      const res = await fetch("console/api/history", { cache: "no-store" });
      if (res.ok) hour = await res.json();
      if (range === "hour") renderCharts();
    } catch (e) {
      // The status poll reports the server as unreachable.
    } finally {
      setTimeout(pollHour, HOUR_POLL_MS);
    }
  }

  // ---- Feed preview -----------------------------------------------------------------------

  let previewStarted = false;
  let feeds = [];

  function chip(text) {
    return el("span", { class: "chip" }, text);
  }

  // One post. Texts go in with textContent; links in them stay text (nothing is followed or
  // fetched); dir="auto" and CSS isolation keep a right-to-left override inside its box.
  function renderItem(item) {
    const m = item.match || {};
    const why = el("div", { class: "why " + (m.verdict || "") }, m.summary || "");
    if ((m.reasons || []).length > 1) {
      why.append(el("ul", {}, ...m.reasons.map((r) => el("li", {}, r.filter + ": " + r.detail))));
    }
    const meta = el("div", { class: "meta" },
      el("bdi", { class: "author" }, item.author),
      el("span", {}, item.created_ms ? new Date(item.created_ms).toLocaleString() : ""),
      el("span", {}, "♥ " + fmtNum(item.likes, 0)),
      el("span", {}, "⟳ " + fmtNum(item.reposts, 0)),
      item.score !== null && item.score !== undefined ? el("span", { class: "score" }, "score " + fmtNum(item.score, 3)) : null,
      item.reply ? el("span", {}, "reply") : null);
    const chips = el("div", { class: "chips" },
      ...(item.langs || []).map((l) => chip("lang " + l)),
      item.embed && item.embed !== "none" ? chip("embed " + item.embed) : null,
      ...(item.hashtags || []).map((h) => chip("#" + h)),
      ...(item.in_feeds || []).map((f) => chip("in " + f)));
    const reposted = item.repost
      ? el("div", { class: "reposted" }, "⟳ reposted by ", el("bdi", {}, item.reposter || ""))
      : null;
    return el("li", { class: "item" },
      reposted,
      meta,
      el("p", { class: "text", dir: "auto" }, item.text || ""),
      chips,
      why,
      el("div", { class: "uri" }, item.uri));
  }

  function showItems(items, summary, isError) {
    $("items").replaceChildren(...items.map(renderItem));
    const p = $("preview-summary");
    p.textContent = summary;
    p.classList.toggle("error", !!isError);
  }

  function currentFeed() {
    return feeds.find((f) => f.id === $("feed-select").value);
  }

  async function loadFeedItems() {
    const feed = currentFeed();
    if (!feed) { showItems([], "No feeds are configured.", false); return; }
    const about = [feed.ranking, ...(feed.filters.languages.length ? ["languages " + feed.filters.languages.join(", ")] : []),
      ...(feed.filters.keywords.length ? ["keywords " + feed.filters.keywords.join(", ")] : []),
      ...(feed.filters.hashtags.length ? ["hashtags " + feed.filters.hashtags.join(", ")] : [])];
    $("feed-about").textContent = about.join(" · ");
    try {
      const res = await fetch("console/api/feeds/" + encodeURIComponent(feed.id) + "/items?limit=30", { cache: "no-store" });
      const body = await res.json();
      if (!res.ok) { showItems([], body.error || "error " + res.status, true); return; }
      showItems(body.items || [], (body.items || []).length + " newest items of " + feed.id + " as getFeedSkeleton serves them (" + body.ranking + ")", false);
    } catch (e) {
      showItems([], "The server did not answer.", true);
    }
  }

  async function runDraft(event) {
    event.preventDefault();
    const q = new URLSearchParams({
      keywords: $("draft-keywords").value,
      languages: $("draft-languages").value,
      hashtags: $("draft-hashtags").value,
      limit: "50",
    });
    $("preview-summary").textContent = "Evaluating the draft…";
    try {
      const res = await fetch("console/api/draft?" + q.toString(), { cache: "no-store" });
      const body = await res.json();
      if (!res.ok) { showItems([], "Draft refused: " + (body.error || res.status), true); return; }
      const partial = body.complete ? "" : " (stopped after " + fmtNum(body.scanned, 0) + " posts: time budget)";
      showItems(body.items || [], "Draft: " + fmtNum(body.matched, 0) + " of " + fmtNum(body.scanned, 0) +
        " recent posts match" + partial + "; showing the newest " + (body.items || []).length + ".", false);
    } catch (e) {
      showItems([], "The server did not answer.", true);
    }
  }

  async function startPreview() {
    previewStarted = true;
    try {
      const res = await fetch("console/api/feeds", { cache: "no-store" });
      const body = await res.json();
      if (!res.ok) {
        // A process that serves no feeds says so; there is nothing to pick or try.
        $("preview-toolbar").hidden = true;
        $("draft-form").hidden = true;
        showItems([], body.error || "error " + res.status, false);
        return;
      }
      feeds = body.feeds || [];
      $("feed-select").replaceChildren(...feeds.map((f) => el("option", { value: f.id }, f.display_name + " (" + f.id + ")")));
      await loadFeedItems();
    } catch (e) {
      showItems([], "The server did not answer.", true);
    }
  }

  // ---- Wiring -----------------------------------------------------------------------------

  function init() {
    window.addEventListener("hashchange", showTab);
    for (const b of document.querySelectorAll(".range button")) {
      b.addEventListener("click", () => {
        range = b.getAttribute("data-range");
        for (const o of document.querySelectorAll(".range button")) o.classList.toggle("on", o === b);
        renderCharts();
      });
    }
    $("feed-select").addEventListener("change", loadFeedItems);
    $("refresh").addEventListener("click", loadFeedItems);
    $("draft-form").addEventListener("submit", runDraft);
    $("draft-clear").addEventListener("click", loadFeedItems);
    showTab();
    pollStatus();
    pollHour();
  }

  init();
})();
