// The status as JSON, for the open page's refresh: the browser asks the UI's own server, which
// asks monitor-api (the browser never reaches monitor-api; the NetworkPolicy allows only this).
import { apiUrlFromEnv, fetchMonitorStatus } from "@/lib/monitor";

export const dynamic = "force-dynamic";

export async function GET(): Promise<Response> {
  const status = await fetchMonitorStatus(apiUrlFromEnv(process.env));
  return Response.json(status, { headers: { "cache-control": "no-store" } });
}
