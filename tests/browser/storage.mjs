// The storage card in headless Chromium. Run by tests/browser.rs, which
// starts the server with storage.retention_days = 3 over a database holding
// ten days of old partitions and an old capture's stragglers. Environment:
//   DASHBOARD_URL    http://127.0.0.1:PORT/
//   DROPPED          partitions retention dropped
//   KEPT             dated partitions left
//   OLDEST           first day of the oldest one kept (YYYY-MM-DD)
//   LAST_DROPPED     the name of the newest dropped partition
//   UNDATED          rows in the default partition
//   CHROMIUM         browser binary (default /usr/bin/chromium)
import { env, launch } from "./common.mjs";

const url = env("DASHBOARD_URL");

const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => errors.push(e.message));
  console.log("- the storage card says what is kept and what was dropped");
  await page.goto(url);
  const want = [
    "keeping 3 days",
    `${env("KEPT")} partitions from ${env("OLDEST")}`,
    `${env("UNDATED")} undated (old replays)`,
    `${env("DROPPED")} dropped, last ${env("LAST_DROPPED")} (retention)`,
  ].join(" · ");
  await page.waitForFunction((w) => document.getElementById("storage-detail").textContent === w, want, { timeout: 10000 })
    .catch(async () => {
      throw new Error(`storage card: ${JSON.stringify(await page.textContent("#storage-detail"))}, want ${JSON.stringify(want)}`);
    });
  const size = await page.textContent("#storage");
  if (!/^\d+(\.\d)? (B|KiB|MiB|GiB)$/.test(size)) throw new Error(`database size: ${JSON.stringify(size)}`);
  if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("storage browser test passed");
} finally {
  await browser.close();
}
