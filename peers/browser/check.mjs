// The web console in a real browser: playwright-core driving the system Chromium against a
// `skystream serve --source simulate:…` or a `skystream jetstream --source simulate:…` (started
// by crates/cli/tests/console_browser.rs).
//
//   node check.mjs BASE_URL OUT_DIR [serve|jetstream]     (CHROMIUM=/usr/bin/chromium by default)
//
// Both: the status page loads and its charts draw with data, and nothing is fetched from
// elsewhere. serve (the default): the preview shows a feed's items, a draft filter changes the
// list, and hostile post texts (script tags, markup, an RTL override, a huge word) render as
// inert text. jetstream: there is no feeds table or preview tab (the preview says why), and the
// Jetstream section shows the subscribers the test connected (one zstd with a filter, one JSON
// taking everything) and the bytes sent to them. Writes a screenshot of each page to OUT_DIR
// and prints one JSON line per screenshot ({"screenshot": path}), then {"ok": true}. Any
// failure exits non-zero with the reason on stderr.
import { chromium } from "playwright-core";
import path from "node:path";
import fs from "node:fs";

const [base, outDir, mode = "serve"] = process.argv.slice(2);
if (!base || !outDir || !["serve", "jetstream"].includes(mode)) {
  console.error("usage: node check.mjs BASE_URL OUT_DIR [serve|jetstream]");
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function shot(page, name) {
  const file = path.join(outDir, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(JSON.stringify({ screenshot: file }));
}

const HOSTILE = [
  { text: "<script>window.__pwned = 1</script>", note: "script" },
  { text: "<img src=x onerror=\"window.__pwned = 2\">", note: "img" },
  { text: "\u202Egnp.exe\u202C <b>bold?</b> click javascript:window.__pwned=3 https://example.com/x", note: "rtl" },
  { text: "A".repeat(3000), note: "huge" },
];

function hostileItems() {
  return HOSTILE.map((h, i) => ({
    uri: `at://did:plc:hostile/app.bsky.feed.post/${i}`,
    author: "did:plc:\u202Ehostile",
    text: h.text,
    langs: ["nb"],
    hashtags: ["<i>tag</i>"],
    embed: "<svg onload=alert(1)>",
    reply: false,
    likes: 1,
    reposts: 0,
    created_ms: Date.now(),
    match: { verdict: "yes", summary: "matched: <b>languages</b>", reasons: [{ filter: "languages", detail: "<u>nb</u>" }, { filter: "x", detail: "<script>window.__pwned=4</script>" }] },
    score: null,
    features: "window",
  }));
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Root in a container has no user namespaces for Chromium's sandbox.
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  // A failed fetch is logged as a console error too; those are judged by the responses below.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push("console error: " + m.text()); });
  // The error responses expected: the refused draft (serve), and the feed list of a process
  // that serves no feeds (jetstream), which the preview shows as its note.
  const expected = (r) => (r.status() === 400 && r.url().includes("console/api/draft")) ||
    (mode === "jetstream" && r.status() === 404 && r.url().endsWith("console/api/feeds"));
  page.on("response", (r) => { if (r.status() >= 400 && !expected(r)) problems.push(r.status() + " from " + r.url()); });
  // Anything but the server under test would be an outside asset.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });

  // ---- Status ----
  await page.goto(base, { waitUntil: "load" });
  await page.waitForFunction(() => {
    const svg = document.querySelector("#chart-events svg");
    const line = svg && svg.querySelector("path.line");
    const commands = line ? (line.getAttribute("d") || "").split(/[ML]/).length - 1 : 0;
    return Number(svg.getAttribute("data-points")) >= 10 && commands >= 5;
  }, null, { timeout: 60000 });
  const charts = await page.evaluate(() => [...document.querySelectorAll(".chart svg")].map((s) => ({
    points: Number(s.getAttribute("data-points")),
    paths: s.querySelectorAll("path.line").length,
    firstPathCommands: (s.querySelector("path.line")?.getAttribute("d") || "").split(/[ML]/).length - 1,
  })));
  assert(charts.length === 4, "four charts: " + JSON.stringify(charts));
  assert(charts[0].firstPathCommands >= 5, "the events chart draws a line: " + JSON.stringify(charts));
  if (mode === "serve") {
    await page.waitForFunction(() => document.querySelectorAll("#feeds-table tbody tr").length > 0, null, { timeout: 20000 });
  }
  const cards = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll("#cards .card")].map((c) => [c.querySelector(".k").textContent, c.querySelector(".v").textContent])));
  assert(cards.Source === "simulate", "source card: " + JSON.stringify(cards));
  assert(cards.Connected === "yes", "connected card: " + JSON.stringify(cards));
  assert(cards["Events/s"] !== "–" && cards["Events/s"] !== "0", "events/s card: " + JSON.stringify(cards));
  console.log(JSON.stringify({ charts, cards }));
  if (mode === "jetstream") {
    await checkJetstream(page, cards);
  } else {
    await shot(page, "console-status.png");
    await checkFeeds(page);
  }

  assert(foreign.length === 0, "requests left the server: " + foreign.join(", "));
  assert(problems.length === 0, "the page reported errors: " + problems.join("; "));
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  failed = true;
  console.error("browser check failed: " + (e && e.stack ? e.stack : e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

// The Jetstream section's figures as {key: number or null}, read from the rows' data-value.
async function jetstreamFigures(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('table[data-section="Jetstream"] tr[data-key]')].map((r) => {
    const v = r.querySelector("td").getAttribute("data-value");
    return [r.getAttribute("data-key"), v === "" ? null : Number(v)];
  })));
}

