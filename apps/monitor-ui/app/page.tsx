import { apiUrlFromEnv, fetchMonitorStatus } from "@/lib/monitor";

// Rendered on every request, server-side: the page shows the API as it is now.
export const dynamic = "force-dynamic";

const COLOURS: Record<string, string> = {
  ok: "#1a7f37",
  ready: "#1a7f37",
  failed: "#cf222e",
  not_ready: "#cf222e",
  not_configured: "#6e7781",
};

export default async function StatusPage() {
  const status = await fetchMonitorStatus(apiUrlFromEnv(process.env));
  if (status.kind === "unreachable") {
    return (
      <main>
        <h1>AegisTrader monitor</h1>
        <p data-testid="api-state" style={{ color: COLOURS.failed }}>
          API unreachable
        </p>
        <p>
          monitor-api at <code>{status.apiUrl}</code> did not answer: {status.reason}
        </p>
      </main>
    );
  }
  const { readiness, version } = status;
  return (
    <main>
      <h1>AegisTrader monitor</h1>
      <p data-testid="api-state" style={{ color: COLOURS[readiness.status] }}>
        API {readiness.status === "ready" ? "ready" : "not ready"}
      </p>
      <table>
        <thead>
          <tr>
            <th align="left">dependency</th>
            <th align="left">status</th>
            <th align="right">latency</th>
            <th align="left">error</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(readiness.checks).map(([name, check]) => (
            <tr key={name} data-testid={`check-${name}`}>
              <td>{name}</td>
              <td style={{ color: COLOURS[check.status] }}>{check.status}</td>
              <td align="right">{check.latency_ms === null ? "-" : `${check.latency_ms} ms`}</td>
              <td>{check.error ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p data-testid="version">
        version {version.version}, commit {version.git_sha}, image tag {version.image_tag}
      </p>
    </main>
  );
}
