// Built by scripts/test.sh against the packed npm package (npm pack → npm install here), served by
// scripts/serve.mjs from the repository root and checked by tests/e2e/demo.mjs.
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  worker: { format: "es" },
  // The package's worker and .wasm are found with `new URL(..., import.meta.url)`; pre-bundling
  // (dev server only) would move the module away from them.
  optimizeDeps: { exclude: ["webgpu-infer"] },
});
