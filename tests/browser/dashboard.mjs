// Drives the dashboard in headless Chromium (Debian's /usr/bin/chromium) the way
// a person would. Run by tests/browser.rs, which starts the server and fills the
// database first. Environment:
//   DASHBOARD_URL   http://127.0.0.1:PORT/
//   INGEST_PORT     the server's packet port (this script sends packets too)
//   INITIAL_TOTAL   packets stored before the page loads
//   XSS_NAME        a sender name that is an HTML injection attempt
//   SCREENSHOT      where to save the PNG
//   CHROMIUM        browser binary (default /usr/bin/chromium)
import net from "node:net";
import { env, launch, step } from "./common.mjs";

const url = env("DASHBOARD_URL");
const ingestPort = Number(env("INGEST_PORT"));
const initial = Number(env("INITIAL_TOTAL"));
const xssName = env("XSS_NAME");
const screenshot = env("SCREENSHOT");

function sendPackets(name, count) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: "127.0.0.1", port: ingestPort });
    let answered = 0;
    let buffer = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      answered += lines.filter((l) => l.includes('"id"')).length;
      if (answered >= count) {
        socket.end();
        resolve();
      }
    });
    socket.on("error", reject);
    let text = JSON.stringify({ hello: name }) + "\n";
    for (let i = 1; i <= count; i++) {
      text += JSON.stringify({
        seq: i,
        source_ip: `10.9.0.${i}`,
        dest_ip: "10.9.1.1",
        packet_size: 200 + i,
        protocol: "HTTPS",
        dst_port: 443,
      }) + "\n";
    }
    socket.write(text);
  });
}

const browser = await launch();
const dialogs = [];
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("dialog", async (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    if (d.type() === "confirm") await d.accept();
    else await d.dismiss();
  });
  page.on("pageerror", (e) => errors.push(e.message));
  const total = () => page.$eval("#total", (el) => Number(el.textContent.replace(/,/g, "")));

  step("load the page and see the totals");
  await page.goto(url);
  await page.waitForFunction((n) => document.getElementById("total").textContent.replace(/,/g, "") === String(n), initial, { timeout: 10000 });
  // The totals and the table load side by side: wait for the table too.
  await page.waitForFunction(() => document.querySelectorAll("#packets tbody tr").length > 0, null, { timeout: 10000 });

  step("a sender named like an HTML tag shows up as text and runs nothing");
  await page.selectOption("#f-client", xssName);
  await page.waitForFunction((name) => {
    const cells = Array.from(document.querySelectorAll("#packets tbody td.client"));
    return cells.length > 0 && cells.every((c) => c.textContent === name);
  }, xssName, { timeout: 10000 });
  const injected = await page.$$eval("#packets img, #f-client img", (els) => els.length);
  if (injected !== 0) throw new Error(`${injected} <img> elements were injected`);
  await page.selectOption("#f-client", "");

  step("new packets arrive: totals and table update by themselves");
  await sendPackets("browser", 50);
  await page.waitForFunction((n) => document.getElementById("total").textContent.replace(/,/g, "") === String(n), initial + 50, { timeout: 10000 });
  await page.waitForFunction(() => {
    const first = document.querySelector("#packets tbody tr td.client");
    return first && first.textContent === "browser";
  }, null, { timeout: 10000 });
  if ((await total()) !== initial + 50) throw new Error("total did not reach the new count");

  step("filter to anomalies only");
  await page.check("#f-anomalies");
  await page.waitForFunction(() => {
    const rows = Array.from(document.querySelectorAll("#packets tbody tr"));
    return rows.length > 0 && rows.every((r) => r.querySelector(".badge") && r.querySelector(".badge").textContent === "ANOMALY");
  }, null, { timeout: 10000 });

  step("open a flagged packet's explanation");
  await page.click("#packets tbody tr:first-child");
  await page.waitForSelector("#detail:not([hidden])", { timeout: 10000 });
  const verdict = await page.textContent("#d-verdict");
  if (!/threshold/.test(verdict) || !/flagged as an anomaly/.test(verdict)) throw new Error(`unexpected explanation: ${verdict}`);
  const reasons = await page.$$eval("#d-bars .share .reason", (els) => els.map((e) => e.textContent));
  // Each reason in words: what, the packet's value, where training put it.
  if (!reasons.length || !reasons.every((r) => /^[A-Za-z].*: (at most )?[0-9.]+.*; .*(percentile of training|in training) \(median /.test(r))) {
    throw new Error(`explanation lacks reasons in words: ${JSON.stringify(reasons)}`);
  }
  const shares = await page.$$eval("#d-bars .share .fill", (els) => els.map((e) => parseFloat(e.style.width)));
  if (!shares.length || shares.some((w) => !(w > 0 && w <= 100))) throw new Error(`bad share bars: ${shares}`);
  await page.click("#detail-close");

  step("click Retrain and see the new model");
  const before = await page.textContent("#model");
  await page.click("#retrain");
  await page.waitForFunction(() => /New model #\d+/.test(document.getElementById("retrain-status").textContent), null, { timeout: 20000 });
  await page.waitForFunction((old) => document.getElementById("model").textContent !== old, before, { timeout: 10000 });
  const after = await page.textContent("#model");
  if (Number(after.slice(1)) <= Number(before.slice(1))) throw new Error(`model went from ${before} to ${after}`);

  step("auto-refresh can be turned off");
  await page.uncheck("#f-anomalies");
  await page.uncheck("#auto");
  const frozen = await total();
  await sendPackets("browser2", 10);
  await page.waitForTimeout(2500);
  if ((await total()) !== frozen) throw new Error("the page refreshed with auto-refresh off");
  await page.check("#auto");
  await page.waitForFunction((n) => document.getElementById("total").textContent.replace(/,/g, "") === String(n), frozen + 10, { timeout: 10000 });

  await page.screenshot({ path: screenshot });
  step(`screenshot saved to ${screenshot}`);

  const unexpected = dialogs.filter((d) => !d.startsWith("confirm"));
  if (unexpected.length > 0) throw new Error(`unexpected dialogs (script ran?): ${unexpected.join("; ")}`);
  if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("browser test passed");
} finally {
  await browser.close();
}
