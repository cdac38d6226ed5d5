/** @type {import('next').NextConfig} */
const nextConfig = {
  // The image carries only the traced server files; public/ and .next/static are copied beside.
  output: "standalone",
  poweredByHeader: false,
  reactStrictMode: true,
};

export default nextConfig;
