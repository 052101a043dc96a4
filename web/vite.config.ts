import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const API = "http://127.0.0.1:8000";
// Paths the FastAPI app owns; the dev server forwards them so cookies stay same-origin.
const API_PATHS = [
  "/auth", "/datasets", "/recordings", "/train", "/jobs", "/models",
  "/deploy", "/deployments", "/events", "/audit", "/healthz", "/docs", "/openapi.json",
];

export default defineConfig({
  base: "/",
  plugins: [react()],
  build: {
    outDir: "../src/waketrain/static",
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    proxy: {
      ...Object.fromEntries(API_PATHS.map((path) => [path, { target: API }])),
      "/status": { target: API.replace("http", "ws"), ws: true },
    },
  },
});
