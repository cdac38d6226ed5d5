// End-to-end: load the status page in headless Chromium and check what it shows.
// Usage: UI_URL=http://127.0.0.1:3000 EXPECT="API ready" node e2e/status.e2e.mjs
import { chromium } from "playwright-core";

const url = process.env.UI_URL ?? "http://127.0.0.1:3000";
const expected = process.env.EXPECT ?? "API ready";
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const browser = await chromium.launch({
  executablePath,
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
try {
  const page = await browser.newPage();
  const response = await page.goto(url, { waitUntil: "domcontentloaded", timeout: 30000 });
  const state = (await page.getByTestId("api-state").textContent())?.trim();
  const version = (await page.locator("[data-testid=version]").textContent().catch(() => null))?.trim();
  console.log(JSON.stringify({ status: response?.status(), state, version }));
  if (state !== expected) {
    console.error(`expected "${expected}", the page shows "${state}"`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
}
