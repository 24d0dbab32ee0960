/**
 * Next.js configuration.
 *
 * - `output: "standalone"` produces .next/standalone/server.js, a self-contained
 *   server used by the Docker image (no node_modules install in the runtime stage).
 * - The browser calls the backend at NEXT_PUBLIC_API_URL, default "/api"
 *   (same origin: the Ingress routes /api to the backend). NEXT_PUBLIC_* values
 *   are baked in at build time; the relative default keeps one image valid everywhere.
 * - BACKEND_URL (development convenience, read when the config loads - at
 *   `next dev`, or baked in by `next build`): proxy /api/* to that backend, e.g.
 *   BACKEND_URL=http://localhost:8000 npm run dev
 *
 * @type {import('next').NextConfig}
 */
const backendUrl = process.env.BACKEND_URL?.replace(/\/+$/, "");

const nextConfig = {
  output: "standalone",
  reactStrictMode: true,
  poweredByHeader: false,
  async rewrites() {
    if (!backendUrl) return [];
    return [{ source: "/api/:path*", destination: `${backendUrl}/api/:path*` }];
  },
};

export default nextConfig;
