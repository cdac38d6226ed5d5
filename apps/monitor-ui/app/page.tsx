import { apiUrlFromEnv, fetchMonitorStatus, refreshSecondsFromEnv } from "@/lib/monitor";

import { StatusView } from "./status-view";

// Rendered on every request, server-side: the first paint shows the API as it is now; the
// page then refreshes itself from /api/status without reloading.
export const dynamic = "force-dynamic";

export default async function StatusPage() {
  const status = await fetchMonitorStatus(apiUrlFromEnv(process.env));
  return (
    <StatusView
      initial={status}
      renderedAt={new Date().toISOString()}
      refreshSeconds={refreshSecondsFromEnv(process.env)}
    />
  );
}
