#!/usr/bin/env node
// Runs the browser benchmark pages in headless Chromium (WebGPU on whatever adapter it gets: SwiftShader
// on machines without a GPU) and prints their JSON lines; also writes them to bench-out/browser.jsonl.
//   node scripts/bench-browser.mjs [--reps 5] [--synthetic-mb 256] [--only load|kernels|decode|embed|images]
//     [--images-query "classifier_backend=both"]
//                                  [--kernel-query "max_square=256&ops=matmul"]
//                                  [--embed-reps 3] [--embed-shapes 8x128,1x128] [--image-sizes 64,128]
//                                  [--embed-query "backend=cpu&ort=wasm&ort_threads=2"]
//                                  [--decode-query "backend=cpu&worker=1&wllama_gpu=0"]
// Needs pkg/ (npm run build) and models/ (scripts/fetch-models.sh); the embedding page's
// onnxruntime-web baseline needs models/all-MiniLM-L6-v2/onnx/model.onnx (scripts/export_minilm_onnx.py);
// Transformers.js (embed) and wllama (decode) come from bench-peers/ (scripts/fetch-web-peers.sh, which
// `npm run bench:browser` runs). Pages are served cross-origin isolated (wllama's threads need it).
import { chromium } from "playwright-core";
import { mkdir, writeFile } from "node:fs/promises";
import { serve } from "./serve.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const reps = arg("reps", "5");
const syntheticMb = arg("synthetic-mb", "256");

const server = await serve(0, { isolated: true });
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // WebGPU canvases (the images page) need Vulkan compositing in headless Chromium.
    "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-angle=swiftshader",
  ],
});
const pages = [
  `/www/bench/load.html?reps=${reps}&synthetic_mb=${syntheticMb}`,
  `/www/bench/kernels.html?${arg("kernel-query", "")}`,
  `/www/bench/decode.html?new_tokens=${arg("new-tokens", "16")}&reps=2&${arg("decode-query", "")}`,
  `/www/bench/embed.html?reps=${arg("embed-reps", "3")}&shapes=${arg("embed-shapes", "8x128,1x128")}&${arg("embed-query", "")}`,
  `/www/bench/images.html?reps=3&sizes=${arg("image-sizes", "64,128")}&${arg("images-query", "")}`,
].filter((p) => !arg("only") || p.includes(arg("only")));
const lines = [];
try {
  for (const path of pages) {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    await page.goto(`${base}${path}`);
    await page.waitForFunction(() => window.benchDone === true, null, { timeout: 1_800_000, polling: 500 });
    const error = await page.evaluate(() => window.benchError);
    if (error) throw new Error(`benchmark page ${path} failed: ${error}`);
    for (const r of await page.evaluate(() => window.benchResults)) {
      const line = JSON.stringify(r);
      lines.push(line);
      console.log(line);
    }
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
}
await mkdir("bench-out", { recursive: true });
await writeFile("bench-out/browser.jsonl", lines.join("\n") + "\n");
