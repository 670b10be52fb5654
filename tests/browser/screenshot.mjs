// Takes the README's screenshot of a running dashboard (scripts/screenshot.sh
// runs the demo for it). Usage: node screenshot.mjs URL OUT.png
import { launch } from "./common.mjs";

const [url, out] = process.argv.slice(2);
if (!url || !out) throw new Error("usage: node screenshot.mjs URL OUT.png");
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
  await page.goto(url);
  await page.waitForSelector("#inc-list li", { timeout: 120000 });
  await page.waitForSelector("#talkers tbody tr", { timeout: 30000 });
  await page.waitForTimeout(2500);
  await page.screenshot({ path: out });
  console.log(`screenshot: ${out}`);
} finally {
  await browser.close();
}
