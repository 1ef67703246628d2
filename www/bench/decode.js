// Decoding benchmark: load a Generator, warm up (pipelines compile), then the best of `reps` runs.
import init, { Device } from "../../pkg/webgpu_infer.js";

const q = new URLSearchParams(location.search);
const model = q.get("model") ?? "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const newTokens = Number(q.get("new_tokens") ?? 32);
const reps = Number(q.get("reps") ?? 2);
const prompt = "The history of the city begins in the early middle ages, when a small settlement grew";
window.benchResults = [];

async function main() {
  await init();
  const device = await Device.create();
  const g = await device.loadGenerator(model);
  const opts = { maxTokens: newTokens, stopAtEos: false };
  await g.generateText(prompt, { maxTokens: 4 });
  let best = null;
  for (let i = 0; i < reps; i++) {
    const { stats } = await g.generateText(prompt, opts);
    if (!best || stats.decodeTokS > best.decodeTokS) best = stats;
  }
  const line = {
    op: "decode", model, dtype: "f32 activations, weights as stored",
    prompt_tokens: best.promptTokens, new_tokens: best.newTokens,
    prefill_tok_s: best.prefillTokS, decode_tok_s: best.decodeTokS,
    adapter: device.info.adapter,
  };
  window.benchResults.push(line);
  document.getElementById("out").textContent = JSON.stringify(line);
  document.getElementById("status").textContent = "done";
}

main()
  .catch((e) => { window.benchError = e.message ?? String(e); document.getElementById("status").textContent = window.benchError; })
  .finally(() => { window.benchDone = true; });
