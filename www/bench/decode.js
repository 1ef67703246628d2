// Decoding benchmark: load a Generator, warm up (pipelines compile), then the best of `reps` runs; then
// wllama (llama.cpp in WASM) on the same GGUF, prompt and token count, with its WebGPU backend and with
// its CPU backend (what a user without a GPU gets), when bench-peers/ holds it
// (scripts/fetch-web-peers.sh; `wllama=0` leaves it out). Its multi-threaded CPU backend needs a
// cross-origin isolated page: scripts/bench-browser.mjs serves one.
// `backend=cpu`: ours on the CPU backend (on this page: one thread); with `worker=1` in the worker
// mode (Generator.inWorker: the threaded build on every core, or `threads=N`). `wllama_gpu=0` leaves
// out wllama's WebGPU run (its CPU run is the peer of our CPU backend); `wllama_threads=N` its CPU
// threads (default: every core on a cross-origin-isolated page, else 1). `recording=N`: see recording().
import init, { Device } from "../../pkg/webgpu_infer.js";

const q = new URLSearchParams(location.search);
const model = q.get("model") ?? "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const newTokens = Number(q.get("new_tokens") ?? 32);
const reps = Number(q.get("reps") ?? 2);
const prompt = "The history of the city begins in the early middle ages, when a small settlement grew";
const withWllama = q.get("wllama") !== "0";
const backend = q.get("backend") ?? "auto";
const wllamaGpu = q.get("wllama_gpu") !== "0";
const WLLAMA = "/bench-peers/wllama/";
window.benchResults = [];
const emit = (line) => {
  window.benchResults.push(line);
  document.getElementById("out").textContent += JSON.stringify(line) + "\n";
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// wllama: its own timings (llama.cpp's prompt_ms and predicted_per_second), greedy, no prompt cache.
async function wllama(adapter) {
  const version = await fetch(`${WLLAMA}VERSION`);
  if (!version.ok) {
    emit({ op: "decode", impl: "wllama", error: "not in bench-peers/: run scripts/fetch-web-peers.sh" });
    return;
  }
  const v = (await version.text()).trim();
  const { Wllama } = await import(`${WLLAMA}esm/index.js`);
  const gguf = await (await fetch(model)).blob();
  const threads = q.has("wllama_threads") ? Number(q.get("wllama_threads"))
    : self.crossOriginIsolated ? navigator.hardwareConcurrency : 1;
  const runs = [[99, "webgpu"], [0, `cpu, ${threads} thread${threads > 1 ? "s" : ""}`]];
  for (const [gpu, label] of runs.filter(([g]) => wllamaGpu || g === 0)) {
    const w = new Wllama({ default: `${WLLAMA}esm/wasm/wllama.wasm` }, {
      suppressNativeLog: true, logger: { debug() {}, log() {}, warn: console.warn, error: console.error },
    });
    try {
      await w.loadModel([gguf], { n_ctx: 1024, n_gpu_layers: gpu, n_threads: threads });
      const complete = (n) => w.createCompletion({ prompt, max_tokens: n, temperature: 0, ignore_eos: true, cache_prompt: false });
      await complete(4);
      const runs = [];
      for (let i = 0; i < reps; i++) runs.push((await complete(newTokens)).timings);
      const best = runs.reduce((a, b) => (b.predicted_per_second > a.predicted_per_second ? b : a));
      emit({
        op: "decode", impl: `wllama ${v} (${label})`, model, prompt_tokens: best.prompt_n,
        new_tokens: best.predicted_n, prefill_tok_s: +(best.prompt_n / (best.prompt_ms / 1000)).toFixed(2),
        decode_tok_s: +best.predicted_per_second.toFixed(2),
        ttft_ms: +median(runs.map((r) => r.prompt_ms)).toFixed(1),
        adapter: gpu ? adapter : "cpu (wasm)",
      });
    } catch (e) {
      emit({ op: "decode", impl: `wllama ${v} (${label})`, error: String(e?.message ?? e) });
    } finally {
      await w.exit().catch(() => {});
    }
  }
}

// Ours on this page, or in the worker mode (`worker=1`): { g, where, adapter }.
async function loadOurs(device) {
  if (q.get("worker") !== "1") {
    const g = await device.loadGenerator(model, { backend });
    const where = g.backend === "cpu" ? " (cpu, 1 thread)" : "";
    return { g, where, adapter: device.info.adapter };
  }
  const { Generator } = await import("../../js/index.js");
  const threads = q.has("threads") ? Number(q.get("threads")) : true;
  const g = await Generator.inWorker(model, { backend, threads, cache: false, device: { backend } });
  const info = g.host.info;
  const where = ` (${backend}, worker mode, ${info.cpuThreads} thread${info.cpuThreads > 1 ? "s" : ""})`;
  return { g, where, adapter: info.adapter };
}

// `recording=N`: instead of decoding, the CPU cost of a decoding step on this page's thread
// (`Generator.recordingCost`: the kernels recorded through the browser's WebGPU and the encoder
// finished, nothing submitted, so the adapter's speed plays no part), averaged over N steps, `reps`
// times. With `cpu_kernels=0` a software adapter records the kernels a hardware GPU gets.
async function recording(g, adapter) {
  const steps = Number(q.get("recording"));
  const runs = [];
  for (let i = 0; i < reps; i++) runs.push(g.recordingCost(steps, false));
  emit({
    op: "recording", impl: "webgpu-infer", model, steps, cpu_kernels: q.get("cpu_kernels") !== "0",
    record_ms: +median(runs.map((r) => r.recordMs)).toFixed(4),
    record_ms_runs: runs.map((r) => +r.recordMs.toFixed(4)),
    finish_ms: +median(runs.map((r) => r.finishMs)).toFixed(4), adapter,
  });
}

async function main() {
  await init();
  const device = await Device.create(q.has("cpu_kernels") ? { backend, cpuKernels: q.get("cpu_kernels") !== "0" } : { backend });
  const { g, where, adapter } = await loadOurs(device);
  if (q.has("recording")) return recording(g, adapter);
  const opts = { maxTokens: newTokens, stopAtEos: false };
  await g.generateText(prompt, { maxTokens: 4 });
  let best = null;
  for (let i = 0; i < reps; i++) {
    const { stats } = await g.generateText(prompt, opts);
    if (!best || stats.decodeTokS > best.decodeTokS) best = stats;
  }
  const line = {
    op: "decode", impl: `webgpu-infer${where}`, model, dtype: "f32 activations, weights as stored",
    prompt_tokens: best.promptTokens, new_tokens: best.newTokens,
    prefill_tok_s: best.prefillTokS, decode_tok_s: best.decodeTokS, ttft_ms: +best.prefillMs.toFixed(1),
    adapter,
  };
  emit(line);
  if (withWllama) {
    document.getElementById("status").textContent = "wllama…";
    await wllama(device.info.adapter);
  }
  document.getElementById("status").textContent = "done";
}

main()
  .catch((e) => { window.benchError = e.message ?? String(e); document.getElementById("status").textContent = window.benchError; })
  .finally(() => { window.benchDone = true; });
