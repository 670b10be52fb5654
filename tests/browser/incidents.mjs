// The incidents panel in headless Chromium, the way a person uses it. Run by
// tests/browser.rs, which starts the server. Environment:
//   DASHBOARD_URL    http://127.0.0.1:PORT/
//   INGEST_PORT      the server's packet port
//   NETSENTINEL_BIN  the netsentinel binary (to run a port scan scenario)
//   SERVER_PID       the server's pid (stopped at the end: the page must say so)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
import { spawn } from "node:child_process";
import { env, launch, step } from "./common.mjs";

const url = env("DASHBOARD_URL");
const ingestPort = env("INGEST_PORT");
const bin = env("NETSENTINEL_BIN");
const serverPid = Number(env("SERVER_PID"));

const browser = await launch();
const errors = [];
const dialogs = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("dialog", async (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    if (d.type() === "confirm") await d.accept();
    else await d.dismiss();
  });
  page.on("pageerror", (e) => errors.push(e.message));

  step("load the page: no incident yet");
  await page.goto(url);
  await page.waitForSelector("#inc-empty:not([hidden])", { timeout: 10000 });

  step("a port scan starts: its incident appears within 2 s of opening");
  const client = spawn(bin, ["client", "scan", "--scenario", "portscan", "--count", "30000", "--seed", "4",
    "--server", `127.0.0.1:${ingestPort}`, "--json"], { stdio: ["ignore", "ignore", "inherit"] });
  const clientDone = new Promise((resolve) => client.on("exit", resolve));
  const item = await page.waitForSelector("#inc-list li", { timeout: 60000 });
  const shownAt = Date.now();
  const id = await item.getAttribute("data-id");
  const detail = await page.evaluate(async (id) => (await (await fetch(`/api/incidents/${id}`)).json()).incident, id);
  const lag = shownAt - Date.parse(detail.opened_at);
  console.log(`  incident ${id} on ${detail.host} shown ${lag} ms after it opened`);
  if (lag > 2000) throw new Error(`the incident showed ${lag} ms after it opened`);
  const text = await item.textContent();
  if (!text.includes("10.0.3.66") || !/anomalous packets/.test(text)) throw new Error(`unexpected incident: ${text}`);
  if ((await clientDone) !== 0) throw new Error("the scan client failed");

  step("search the table for the scanner and export what it shows as CSV");
  await page.fill("#f-search", "10.0.3.66");
  await page.waitForFunction(() => {
    const rows = Array.from(document.querySelectorAll("#packets tbody tr"));
    return rows.length > 0 && rows.every((r) => r.textContent.includes("10.0.3.66"));
  }, null, { timeout: 10000 });
  await page.uncheck("#auto");
  const shown = (await page.$$("#packets tbody tr")).length;
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
  const csv = await (await import("node:fs/promises")).readFile(await download.path(), "utf8");
  const lines = csv.trim().split("\r\n");
  if (!lines[0].startsWith("id,timestamp,client,source_ip")) throw new Error(`CSV header: ${lines[0]}`);
  if (lines.length !== shown + 1) throw new Error(`CSV has ${lines.length - 1} rows, the table ${shown}`);
  if (!lines.slice(1).every((l) => l.includes('"10.0.3.66"'))) throw new Error("CSV rows are not the search's");
  await page.check("#auto");
  await page.fill("#f-search", "");

  step("open the scanner's host view from its incident");
  await page.click(`#inc-list li[data-id="${id}"] .host`);
  await page.waitForSelector("#host:not([hidden])", { timeout: 10000 });
  if ((await page.textContent("#h-addr")) !== "10.0.3.66") throw new Error("host view of the wrong host");
  const peers = await page.$$eval("#h-peers tbody tr td:first-child", (els) => els.map((e) => e.textContent));
  if (!peers.includes("10.0.1.10")) throw new Error(`the scan's target is not among its peers: ${peers}`);
  const ports = (await page.$$("#h-ports tbody tr")).length;
  if (ports < 2) throw new Error(`a port scan shows ${ports} ports`);
  if (!(await page.textContent("#h-incidents")).includes(`#${id}`)) throw new Error("its incident is not listed");
  await page.click("#host-close");

  step("acknowledge it");
  await page.click(`#inc-list li[data-id="${id}"] button[data-action="acknowledge"]`);
  await page.waitForSelector(`#inc-list li.acknowledged[data-id="${id}"]`, { timeout: 10000 });
  if (!(await page.textContent(`#inc-list li[data-id="${id}"] .state`)).includes("acknowledged")) {
    throw new Error("the state does not say acknowledged");
  }

  step("this is normal: a rule suppresses it and it leaves the panel");
  await page.click(`#inc-list li[data-id="${id}"] button[data-action="suppress"]`);
  await page.waitForFunction((id) => !document.querySelector(`#inc-list li[data-id="${id}"]`), id, { timeout: 10000 });
  await page.waitForFunction(() => /1 suppressed/.test(document.getElementById("inc-counts").textContent), null, { timeout: 10000 });
  const rules = await page.evaluate(async () => (await (await fetch("/api/suppressions")).json()).rules);
  if (rules.length !== 1 || rules[0].source !== "10.0.3.66/32") throw new Error(`rules: ${JSON.stringify(rules)}`);
  if (!dialogs.some((d) => d.startsWith("confirm") && d.includes("10.0.3.66"))) throw new Error(`no confirmation asked: ${dialogs}`);

  step("the server stops: the page says so, with the time of its figures");
  process.kill(serverPid, "SIGTERM");
  await page.waitForFunction(() => {
    const b = document.getElementById("unreachable");
    return !b.hidden && /^Server unreachable — figures from \d\d:\d\d:\d\d$/.test(b.textContent);
  }, null, { timeout: 15000 });
  console.log(`  banner: ${await page.textContent("#unreachable")}`);

  const unexpected = dialogs.filter((d) => !d.startsWith("confirm"));
  if (unexpected.length > 0) throw new Error(`unexpected dialogs: ${unexpected.join("; ")}`);
  if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("incidents browser test passed");
} finally {
  await browser.close();
}
