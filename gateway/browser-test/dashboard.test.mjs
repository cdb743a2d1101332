// Opens the gateway dashboard in Debian's headless Chromium, adds a video,
// clicks "Like" and waits for the video's 1-minute count to go from 0 to 1
// (through Kafka and a real worker), then saves a screenshot.
//
// Environment:
//   DASHBOARD_URL   gateway base URL (required), e.g. http://127.0.0.1:8090
//   VIDEO_ID        a video id no one else uses (required)
//   SCREENSHOT      where to write the PNG (required)
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
const page = context.pages()[0] ?? (await context.newPage());
page.on("console", (m) => { if (m.type() === "error") console.log(`[page] ${m.text()}`); });
page.on("pageerror", (e) => { failed ??= `page error: ${e.message}`; });

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
  await page.waitForTimeout(1_500); // let the other cards' live updates land for the picture
} catch (e) {
  failed ??= e.message;
} finally {
  await page.screenshot({ path: screenshot, fullPage: true }).catch((e) => console.error(`screenshot: ${e.message}`));
  step(`screenshot saved to ${screenshot}`);
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

if (failed) {
  console.error(`[browser] FAILED: ${failed}`);
  process.exit(1);
}
step("passed");
