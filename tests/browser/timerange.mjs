// The range picker, the charts and the top talkers in headless Chromium. Run
// by tests/browser.rs, which stores "alpha"'s packets as 3 hours old and
// "beta"'s as new. Environment:
//   DASHBOARD_URL    http://127.0.0.1:PORT/
//   RECENT_PACKETS   packets stored in the last hour (beta's)
//   ALL_PACKETS      packets stored in the last 6 hours (everyone's)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
import { env, launch, step } from "./common.mjs";

const url = env("DASHBOARD_URL");
const recent = Number(env("RECENT_PACKETS"));
const all = Number(env("ALL_PACKETS"));

/** Every text of SVG `selector` lies inside its viewBox (nothing cut off). */
async function textsInside(page, selector) {
  const outside = await page.$eval(selector, (svg) => {
    const vb = svg.viewBox.baseVal;
    return Array.from(svg.querySelectorAll("text"))
      .map((t) => ({ text: t.textContent, box: t.getBBox() }))
      .filter(({ box }) => box.x < vb.x - 0.5 || box.x + box.width > vb.x + vb.width + 0.5
        || box.y < vb.y - 0.5 || box.y + box.height > vb.y + vb.height + 0.5)
      .map(({ text, box }) => `${text} at x ${box.x.toFixed(1)}..${(box.x + box.width).toFixed(1)}`);
  });
  if (outside.length > 0) throw new Error(`${selector}: labels cut off: ${outside.join("; ")}`);
}

/** Waits until the packet table shows `want` rows, every one from `client`. */
async function tableOf(page, want, client) {
  await page.waitForFunction(([n, client]) => {
    const cells = Array.from(document.querySelectorAll("#packets tbody td.client"));
    return cells.length === n && cells.every((td) => td.textContent === client);
  }, [want, client], { timeout: 10000 }).catch(async () => {
    const shown = await page.$$eval("#packets tbody td.client", (tds) => tds.map((td) => td.textContent));
    throw new Error(`the table shows ${shown.length} rows from ${[...new Set(shown)]}, want ${want} from ${client}`);
  });
}

const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => d.dismiss());

  step("load the page: the last hour by default, only beta's packets");
  await page.goto(url);
  if ((await page.inputValue("#f-range")) !== "1h") throw new Error("the default range is not the last hour");
  await page.waitForFunction(() => /^Per minute, last hour$/.test(document.getElementById("time-caption").textContent), null, { timeout: 10000 });
  await page.uncheck("#auto");
  // 50 a page: the newest page holds beta's newest 50.
  await tableOf(page, 50, "beta");
  await page.selectOption("#f-client", "alpha");
  await page.waitForSelector("#empty:not([hidden])", { timeout: 10000 });
  await page.selectOption("#f-client", "");

  step("the time chart: anomalies on their own axis, the current bucket drawn as partial");
  const chart = await page.$eval("#time-chart", (svg) => ({
    panels: Array.from(svg.querySelectorAll(".panel-name")).map((t) => t.textContent),
    lines: svg.querySelectorAll("polyline.line").length,
    badLines: svg.querySelectorAll("polyline.line-bad").length,
    partial: svg.querySelectorAll(".partial").length,
    end: Array.from(svg.querySelectorAll("text")).pop().textContent,
    points: (svg.querySelector("polyline.line:not(.partial)").getAttribute("points") || "").trim().split(/\s+/).length,
  }));
  console.log(`  time chart: ${JSON.stringify(chart)}`);
  if (chart.panels.join() !== "packets,anomalies") throw new Error(`panels: ${chart.panels}`);
  if (chart.partial < 3 || !/\(partial\)$/.test(chart.end)) throw new Error("the current bucket is not marked partial");
  if (chart.points !== 59) throw new Error(`${chart.points} whole buckets in the last hour, want 59 and a partial one`);
  await textsInside(page, "#time-chart");

  step("the protocol chart: long names and counts stay inside");
  const names = await page.$$eval("#protocol-chart text.label", (ts) => ts.map((t) => t.textContent));
  if (!names.includes("WIREGUARD0") || !names.includes("OPENVPN-TC")) throw new Error(`protocols: ${names}`);
  await textsInside(page, "#protocol-chart");
  const sum = await page.evaluate(async () =>
    (await (await fetch("/api/protocols?range=1h")).json()).protocols.reduce((n, p) => n + p.packets, 0));
  if (sum !== recent) throw new Error(`the last hour's protocols count ${sum} packets, want ${recent}`);

  step("top talkers: beta's three sources and its destination, exactly");
  await page.waitForFunction((n) => document.getElementById("talkers-note").textContent === `All ${n} packets of the range.`,
    String(recent), { timeout: 10000 });
  const talkers = await page.$$eval("#talkers tbody tr", (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent)));
  console.log(`  talkers: ${JSON.stringify(talkers)}`);
  if (talkers[0][0] !== "192.168.1.10" || talkers[0][1] !== String(recent)) throw new Error(`top talker: ${talkers[0]}`);
  const sources = talkers.slice(1).map((t) => t[0]).sort();
  if (sources.join() !== "172.16.0.1,172.16.0.2,172.16.0.3") throw new Error(`talkers: ${sources}`);
  await page.click("#talkers tbody tr:nth-child(2) a");
  await page.waitForSelector("#host:not([hidden])", { timeout: 10000 });
  if (!(await page.textContent("#h-addr")).startsWith("172.16.0.")) throw new Error("the talker's host view did not open");
  await page.click("#host-close");

  step("six hours: alpha's packets come into the table, the chart and the talkers");
  await page.selectOption("#f-range", "6h");
  await page.waitForFunction(() => document.getElementById("time-caption").textContent === "Per 5 minutes, last 6 hours", null, { timeout: 10000 });
  if (!page.url().endsWith("#range=6h")) throw new Error(`the address does not keep the range: ${page.url()}`);
  await page.selectOption("#f-client", "alpha");
  await tableOf(page, 50, "alpha");
  await page.selectOption("#f-client", "");
  await page.waitForFunction((n) => document.getElementById("talkers-note").textContent === `All ${n} packets of the range.`,
    String(all), { timeout: 10000 });
  const buckets = await page.$eval("#time-chart polyline.line:not(.partial)", (l) => l.getAttribute("points").trim().split(/\s+/).length);
  if (buckets !== 71) throw new Error(`${buckets} whole 5-minute buckets in 6 hours, want 71`);
  if ((await page.textContent("#protocol-caption")) !== "last 6 hours") throw new Error("the protocol chart's caption");

  step("the range survives a reload, and 15 minutes shows 15 buckets");
  await page.reload();
  await page.waitForFunction(() => document.getElementById("f-range").value === "6h", null, { timeout: 10000 });
  await page.selectOption("#f-range", "15m");
  await page.waitForFunction(() => document.getElementById("time-caption").textContent === "Per minute, last 15 minutes", null, { timeout: 10000 });
  const quarter = await page.$eval("#time-chart polyline.line:not(.partial)", (l) => l.getAttribute("points").trim().split(/\s+/).length);
  if (quarter !== 14) throw new Error(`${quarter} whole buckets in 15 minutes, want 14`);

  if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("time range browser test passed");
} finally {
  await browser.close();
}