async function checkJetstream(page, cards) {
  assert(!("Store size" in cards), "no feed store card: " + JSON.stringify(cards));
  // The test connected its subscribers before opening the page; wait for bytes to both.
  await page.waitForFunction(() => {
    const value = (key) => Number(document.querySelector(`table[data-section="Jetstream"] tr[data-key="${key}"] td`)?.getAttribute("data-value") || 0);
    return value("subscribers") >= 2 && value("bytes_sent_zstd") > 0 && value("bytes_sent_json") > 0;
  }, null, { timeout: 30000 });
  const figures = await jetstreamFigures(page);
  console.log(JSON.stringify({ jetstream: figures }));
  assert(figures.subscribers === 2, "two subscribers: " + JSON.stringify(figures));
  assert(figures.subscribers_zstd === 1 && figures.subscribers_json === 1, "one subscriber per encoding: " + JSON.stringify(figures));
  assert(figures.subscribers_filtered === 1 && figures.subscribers_all === 1, "one filtered, one taking everything: " + JSON.stringify(figures));
  assert(figures.bytes_sent === figures.bytes_sent_json + figures.bytes_sent_zstd, "bytes sent add up by encoding: " + JSON.stringify(figures));
  assert(figures.log_size_bytes > 0 && figures.log_newest_time_us >= figures.log_oldest_time_us && figures.log_oldest_time_us > 0, "the replay log's figures: " + JSON.stringify(figures));
  const shown = await page.evaluate(() => ({
    feedsHidden: document.querySelector("#feeds-block").hidden,
    previewTabHidden: document.querySelector("#tab-preview").hidden,
    sizeText: document.querySelector('table[data-section="Jetstream"] tr[data-key="log_size_bytes"] td').textContent,
    newestText: document.querySelector('table[data-section="Jetstream"] tr[data-key="log_newest_time_us"] td').textContent,
  }));
  assert(shown.feedsHidden && shown.previewTabHidden, "no feeds table or preview tab: " + JSON.stringify(shown));
  assert(/ (KB|MB|GB)$/.test(shown.sizeText), "the log size reads in bytes' units: " + shown.sizeText);
  assert(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(.+ ago\)$/.test(shown.newestText), "the newest event reads as a time: " + shown.newestText);
  await shot(page, "jetstream-status.png");

  // A bookmarked #preview says why there is nothing to preview.
  await page.goto(base + "#preview", { waitUntil: "load" });
  await page.waitForFunction(() => /serves no feeds/.test(document.querySelector("#preview-summary").textContent), null, { timeout: 20000 });
  const preview = await page.evaluate(() => ({
    toolbarHidden: document.querySelector("#preview-toolbar").hidden,
    draftHidden: document.querySelector("#draft-form").hidden,
    items: document.querySelectorAll("#items li").length,
  }));
  assert(preview.toolbarHidden && preview.draftHidden && preview.items === 0, "the preview shows only its note: " + JSON.stringify(preview));
  await shot(page, "jetstream-preview-note.png");
}

