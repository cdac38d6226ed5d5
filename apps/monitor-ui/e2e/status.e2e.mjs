// End-to-end: open the status page once in headless Chromium, then follow commands from stdin,
// one per line, printing one JSON line per step (a test drives the services in between):
//   expect TEXT   wait until the open page, without reloading, shows TEXT as the API state
//   axe           run axe-core (WCAG 2.x A/AA rules) on the page and print the violations
// Usage: UI_URL=http://127.0.0.1:3000 node e2e/status.e2e.mjs < commands
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const url = process.env.UI_URL ?? "http://127.0.0.1:3000";
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const waitMs = Number(process.env.WAIT_MS ?? 20000);

const say = (record) => console.log(JSON.stringify(record));
const text = async (page, testId) =>
  (await page.getByTestId(testId).first().textContent({ timeout: 5000 }).catch(() => null))?.trim() ?? null;

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
  let loads = 0;
  page.on("load", () => (loads += 1));
  const response = await page.goto(url, { waitUntil: "load", timeout: 30000 });
  say({
    step: "open",
    status: response?.status(),
    state: await text(page, "api-state"),
    version: await text(page, "version"),
    nats: await text(page, "check-nats"),
    updated: await text(page, "updated"),
  });
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, ...rest] = line.trim().split(" ");
    if (command === "expect") {
      const expected = rest.join(" ");
      const started = Date.now();
      const seen = await page
        .waitForFunction(
          (wanted) => document.querySelector("[data-testid=api-state]")?.textContent?.trim() === wanted,
          expected,
          { timeout: waitMs, polling: 200 },
        )
        .then(() => true)
        .catch(() => false);
      say({
        step: "expect",
        expected,
        seen,
        state: await text(page, "api-state"),
        updated: await text(page, "updated"),
        seconds: (Date.now() - started) / 1000,
        reloaded: loads > 1,
      });
      if (!seen) process.exitCode = 1;
    } else if (command === "axe") {
      await page.addScriptTag({ path: require.resolve("axe-core/axe.min.js") });
      const results = await page.evaluate(async () =>
        // eslint-disable-next-line no-undef
        axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
      );
      say({
        step: "axe",
        passes: results.passes.length,
        violations: results.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length })),
      });
      if (results.violations.length) process.exitCode = 1;
    } else if (command) {
      say({ step: "unknown", command });
      process.exitCode = 2;
    }
  }
} finally {
  await browser.close();
}
