import { describe, expect, it } from "vitest";

import { apiUrlFromEnv, fetchMonitorStatus, type Fetcher } from "./monitor";

const readiness = {
  status: "not_ready",
  checks: {
    nats: { status: "ok", latency_ms: 1.2, error: null },
    postgres: { status: "failed", latency_ms: 2000, error: "no answer within 2s" },
  },
};
const version = { version: "1.2.3", git_sha: "abc1234", image_tag: "main-abc1234" };

function fakeApi(routes: Record<string, [number, unknown]>): Fetcher & { calls: string[] } {
  const calls: string[] = [];
  const fetcher = async (url: string, init: RequestInit): Promise<Response> => {
    calls.push(url);
    expect(init.cache).toBe("no-store");
    expect(init.signal).toBeInstanceOf(AbortSignal);
    const path = new URL(url).pathname;
    const route = routes[path];
    if (!route) throw new TypeError("fetch failed");
    return new Response(JSON.stringify(route[1]), { status: route[0] });
  };
  return Object.assign(fetcher, { calls });
}

describe("fetchMonitorStatus", () => {
  it("reports readiness (even 503) and version", async () => {
    const api = fakeApi({ "/readyz": [503, readiness], "/version": [200, version] });
    const status = await fetchMonitorStatus("http://api:8000", api);
    expect(status).toEqual({ kind: "reachable", apiUrl: "http://api:8000", readiness, version });
    expect(api.calls.sort()).toEqual(["http://api:8000/readyz", "http://api:8000/version"]);
  });

  it("turns a connection failure into 'unreachable'", async () => {
    const status = await fetchMonitorStatus("http://api:8000", fakeApi({}));
    expect(status).toEqual({
      kind: "unreachable",
      apiUrl: "http://api:8000",
      reason: "TypeError: fetch failed",
    });
  });

  it("rejects answers that are not monitor-api's", async () => {
    const api = fakeApi({ "/readyz": [200, { hello: "world" }], "/version": [200, version] });
    const status = await fetchMonitorStatus("http://api:8000", api);
    expect(status).toMatchObject({ kind: "unreachable", reason: "unexpected /readyz response" });
  });

  it("times out a hung API", async () => {
    const hung: Fetcher = (_url, init) =>
      new Promise((_resolve, reject) => {
        init.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    const status = await fetchMonitorStatus("http://api:8000", hung, 50);
    expect(status).toMatchObject({ kind: "unreachable" });
    expect(status.kind === "unreachable" && status.reason).toMatch(/TimeoutError/);
  });
});

describe("apiUrlFromEnv", () => {
  it("defaults and strips trailing slashes", () => {
    expect(apiUrlFromEnv({})).toBe("http://localhost:8000");
    expect(apiUrlFromEnv({ MONITOR_API_URL: " http://monitor-api:8000/ " })).toBe(
      "http://monitor-api:8000",
    );
  });
});

describe("refreshSecondsFromEnv", () => {
  it("takes whole seconds from 1 to 300 and falls back to the default otherwise", async () => {
    const { refreshSecondsFromEnv, DEFAULT_REFRESH_SECONDS } = await import("./monitor");
    expect(refreshSecondsFromEnv({ REFRESH_SECONDS: "2" })).toBe(2);
    for (const bad of [undefined, "", "0", "301", "1.5", "-3", "soon"]) {
      expect(refreshSecondsFromEnv({ REFRESH_SECONDS: bad })).toBe(DEFAULT_REFRESH_SECONDS);
    }
  });
});

describe("clockTime", () => {
  it("shows HH:MM:SS UTC, and a dash for nothing or nonsense", async () => {
    const { clockTime } = await import("./monitor");
    expect(clockTime("2026-11-27T10:33:26Z")).toBe("10:33:26 UTC");
    expect(clockTime(null)).toBe("-");
    expect(clockTime("yesterday")).toBe("-");
  });
});