async function checkFeeds(page) {
  // ---- Preview ----
  await page.click("#tab-preview");
  await page.waitForSelector("#preview-page:not([hidden])");
  // The simulator's Bokmål posts reach the first feed within seconds; refresh until they do.
  const deadline = Date.now() + 45000;
  while ((await page.locator("#items li.item").count()) === 0) {
    assert(Date.now() < deadline, "the preview never showed items: " + (await page.textContent("#preview-summary")));
    await page.waitForTimeout(1000);
    await page.click("#refresh");
    await page.waitForTimeout(500);
  }
  const feedUris = await page.$$eval("#items li.item .uri", (els) => els.map((e) => e.textContent));
  const why = await page.textContent("#items li.item .why");
  assert(/matched/.test(why), "each item says why it matched: " + why);
  console.log(JSON.stringify({ feed_items: feedUris.length, why }));
  await shot(page, "console-preview.png");

  // ---- Draft filter ----
  await page.fill("#draft-keywords", "Bergen");
  await page.click("#draft-run");
  await page.waitForFunction(() => /^Draft: /.test(document.querySelector("#preview-summary").textContent), null, { timeout: 20000 });
  const draft = await page.$$eval("#items li.item", (els) => els.map((e) => ({
    uri: e.querySelector(".uri").textContent,
    text: e.querySelector(".text").textContent,
    why: e.querySelector(".why").textContent,
  })));
  assert(draft.length > 0, "the draft matched recent posts: " + (await page.textContent("#preview-summary")));
  assert(draft.every((d) => /bergen/i.test(d.text) && /keywords/.test(d.why)), "every draft item has the keyword: " + JSON.stringify(draft.slice(0, 3)));
  assert(JSON.stringify(draft.map((d) => d.uri)) !== JSON.stringify(feedUris), "the draft changed the list");
  console.log(JSON.stringify({ draft_items: draft.length, summary: await page.textContent("#preview-summary") }));
  await shot(page, "console-draft.png");
  await page.fill("#draft-keywords", "zzqxnothingmatchesthis");
  await page.click("#draft-run");
  await page.waitForFunction(() => /^Draft: 0 of/.test(document.querySelector("#preview-summary").textContent), null, { timeout: 20000 });
  assert((await page.locator("#items li.item").count()) === 0, "a draft nothing matches empties the list");
  await page.fill("#draft-languages", "not a language");
  await page.click("#draft-run");
  await page.waitForFunction(() => /^Draft refused: languages/.test(document.querySelector("#preview-summary").textContent), null, { timeout: 20000 });

  // ---- Hostile texts ----
  // The server's answer is replaced with hostile posts, so the page's own rendering path is
  // what is tested.
  await page.route("**/console/api/feeds/*/items*", (route) => route.fulfill({
    status: 200,
    contentType: "application/json",
    body: JSON.stringify({ feed: "x", ranking: "chronological", items: hostileItems() }),
  }));
  await page.click("#refresh");
  await page.waitForFunction((n) => document.querySelectorAll("#items li.item").length === n, HOSTILE.length, { timeout: 20000 });
  await page.waitForTimeout(300);
  const hostile = await page.evaluate(() => {
    const items = document.querySelector("#items");
    const texts = [...items.querySelectorAll(".text")];
    return {
      pwned: window.__pwned,
      elements: [...items.querySelectorAll("script, img, svg, b, i, u, a, iframe")].length,
      firstText: texts[0].textContent,
      secondText: texts[1].textContent,
      bidi: getComputedStyle(texts[2]).unicodeBidi,
      wrap: getComputedStyle(texts[3]).overflowWrap,
      hugeFits: texts[3].scrollWidth <= texts[3].clientWidth + 1,
      pageFits: document.documentElement.scrollWidth <= window.innerWidth,
      reasons: items.querySelector(".why").textContent,
    };
  });
  console.log(JSON.stringify({ hostile }));
  assert(hostile.pwned === undefined, "a hostile text ran script");
  assert(hostile.elements === 0, "hostile markup became elements");
  assert(hostile.firstText === HOSTILE[0].text && hostile.secondText === HOSTILE[1].text, "hostile texts show as text");
  assert(hostile.bidi === "isolate", "post text isolates its direction: " + hostile.bidi);
  assert(hostile.wrap === "anywhere" && hostile.hugeFits && hostile.pageFits, "a huge word wraps inside its box");
  assert(hostile.reasons.includes("<script>"), "reasons show as text");
  await shot(page, "console-hostile.png");
  await page.unroute("**/console/api/feeds/*/items*");
}
