// Opens echo-server's WebSocket test page in Debian's Chromium (headless,
// through Playwright) once per run asked for, and prints what it saw as
// one JSON array (one object a run) for tests/interop/browser.rs to judge:
//
//   node check.mjs RUNS.json
//
// RUNS.json is an array of runs:
//   { "url": "...", "screenshot": "out.png",
//     "width": 900, "height": 700, "scale": 1,   // viewport, devicePixelRatio
//     "again": true,                            // click "Run again" after it
//     "resize": { "width": 600, "height": 700 } // then resize, look again
//   }
// and each run reports:
//   status, state      the page's #status text and data-state at the end
//   sent               the byte length of every WebSocket message it sent
//   chartVsTable       every moment the chart's "max" label and the table's
//                      slowest were both on screen and differed
//   compared           how many such moments were compared
//   cells              each figure of the table and its label: its text, the
//                      height of its text and its single line height
//   overflow           the page is wider than the viewport (scrolls sideways)
//   canvas             the chart's backing size, CSS size and the ratio
//   afterClick         the page right after "Run again" was clicked
//   again              status and state when the second run ended
//   resized            the canvas after the resize
// Exit status 0 when every run finished (done or failed), 2 when the
// browser could not get there at all.
//
// CHROMIUM overrides the browser's path (default /usr/bin/chromium).
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [runsFile] = process.argv.slice(2);
if (!runsFile) {
  console.error("usage: node check.mjs RUNS.json");
  process.exit(2);
}
const runs = JSON.parse(readFileSync(runsFile, "utf8"));

// Before the page's own script: watch what the chart writes as its "max"
// label, and compare it with the table's slowest whenever either changes.
function watchChart() {
  const fillText = CanvasRenderingContext2D.prototype.fillText;
  const clearRect = CanvasRenderingContext2D.prototype.clearRect;
  const seen = { chart: null, compared: 0, differ: [] };
  window.__echoesCheck = seen;
  const compare = () => {
    const max = document.getElementById("max");
    const table = max ? max.textContent.trim() : "–";
    if (seen.chart === null && table === "–") return;
    seen.compared += 1;
    if (seen.chart !== table && seen.differ.length < 20) {
      seen.differ.push({ chart: seen.chart, table });
    }
  };
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    if (this.canvas.id === "chart" && String(text).startsWith("max ")) {
      seen.chart = String(text).slice(4).trim();
      queueMicrotask(compare);
    }
    return fillText.call(this, text, ...rest);
  };
  CanvasRenderingContext2D.prototype.clearRect = function (...args) {
    if (this.canvas.id === "chart") seen.chart = null;
    return clearRect.call(this, ...args);
  };
  document.addEventListener("DOMContentLoaded", () => {
    const max = document.getElementById("max");
    if (max) {
      new MutationObserver(() => queueMicrotask(compare)).observe(max, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    }
  });
}

// In the page: the table's figures and the chart, as they are now.
function measure() {
  const cells = [];
  for (const id of ["checked", "last", "min", "p50", "p90", "max"]) {
    const value = document.getElementById(id);
    for (const el of [value, value && value.previousElementSibling]) {
      if (!el) continue;
      const range = document.createRange();
      range.selectNodeContents(el);
      const style = getComputedStyle(el);
      let line = parseFloat(style.lineHeight);
      if (Number.isNaN(line)) line = parseFloat(style.fontSize) * 1.2;
      cells.push({
        id: el === value ? id : id + " label",
        text: el.textContent,
        height: range.getBoundingClientRect().height,
        lines: new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top))).size,
        lineHeight: line,
      });
    }
  }
  const c = document.getElementById("chart");
  const root = document.scrollingElement;
  return {
    cells,
    overflow: root.scrollWidth > root.clientWidth + 1,
    canvas: {
      width: c.width,
      height: c.height,
      cssWidth: c.clientWidth,
      cssHeight: c.clientHeight,
      dpr: window.devicePixelRatio,
    },
  };
}

// In the page: click "Run again" and look at once, before any event.
function clickAgain() {
  const c = document.getElementById("chart");
  document.getElementById("again").click();
  const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let inked = 0;
  for (let k = 3; k < px.length; k += 4) if (px[k] !== 0) inked += 1;
  const s = document.getElementById("status");
  return {
    status: s.textContent.trim(),
    state: s.dataset.state,
    checked: document.getElementById("checked").textContent.trim(),
    max: document.getElementById("max").textContent.trim(),
    chartInkedPixels: inked,
  };
}

const finished = () =>
  ["done", "failed"].includes(document.getElementById("status").dataset.state);

async function status(page) {
  return {
    status: (await page.textContent("#status")).trim(),
    state: await page.getAttribute("#status", "data-state"),
  };
}

async function check(browser, run) {
  // The https:// server's certificate is self-signed.
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: run.width || 900, height: run.height || 700 },
    deviceScaleFactor: run.scale || 1,
  });
  try {
    const page = await context.newPage();
    page.on("console", (m) => console.error(`console.${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    const sent = [];
    page.on("websocket", (ws) =>
      ws.on("framesent", ({ payload }) =>
        sent.push(typeof payload === "string" ? Buffer.byteLength(payload, "utf8") : payload.length),
      ),
    );
    await page.addInitScript(watchChart);
    const response = await page.goto(run.url, { timeout: 30000 });
    if (!response.ok()) throw new Error(`the page answered ${response.status()}`);
    await page.waitForFunction(finished, null, { timeout: 60000 });
    const report = { ...(await status(page)), ...(await page.evaluate(measure)) };
    await page.screenshot({ path: run.screenshot, fullPage: true });
    report.sent = sent.slice();
    if (run.again) {
      report.afterClick = await page.evaluate(clickAgain);
      await page.waitForFunction(finished, null, { timeout: 60000 });
      report.again = await status(page);
    }
    if (run.resize) {
      await page.setViewportSize(run.resize);
      // A resize event, then the page's redraw on the next frame or two.
      await page.evaluate(
        () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))),
      );
      report.resized = (await page.evaluate(measure)).canvas;
    }
    const seen = await page.evaluate(() => window.__echoesCheck);
    report.chartVsTable = seen.differ;
    report.compared = seen.compared;
    return report;
  } finally {
    await context.close();
  }
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
  const reports = [];
  for (const run of runs) reports.push(await check(browser, run));
  console.log(JSON.stringify(reports));
  code = 0;
} catch (e) {
  console.error(`browser check failed: ${e.message}`);
} finally {
  await browser.close();
}
process.exit(code);
