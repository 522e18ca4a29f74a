// Opens echo-server's WebSocket test page in Debian's Chromium (headless,
// through Playwright), waits for it to finish, takes a screenshot, and
// prints the page's final status line, e.g. "100 of 100 echoes checked".
// Exit status 0 when the page says it is done, 1 when it failed, 2 when
// the browser could not get there at all.
//
//   node check.mjs URL SCREENSHOT.png
//
// CHROMIUM overrides the browser's path (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node check.mjs URL SCREENSHOT.png");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
  ],
});
let code = 2;
try {
  // The https:// server's certificate is self-signed.
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 900, height: 700 },
  });
  const page = await context.newPage();
  page.on("console", (m) => console.error(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  const response = await page.goto(url, { timeout: 30000 });
  if (!response.ok()) throw new Error(`the page answered ${response.status()}`);
  await page.waitForFunction(
    () => ["done", "failed"].includes(document.getElementById("status").dataset.state),
    null,
    { timeout: 60000 },
  );
  const status = (await page.textContent("#status")).trim();
  const state = await page.getAttribute("#status", "data-state");
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(status);
  code = state === "done" ? 0 : 1;
} catch (e) {
  console.error(`browser check failed: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(code);
