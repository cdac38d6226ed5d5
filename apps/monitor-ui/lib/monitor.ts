// The data layer: fetch monitor-api's readiness and version, server-side, with a timeout.
// Any failure becomes an "unreachable" result the page renders, never an exception.

export type CheckStatus = "ok" | "failed" | "not_configured";

export interface DependencyCheck {
  status: CheckStatus;
  latency_ms: number | null;
  error: string | null;
  // When monitor-api last ran this check (ISO 8601, UTC); absent from older APIs.
  checked_at?: string | null;
}

export interface Readiness {
  status: "ready" | "not_ready";
  checks: Record<string, DependencyCheck>;
}

export interface VersionInfo {
  version: string;
  git_sha: string;
  image_tag: string;
}

export type MonitorStatus =
  | { kind: "reachable"; apiUrl: string; readiness: Readiness; version: VersionInfo }
  | { kind: "unreachable"; apiUrl: string; reason: string };

export type Fetcher = (url: string, init: RequestInit) => Promise<Response>;

export const DEFAULT_API_URL = "http://localhost:8000";
export const DEFAULT_TIMEOUT_MS = 3000;
export const DEFAULT_REFRESH_SECONDS = 5;

// How often the open page asks again: REFRESH_SECONDS, 1 to 300; anything else the default.
export function refreshSecondsFromEnv(env: Record<string, string | undefined>): number {
  const text = (env.REFRESH_SECONDS ?? "").trim();
  const seconds = Number(text);
  if (!/^\d+$/.test(text) || seconds < 1 || seconds > 300) return DEFAULT_REFRESH_SECONDS;
  return seconds;
}

// A time as people read it on a shared screen: HH:MM:SS UTC (the same on server and browser).
export function clockTime(iso: string | null | undefined): string {
  if (!iso) return "-";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "-";
  return `${when.toISOString().slice(11, 19)} UTC`;
}

export function apiUrlFromEnv(env: Record<string, string | undefined>): string {
  const configured = (env.MONITOR_API_URL ?? "").trim();
  return (configured || DEFAULT_API_URL).replace(/\/+$/, "");
}

async function getJson(fetcher: Fetcher, url: string, timeoutMs: number): Promise<[number, unknown]> {
  const response = await fetcher(url, {
    cache: "no-store",
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(timeoutMs),
  });
  return [response.status, await response.json()];
}

function isReadiness(value: unknown): value is Readiness {
  const candidate = value as Readiness | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    (candidate.status === "ready" || candidate.status === "not_ready") &&
    typeof candidate.checks === "object" &&
    candidate.checks !== null
  );
}

function isVersion(value: unknown): value is VersionInfo {
  const candidate = value as VersionInfo | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.version === "string" &&
    typeof candidate.git_sha === "string" &&
    typeof candidate.image_tag === "string"
  );
}

export async function fetchMonitorStatus(
  apiUrl: string,
  fetcher: Fetcher = fetch,
  timeoutMs: number = DEFAULT_TIMEOUT_MS,
): Promise<MonitorStatus> {
  try {
    // /readyz answers 503 with a full body when a dependency fails: that is still an answer.
    const [[, readiness], [versionStatus, version]] = await Promise.all([
      getJson(fetcher, `${apiUrl}/readyz`, timeoutMs),
      getJson(fetcher, `${apiUrl}/version`, timeoutMs),
    ]);
    if (!isReadiness(readiness)) {
      return { kind: "unreachable", apiUrl, reason: "unexpected /readyz response" };
    }
    if (versionStatus !== 200 || !isVersion(version)) {
      return { kind: "unreachable", apiUrl, reason: `unexpected /version response (${versionStatus})` };
    }
    return { kind: "reachable", apiUrl, readiness, version };
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { kind: "unreachable", apiUrl, reason };
  }
}
