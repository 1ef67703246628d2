// A V8 CPU profile of the package on the web path (run with `deno run --v8-flags=--prof`, a
// `wasm-pack build --profiling` package in pkg/): where the JS thread spends an embed and a decode.
//   deno run -A --unstable-webgpu --v8-flags=--prof scripts/web-bench/profile.mjs MODELS_DIR [embed|decode]
import init, { Device } from "../../pkg/webgpu_infer.js";

const models = Deno.args[0];
const what = Deno.args[1] ?? "embed";
await init({ module_or_path: await Deno.readFile(new URL("../../pkg/webgpu_infer_bg.wasm", import.meta.url)) });
const device = await Device.create();
if (what === "embed") {
  const e = await device.loadEmbedder(`file://${models}/all-MiniLM-L6-v2/`);
  const text = Array(126).fill("city").join(" ");
  await e.embed([text]);
  const t = performance.now();
  for (let i = 0; i < 50; i++) await e.embed([text]);
  console.error(`embed 1x128: ${((performance.now() - t) / 50).toFixed(2)} ms`);
} else {
  const g = await device.loadGenerator(`file://${models}/SmolLM2-135M-Instruct.Q4_1.gguf`);
  await g.generateText("Hello there", { maxTokens: 8, stopAtEos: false });
  const { stats } = await g.generateText("Hello there", { maxTokens: 256, stopAtEos: false });
  console.error(JSON.stringify(stats));
}
