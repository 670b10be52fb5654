// What every browser script shares: reading its environment, printing its
// steps, and launching Debian's Chromium headless.
import { chromium } from "playwright-core";

/** The environment variable `name`; an error when it is not set. */
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

/** Prints one step of a script. */
export function step(text) {
  console.log(`- ${text}`);
}

/** Headless Chromium (CHROMIUM, default /usr/bin/chromium). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
