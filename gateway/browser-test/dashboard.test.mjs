// Opens the gateway dashboard in Debian's headless Chromium, adds a video,
// clicks "Like" and waits for the video's 1-minute count to go from 0 to 1
// (through Kafka and a real worker); checks that the recently counted list
// agrees with the cards, that the load test says what it does, runs and
// gives the per-video rates back, and that a 390 px wide screen cuts no
// count or label; fails on any failed request or console error. Saves a
// screenshot of the wide and of the narrow page.
//
// Environment:
//   DASHBOARD_URL   gateway base URL (required), e.g. http://127.0.0.1:8090
//   VIDEO_ID        a video id no one else uses (required)
//   SCREENSHOT      where to write the PNG (required; the narrow one gets "-narrow")
//   DEMO_VIDEOS     the generator's videos at start, comma-separated (required)
//   DEMO_RATE       their likes per minute (required)
//   WORKERS_READY   expected text of the workers pill, e.g. "1/1 ready" (optional)
//   CHROMIUM        browser binary (default /usr/bin/chromium)
// Exits 0 on success; on failure prints why, saves the screenshot anyway, exits 1.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const need = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
};
const url = need("DASHBOARD_URL");
const video = need("VIDEO_ID");
const screenshot = need("SCREENSHOT");
const demoVideos = need("DEMO_VIDEOS").split(",");
const demoRate = Number(need("DEMO_RATE"));
const narrowScreenshot = screenshot.replace(/\.png$/, "") + "-narrow.png";
const workersReady = process.env.WORKERS_READY;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const step = (text) => console.log(`[browser] ${text}`);
const userDataDir = mkdtempSync(join(tmpdir(), "videocounter-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 860 },
  deviceScaleFactor: 1,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

let failed = null;
const problems = []; // failed requests and console errors: the page must have none
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (m) => {
  if (m.type() === "error") {
    console.log(`[page] ${m.text()}`);
    problems.push(`console error: ${m.text()}`);
  }
});
page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`); });
page.on("pageerror", (e) => { failed ??= `page error: ${e.message}`; });

const api = (method, path, body) => page.evaluate(async ([method, path, body]) => {
  const init = { method, headers: body ? { "content-type": "application/json" } : {} };
  if (body) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  return res.json();
}, [method, path, body]);

/** Every watched video in the recently counted list shows its card's 1′ count. */
async function listAgreesWithCards() {
  return page.evaluate(() => {
    const rows = [];
    for (const item of document.querySelectorAll("#known-list .known-item")) {
      const card = [...document.querySelectorAll("#cards .card")].find((c) => c.dataset.video === item.dataset.video);
      if (!card) continue;
      const cardCount = card.querySelector('[data-window="1min"] .value').dataset.count;
      rows.push({ video: item.dataset.video, list: item.querySelector(".known-count").dataset.count, card: cardCount });
    }
    return rows;
  });
}

try {
  step(`open ${url}`);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.locator("#status-kafka[data-state='ok']").waitFor({ timeout: 30_000 });
  step("Kafka pill says reachable");
  if (workersReady) {
    await page.locator("#status-workers b", { hasText: workersReady }).waitFor({ timeout: 60_000 });
    step(`workers pill says ${workersReady}`);
  }

  await page.fill("#add-input", video);
  await page.click("#add-form button[type=submit]");
  const card = page.locator(`.card[data-video="${video}"]`);
  await card.waitFor();
  const oneMinute = card.locator('[data-window="1min"] .value');
  const before = await oneMinute.textContent();
  if (before !== "0") throw new Error(`a fresh video's 1′ count should be 0, it is ${before}`);
  step(`card for ${video} shows 0 likes in its 1′ window`);
  await page.locator("#status-feed[data-state='ok']").waitFor({ timeout: 15_000 });

  // A like sent in a window's last seconds may only be counted after the
  // window rolled over; the current-window display would then show 0 again.
  const msIntoMinute = await page.evaluate(() => Date.now() % 60000);
  if (msIntoMinute > 45_000) {
    const wait = 61_000 - msIntoMinute;
    step(`waiting ${wait} ms for the next minute to start`);
    await page.waitForTimeout(wait);
  }
  await card.locator("button.like").click();
  step("clicked Like");
  await card.locator('[data-window="1min"] .value[data-count="1"]').waitFor({ timeout: 45_000 });
  step("1′ count went from 0 to 1");
  for (const w of ["5min", "10min"]) {
    const v = await card.locator(`[data-window="${w}"] .value`).getAttribute("data-count");
    if (v !== "1") throw new Error(`after one like the ${w} count should be 1, it is ${v}`);
  }
  step("5′ and 10′ counts are 1 too");

  // The recently counted list comes from the same feed as the cards: the
  // clicked video shows 1 there too, and the generated videos (counting
  // ~every second) never show another number than their cards.
  await page.locator(`#known-list .known-item[data-video="${video}"] .known-count[data-count="1"]`)
    .waitFor({ timeout: 15_000 });
  let compared = 0;
  for (let i = 0; i < 10; i++) {
    for (const row of await listAgreesWithCards()) {
      if (row.list !== row.card) throw new Error(`${row.video}: the list says ${row.list}, its card ${row.card}`);
      compared++;
    }
    await page.waitForTimeout(500);
  }
  if (compared < 10) throw new Error(`only ${compared} list rows had a card to compare with`);
  step(`recently counted agrees with the cards (${compared} comparisons over 5 s)`);

  // The load test: says what it does before it runs, keeps the cards' rates
  // on show while it runs, and gives them back when stopped.
  for (const v of demoVideos) {
    const value = await page.locator(`.card[data-video="${v}"] .rate-input`).inputValue();
    if (Number(value) !== demoRate) throw new Error(`${v}'s rate shows ${value}, expected ${demoRate}`);
  }
  await page.click(".spread summary");
  const note = await page.locator("#spread-note").textContent();
  if (!note.includes(`${demoVideos.length} videos with a rate`) || !note.includes("Stop load test puts their rates back")) {
    throw new Error(`the load test does not say what it will do: ${note}`);
  }
  step(`before it runs, the load test says: ${note}`);
  await page.fill('#spread-form input[name="videos"]', "50");
  await page.fill('#spread-form input[name="rate"]', "6");
  await page.click("#spread-form button[type=submit]");
  await page.locator("#gen-toggle", { hasText: "Stop load test" }).waitFor({ timeout: 10_000 });
  if (await page.locator(".spread").evaluate((d) => d.open)) throw new Error("the load test form stayed open");
  let g = await api("GET", "/generator");
  if (g.spec.mode !== "spread" || g.videos !== 50 || !g.running) throw new Error(`generator: ${JSON.stringify(g)}`);
  for (const v of demoVideos) {
    const rate = page.locator(`.card[data-video="${v}"] .rate-input`);
    if (Number(await rate.inputValue()) !== demoRate || !(await rate.isDisabled())) {
      throw new Error(`${v}'s rate is not shown as paused during the load test`);
    }
  }
  step("load test running over 50 videos; the form closed; the cards show their rates as paused");
  await page.click("#gen-toggle");
  await page.locator("#gen-toggle", { hasText: /^Stop$/ }).waitFor({ timeout: 10_000 });
  g = await api("GET", "/generator");
  const want = Object.fromEntries(demoVideos.map((v) => [v, demoRate]));
  if (g.spec.mode !== "per_video" || JSON.stringify(g.spec.rates) !== JSON.stringify(want) || !g.running) {
    throw new Error(`the per-video rates were not restored: ${JSON.stringify(g)}`);
  }
  for (const v of demoVideos) {
    const rate = page.locator(`.card[data-video="${v}"] .rate-input`);
    if (Number(await rate.inputValue()) !== demoRate || (await rate.isDisabled())) {
      throw new Error(`${v}'s rate input was not given back`);
    }
  }
  step("stopping the load test restored the per-video rates and the running generator");
  await page.waitForTimeout(1_500); // let the other cards' live updates land for the picture
  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot saved to ${screenshot}`);

  // A phone-sized screen: nothing wider than the screen, no count or label cut.
  // Reduced motion: a count that just changed is drawn scaled up for 0.45 s, which
  // is motion, not layout; the live feed keeps changing counts during the check.
  await page.emulateMedia({ reducedMotion: "reduce" });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(1_200);
  const cut = await page.evaluate(() => {
    const found = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width) found.push(`the page is ${document.documentElement.scrollWidth} px wide`);
    for (const el of document.querySelectorAll(".window .value, .window .caption, .window .caption *, .known-count, .gen-summary, .chart-axis span, .pill")) {
      if (el.scrollWidth > el.clientWidth + 1) found.push(`${el.className} "${el.textContent}" is cut (${el.scrollWidth} > ${el.clientWidth})`);
      const box = el.getBoundingClientRect();
      if (box.right > width + 0.5) found.push(`${el.className} "${el.textContent}" ends at ${box.right} px`);
    }
    for (const cell of document.querySelectorAll(".window")) {
      const c = cell.getBoundingClientRect();
      for (const child of cell.querySelectorAll(".value, .caption")) {
        const b = child.getBoundingClientRect();
        if (b.right > c.right + 0.5 || b.left < c.left - 0.5) found.push(`"${child.textContent}" sticks out of its window`);
      }
    }
    return found;
  });
  if (cut.length) throw new Error(`at 390 px: ${cut.join("; ")}`);
  step("at 390 px wide every count and label is whole");
  await page.screenshot({ path: narrowScreenshot, fullPage: true });
  step(`narrow screenshot saved to ${narrowScreenshot}`);
  if (problems.length) throw new Error(`the page had failed requests or errors: ${problems.join("; ")}`);
  step("no failed request and no console error");
} catch (e) {
  failed ??= e.message;
  await page.screenshot({ path: screenshot, fullPage: true }).catch((e) => console.error(`screenshot: ${e.message}`));
  step(`screenshot saved to ${screenshot}`);
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

if (failed) {
  console.error(`[browser] FAILED: ${failed}`);
  process.exit(1);
}
step("passed");
