/** @type {import('next').NextConfig} */
const nextConfig = {
  // The image carries only the traced server files; public/ and .next/static are copied beside.
  output: "standalone",
  poweredByHeader: false,
  reactStrictMode: true,
  // Type checks run in the gate (`tsc --noEmit` in tests/monitor_ui), not in every image
  // build: they took 27 s of a 63 s rebuild after a one-line change.
  typescript: { ignoreBuildErrors: true },
};

export default nextConfig;
