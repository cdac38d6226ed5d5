"use client";

// The status, kept current: every few seconds the page asks /api/status and re-renders in
// place. Every state is written out and marked with a symbol, so colour is never the only cue.
import { useEffect, useState } from "react";

import { clockTime, type CheckStatus, type MonitorStatus } from "@/lib/monitor";

type Tone = "good" | "bad" | "neutral";

// Colours with at least 4.5:1 contrast on white (WCAG AA for normal text).
const TONES: Record<Tone, { colour: string; symbol: string }> = {
  good: { colour: "#1a7f37", symbol: "✓" },
  bad: { colour: "#cf222e", symbol: "✗" },
  neutral: { colour: "#57606a", symbol: "–" },
};

const CHECK_TONES: Record<CheckStatus, Tone> = { ok: "good", failed: "bad", not_configured: "neutral" };
const CHECK_WORDS: Record<CheckStatus, string> = {
  ok: "ok",
  failed: "failed",
  not_configured: "not configured",
};

function Marked({ tone, text, testId }: { tone: Tone; text: string; testId?: string }) {
  const { colour, symbol } = TONES[tone];
  return (
    <span style={{ color: colour, fontWeight: 600 }}>
      <span aria-hidden="true">{symbol} </span>
      <span data-testid={testId}>{text}</span>
    </span>
  );
}

export function StatusView({
  initial,
  renderedAt,
  refreshSeconds,
}: {
  initial: MonitorStatus;
  renderedAt: string;
  refreshSeconds: number;
}) {
  const [status, setStatus] = useState(initial);
  const [updatedAt, setUpdatedAt] = useState(renderedAt);
  const [refreshFailed, setRefreshFailed] = useState(false);

  useEffect(() => {
    let asking = false;
    const timer = setInterval(async () => {
      if (asking) return; // a slow answer is not stacked with the next one
      asking = true;
      try {
        const response = await fetch("/api/status", { cache: "no-store" });
        if (!response.ok) throw new Error(`status ${response.status}`);
        setStatus((await response.json()) as MonitorStatus);
        setUpdatedAt(new Date().toISOString());
        setRefreshFailed(false);
      } catch {
        setRefreshFailed(true); // keep the last answer on screen, and say it is stale
      } finally {
        asking = false;
      }
    }, refreshSeconds * 1000);
    return () => clearInterval(timer);
  }, [refreshSeconds]);

  return (
    <main>
      <h1>AegisTrader monitor</h1>
      <section aria-live="polite" aria-label="monitor-api state">
        {status.kind === "unreachable" ? (
          <>
            <p>
              <Marked tone="bad" text="API unreachable" testId="api-state" />
            </p>
            <p>
              monitor-api at <code>{status.apiUrl}</code> did not answer: {status.reason}
            </p>
          </>
        ) : (
          <>
            <p>
              <Marked
                tone={status.readiness.status === "ready" ? "good" : "bad"}
                text={status.readiness.status === "ready" ? "API ready" : "API not ready"}
                testId="api-state"
              />
            </p>
            <table>
              <caption style={{ textAlign: "left" }}>Dependencies of monitor-api</caption>
              <thead>
                <tr>
                  <th scope="col" style={{ textAlign: "left" }}>dependency</th>
                  <th scope="col" style={{ textAlign: "left" }}>status</th>
                  <th scope="col" style={{ textAlign: "right" }}>latency</th>
                  <th scope="col" style={{ textAlign: "left" }}>last checked</th>
                  <th scope="col" style={{ textAlign: "left" }}>error</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(status.readiness.checks).map(([name, check]) => (
                  <tr key={name} data-testid={`check-${name}`}>
                    <th scope="row" style={{ textAlign: "left", fontWeight: 400 }}>{name}</th>
                    <td>
                      <Marked tone={CHECK_TONES[check.status]} text={CHECK_WORDS[check.status]} />
                    </td>
                    <td style={{ textAlign: "right" }}>
                      {check.latency_ms === null ? "-" : `${check.latency_ms} ms`}
                    </td>
                    <td>
                      {check.checked_at ? (
                        <time dateTime={check.checked_at}>{clockTime(check.checked_at)}</time>
                      ) : (
                        "-"
                      )}
                    </td>
                    <td>{check.error ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p data-testid="version">
              version {status.version.version}, commit {status.version.git_sha}, image tag{" "}
              {status.version.image_tag}
            </p>
          </>
        )}
      </section>
      <p data-testid="updated">
        Updated <time dateTime={updatedAt}>{clockTime(updatedAt)}</time>; refreshes every{" "}
        {refreshSeconds} s
        {refreshFailed ? " (the last refresh failed: what you see may be stale)" : ""}
      </p>
    </main>
  );
}
