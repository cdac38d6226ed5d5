// Liveness/readiness probe of the UI itself: answers without calling monitor-api.
export const dynamic = "force-dynamic";

export function GET(): Response {
  return Response.json({ status: "ok" });
}
