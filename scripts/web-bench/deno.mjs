// The npm package's own WASM + JS, run through a WebGPU JS runtime outside a browser (Deno: its
// `navigator.gpu` is wgpu on the machine's Vulkan), as a page would run it: decoding, embeddings and
// the kernel benchmarks, JSON lines with "runtime" and the adapter on stdout.
//
//   deno run -A --unstable-webgpu scripts/web-bench/deno.mjs [--pkg pkg] [--models models]
//        [--only decode,recording,embed,kernels,webprofile] [--new-tokens 128] [--run-ahead 0,32] [--reps 3] [--embed-shapes 1x128,8x128,32x128]
//        [--kernel-ops matmul,gemv,attention,decode,copy] [--ort DIR]   (DIR: onnxruntime-web's dist/)
//        [--transformers DIR] (bench-peers/transformers: Transformers.js next to ours in `embed`)
//        [--wllama DIR]       (bench-peers/wllama: `--only wllama` decodes the same GGUF with wllama;
//                              needs `--location http://127.0.0.1/`, see wllamaDecode)
//
// scripts/gpu-web-bench.sh runs it on the GPU machine next to the native binaries;
// scripts/fetch-web-peers.sh fetches the peers.
import init, { Device } from "../../pkg/webgpu_infer.js";

const args = Deno.args;
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const root = new URL("../../", import.meta.url);
const abs = (p) => (p.startsWith("/") ? new URL(`file://${p}/`) : new URL(`${p}/`, root));
const pkg = abs(arg("pkg", "pkg"));
const models = abs(arg("models", "models"));
const only = (arg("only", "latency,runtime,decode,embed,kernels")).split(",");
const PROMPT = "The history of the city begins in the early middle ages, when a small settlement grew";
const reps = Number(arg("reps", "3"));
// scripts/web-bench/dawn-node.mjs runs this file in Node with Dawn (Chrome's WebGPU) and names itself.
const runtime = globalThis.WEB_BENCH_RUNTIME ?? `deno ${Deno.version.deno} webgpu`;
// --backend gpu: a software adapter (lavapipe, when debugging here) would otherwise pick the CPU.
const backend = arg("backend", "auto");
// An absolute directory path with a trailing slash (peers are imported through file:// URLs).
const dirOf = (p) => `${Deno.realPathSync(p)}/`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const emit = (line) => console.log(JSON.stringify({ runtime, ...line }));

// `--only wllama` runs a peer alone: no device of ours in its process.
const oursToo = only.some((w) => w !== "wllama");
let device = null, adapter;
if (oursToo) {
  await init({ module_or_path: await Deno.readFile(new URL("webgpu_infer_bg.wasm", pkg)) });
  // --cpu-kernels 0: a software adapter (lavapipe here) records what a hardware GPU's page records.
  const cpuKernels = arg("cpu-kernels");
  device = await Device.create(cpuKernels === undefined ? { backend } : { backend, cpuKernels: cpuKernels !== "0" });
  adapter = device.info.adapter;
  const raw = (await navigator.gpu.requestAdapter()).info;
  const { software, subgroups, shaderF16, features } = device.info;
  emit({ op: "adapter_info", is_fallback_adapter: raw.isFallbackAdapter, software, subgroups,
    shader_f16: shaderF16, features, adapter });
} else {
  const info = (await navigator.gpu.requestAdapter()).info;
  adapter = `${info.description || info.device || info.vendor} (BrowserWebGpu)`;
}
console.error(`[web-bench] ${runtime}, adapter ${adapter}`);

async function decode() {
  const model = new URL(arg("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"), models).href;
  const g = await device.loadGenerator(model);
  const prompt = PROMPT;
  await g.generateText(prompt, { maxTokens: 8, stopAtEos: false }); // pipelines compile here
  // --run-ahead 0,32: each value a set of runs (0: the library's choice); older packages ignore it.
  const runAheads = arg("run-ahead", "0").split(",").map(Number);
  for (const runAhead of runAheads)
  for (const newTokens of arg("new-tokens", "128").split(",").map(Number)) {
    const runs = [];
    for (let r = 0; r < reps; r++) {
      const opts = { maxTokens: newTokens, stopAtEos: false };
      if (runAhead > 0) opts.runAhead = runAhead;
      const { stats } = await g.generateText(prompt, opts);
      runs.push(stats);
    }
    const best = runs.reduce((a, b) => (b.decodeTokS > a.decodeTokS ? b : a));
    emit({
      op: "decode", model: model.split("/").pop(), prompt_tokens: best.promptTokens, run_ahead: runAhead,
      new_tokens: best.newTokens, decode_tok_s: +best.decodeTokS.toFixed(1),
      decode_tok_s_runs: runs.map((s) => +s.decodeTokS.toFixed(1)),
      ttft_ms: +median(runs.map((s) => s.prefillMs)).toFixed(2),
      prefill_tok_s: +median(runs.map((s) => s.prefillTokS)).toFixed(1),
      bytes_read_back_per_token: best.bytesReadBackPerToken,
      record_ms: best.recordMs === undefined ? null : +best.recordMs.toFixed(1), // older packages lack
      wait_ms: best.waitMs === undefined ? null : +best.waitMs.toFixed(1), // the time split
      decode_ms: +best.decodeMs.toFixed(1), adapter,
    });
  }
}

// The CPU cost of a decoding step on this runtime (`Generator.recordingCost`): recording the model's
// and the sampler's kernels through the WebGPU API and finishing the encoder, nothing submitted, so
// the GPU plays no part: what a token costs the page's JS thread. `--record-steps N` (100).
async function recording() {
  const g = await device.loadGenerator(new URL(arg("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"), models).href);
  if (!g.recordingCost) return emit({ op: "recording", error: "this package has no recordingCost", adapter });
  const steps = Number(arg("record-steps", "100"));
  // Then with each step submitted: `finish_ms` is then the submit's cost on this thread (Dawn's
  // native bindings encode the backend's commands there; a browser does it in its GPU process).
  for (const submit of [false, true]) {
    const runs = [];
    for (let r = 0; r < reps; r++) runs.push(g.recordingCost(steps, submit));
    emit({ op: "recording", steps, submit, record_ms: +median(runs.map((x) => x.recordMs)).toFixed(4),
      record_ms_runs: runs.map((x) => +x.recordMs.toFixed(4)),
      finish_ms: +median(runs.map((x) => x.finishMs)).toFixed(4), adapter });
  }
}

// Words that are one WordPiece token each (the browser page's list): n words are n + 2 tokens.
const WORDS = ("the city grew along the river where people built houses of stone and wood while "
  + "traders brought salt fish and cloth from the north and the south every year in the warm season "
  + "when the roads were dry and the market was full of music food and news from far away").split(" ");

// onnxruntime-web (the engine Transformers.js runs on), WebGPU execution provider, same runtime and
// GPU: `session.run` on the model exported to ONNX (scripts/export_minilm_onnx.py) with the ids our
// tokenizer gives, then mean pooling and normalisation in JS, as Transformers.js does them.
async function ortEmbedder(dir) {
  const ortDir = dir.endsWith("/") ? dir : `${dir}/`;
  const ort = await import(`file://${ortDir}ort.webgpu.min.mjs`);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = `file://${ortDir}`;
  ort.env.logLevel = "error";
  const bytes = await Deno.readFile(new URL("all-MiniLM-L6-v2/onnx/model.onnx", models));
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"], graphOptimizationLevel: "all" });
  return { ort, session };
}

// Transformers.js (its `feature-extraction` pipeline, WebGPU, fp32: what its docs show for this
// model), loading the same folder (config.json, tokenizer.json, onnx/model.onnx) from file:// URLs.
// Deno is a runtime it knows ("Deno's web runtime"): there it wants the WASM paths as an object and
// its WASM cache on.
async function transformersEmbedder(dir) {
  const tdir = dirOf(dir);
  const { pipeline, env } = await import(`file://${tdir}transformers.min.js`);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = models.href;
  env.useBrowserCache = false;
  env.useWasmCache = true;
  env.backends.onnx.wasm.numThreads = 1;
  env.backends.onnx.wasm.wasmPaths = {
    mjs: `file://${tdir}ort-wasm-simd-threaded.asyncify.mjs`,
    wasm: `file://${tdir}ort-wasm-simd-threaded.asyncify.wasm`,
  };
  env.backends.onnx.logLevel = "error";
  const extractor = await pipeline("feature-extraction", "all-MiniLM-L6-v2", { device: "webgpu", dtype: "fp32" });
  const version = (await Deno.readTextFile(`${tdir}VERSION`)).trim();
  return { extractor, impl: `transformers.js ${version} (webgpu, fp32)` };
}

function poolAndNormalize(hidden, batch, seq, dims) {
  const vecs = [];
  for (let b = 0; b < batch; b++) {
    const v = new Float32Array(dims);
    for (let s = 0; s < seq; s++) for (let d = 0; d < dims; d++) v[d] += hidden[(b * seq + s) * dims + d];
    let norm = 0;
    for (let d = 0; d < dims; d++) { v[d] /= seq; norm += v[d] * v[d]; }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    for (let d = 0; d < dims; d++) v[d] /= norm;
    vecs.push(v);
  }
  return vecs;
}

// Times `theirs` and `ours` run after run, alternating (the same conditions for both): ms lists.
async function alternate(theirs, ours, runs) {
  const out = { theirs: [], ours: [] };
  for (let r = 0; r < runs; r++) {
    for (const [name, run] of [["theirs", theirs], ["ours", ours]]) {
      const t = performance.now();
      await run();
      out[name].push(performance.now() - t);
    }
  }
  return out;
}

async function embed() {
  const e = await device.loadEmbedder(new URL("all-MiniLM-L6-v2/", models).href);
  const ortDir = arg("ort", null);
  let peer = null, tjs = null;
  if (ortDir) {
    try { peer = await ortEmbedder(ortDir); } catch (err) { emit({ op: "embed", impl: "onnxruntime-web", error: String(err?.message ?? err), adapter }); }
  }
  const tjsDir = arg("transformers", null);
  if (tjsDir) {
    try { tjs = await transformersEmbedder(tjsDir); } catch (err) { emit({ op: "embed", impl: "transformers.js", error: String(err?.message ?? err), adapter }); }
  }
  for (const [batch, seq] of arg("embed-shapes", "1x128,8x128,32x128").split(",").map((s) => s.split("x").map(Number))) {
    const texts = [];
    for (let b = 0; b < batch; b++) {
      const words = [];
      for (let i = 0; i < seq - 2; i++) words.push(WORDS[(i * (b + 1) + b) % WORDS.length]);
      texts.push(words.join(" "));
    }
    const n = e.encode(texts[0]).length;
    if (n !== seq) throw new Error(`text is ${n} tokens, not ${seq}`);
    await e.embed(texts);
    const times = [];
    for (let r = 0; r < Math.max(reps, 5); r++) {
      const t = performance.now();
      await e.embed(texts);
      times.push(performance.now() - t);
    }
    const ours = median(times);
    const line = { op: "embed", impl: "webgpu-infer", model: "all-MiniLM-L6-v2", batch, seq,
      ms: +ours.toFixed(2), ms_runs: times.map((t) => +t.toFixed(2)), adapter };
    if (peer) {
      const { ort, session } = peer;
      const ids = new BigInt64Array(batch * seq);
      texts.forEach((t, b) => e.encode(t).forEach((id, s) => { ids[b * seq + s] = BigInt(id); }));
      const feeds = {
        input_ids: new ort.Tensor("int64", ids, [batch, seq]),
        attention_mask: new ort.Tensor("int64", new BigInt64Array(batch * seq).fill(1n), [batch, seq]),
        token_type_ids: new ort.Tensor("int64", new BigInt64Array(batch * seq), [batch, seq]),
      };
      const theirs = async () => {
        const { last_hidden_state: h } = await session.run(feeds);
        return poolAndNormalize(h.data, batch, seq, h.dims[2]);
      };
      // The same vectors (a check that the peer ran the model, e.g. through dawn.mjs's shim).
      const mine = await e.embed(texts), other = await theirs();
      let maxDiff = 0;
      mine.forEach((v, i) => v.forEach((x, d) => { maxDiff = Math.max(maxDiff, Math.abs(x - other[i][d])); }));
      line.max_abs_diff_vs_ort = maxDiff;
      const alt = await alternate(theirs, () => e.embed(texts), Math.max(reps, 5));
      const ortTimes = alt.theirs;
      times.push(...alt.ours);
      const ortMs = median(ortTimes);
      line.ms = +median(times).toFixed(2);
      line.ms_runs = times.map((t) => +t.toFixed(2));
      line.ratio_vs_ort = +(median(times) / ortMs).toFixed(3);
      emit(line);
      emit({ op: "embed", impl: "onnxruntime-web 1.30.0 (webgpu)", model: "all-MiniLM-L6-v2", batch, seq,
        ms: +ortMs.toFixed(2), ms_runs: ortTimes.map((t) => +t.toFixed(2)), adapter });
    } else {
      emit(line);
    }
    if (tjs) {
      // End to end as ours is (tokenization, the forward pass, pooling, normalisation, read-back),
      // alternating with ours.
      const theirs = async () => (await tjs.extractor(texts, { pooling: "mean", normalize: true })).tolist();
      const a = await e.embed(texts), b = await theirs();
      let maxDiff = 0;
      a.forEach((v, i) => v.forEach((x, d) => { maxDiff = Math.max(maxDiff, Math.abs(x - b[i][d])); }));
      const { theirs: tTimes, ours: oTimes } = await alternate(theirs, () => e.embed(texts), Math.max(reps, 5));
      const tMs = median(tTimes), oMs = median(oTimes);
      emit({ op: "embed", impl: "webgpu-infer", vs: "transformers.js", model: "all-MiniLM-L6-v2", batch, seq,
        ms: +oMs.toFixed(2), ms_runs: oTimes.map((t) => +t.toFixed(2)), ratio_vs_transformers_js: +(oMs / tMs).toFixed(3),
        max_abs_diff_vs_transformers_js: maxDiff, adapter });
      emit({ op: "embed", impl: tjs.impl, model: "all-MiniLM-L6-v2", batch, seq,
        ms: +tMs.toFixed(2), ms_runs: tTimes.map((t) => +t.toFixed(2)), adapter });
    }
  }
}

// wllama (llama.cpp compiled to WASM with its WebGPU backend) on the same GGUF, greedy, the prompt
// and token counts of `decode`; its own timings (llama.cpp's prompt_ms / predicted_per_second) and
// the wall clock. Run in a process of its own (`--only wllama`). Two shims for this runtime, neither
// touching wllama's work: Deno gives workers a Node-like `process`, so the Emscripten worker would
// take itself for Node and call require() (the worker's `process` is hidden), and Emscripten fetches
// its WASM over http (file:// goes through XMLHttpRequest, which Deno lacks), so a local server
// serves it; wllama also reads `self.location` (deno's --location).
async function wllamaDecode() {
  const dir = arg("wllama", null);
  if (!dir) throw new Error("--only wllama needs --wllama DIR (scripts/fetch-web-peers.sh)");
  const wdir = dirOf(dir);
  const NativeWorker = globalThis.Worker;
  globalThis.Worker = class extends NativeWorker {
    constructor(url, opts) {
      // --wllama-count-maps: the worker also counts its mapAsync / onSubmittedWorkDone calls (every
      // one waits ≥ 10 ms in Deno) and prints the counts every 5 s.
      const count = args.includes("--wllama-count-maps") ? `
        const n = { mapAsync: 0, onSubmittedWorkDone: 0 };
        for (const [proto, name] of [[GPUBuffer.prototype, "mapAsync"], [GPUQueue.prototype, "onSubmittedWorkDone"]]) {
          const f = proto[name];
          proto[name] = function (...a) { n[name]++; return f.apply(this, a); };
        }
        setInterval(() => console.error("[wllama worker] " + JSON.stringify(n)), 5000);` : "";
      const src = `delete globalThis.process;${count}\nawait import(${JSON.stringify(String(url))});`;
      super(URL.createObjectURL(new Blob([src], { type: "text/javascript" })), opts);
    }
  };
  const wasm = await Deno.readFile(`${wdir}esm/wasm/wllama.wasm`);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response(wasm, { headers: { "content-type": "application/wasm" } }));
  try {
    await wllamaRuns(wdir, `http://127.0.0.1:${server.addr.port}/wllama.wasm`);
  } finally {
    await server.shutdown();
  }
}

async function wllamaRuns(wdir, wasmUrl) {
  const version = (await Deno.readTextFile(`${wdir}VERSION`)).trim();
  const { Wllama } = await import(`file://${wdir}esm/index.js`);
  const quiet = { debug() {}, log() {}, warn: (...a) => console.error(...a), error: (...a) => console.error(...a) };
  const gguf = await Deno.readFile(new URL(arg("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"), models));
  for (const gpu of (arg("wllama-gpu", "99,0")).split(",").map(Number)) {
    const w = new Wllama({ default: wasmUrl },
      { logger: quiet, cacheManager: {}, suppressNativeLog: true });
    const t0 = performance.now();
    await w.loadModel([new Blob([gguf])], { n_ctx: 1024, n_gpu_layers: gpu, n_threads: 1 });
    const loadMs = performance.now() - t0;
    const complete = (n) => w.createCompletion({ prompt: PROMPT, max_tokens: n, temperature: 0,
      ignore_eos: true, cache_prompt: false });
    await complete(8); // warm-up (pipelines compile)
    for (const newTokens of arg("new-tokens", "128").split(",").map(Number)) {
      const runs = [];
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        const res = await complete(newTokens);
        runs.push({ wall: performance.now() - t, timings: res.timings, text: res.choices?.[0]?.text ?? "" });
      }
      const best = runs.reduce((a, b) => (b.timings.predicted_per_second > a.timings.predicted_per_second ? b : a));
      emit({
        op: "decode", impl: `wllama ${version} (${gpu ? "webgpu" : "cpu, 1 thread"})`,
        model: "SmolLM2-135M-Instruct.Q4_1.gguf", prompt_tokens: best.timings.prompt_n,
        new_tokens: best.timings.predicted_n, decode_tok_s: +best.timings.predicted_per_second.toFixed(1),
        decode_tok_s_runs: runs.map((x) => +x.timings.predicted_per_second.toFixed(1)),
        ttft_ms: +median(runs.map((x) => x.timings.prompt_ms)).toFixed(2),
        wall_ms: +median(runs.map((x) => x.wall)).toFixed(1), load_ms: +loadMs.toFixed(0),
        text_start: best.text.slice(0, 48), adapter: gpu ? adapter : "cpu (wasm)",
      });
    }
    await w.exit();
  }
}

async function kernels() {
  const ops = arg("kernel-ops", "copy,matmul,gemv,attention,decode").split(",");
  // A device of its own: the generator's pooled buffers (its prefill's dequantized weights) would
  // otherwise fill the pool, and every benchmark output would be a new, zero-filled buffer.
  // `profile: true` asks for timestamp-query: where the runtime has it, each line also carries the
  // GPU time ("gpu_ms") next to the wall time.
  const kernelDevice = await Device.create({ backend, profile: true });
  await kernelDevice.benchKernels({ ops, maxSquare: 4096, maxSeq: 2048, targetMs: 200 }, (line) => {
    emit(JSON.parse(line));
  });
}

// The runtime's own floor, without the library: a 16-byte copy submitted, then mapAsync of its
// destination (what each read-back waits for), and onSubmittedWorkDone after an empty submit.
async function latency() {
  const adapter2 = await navigator.gpu.requestAdapter();
  const dev = await adapter2.requestDevice();
  const src = dev.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC });
  const map = [], done = [];
  for (let i = 0; i < 20; i++) {
    const dst = dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, dst, 0, 16);
    dev.queue.submit([enc.finish()]);
    let t = performance.now();
    await dst.mapAsync(GPUMapMode.READ);
    map.push(performance.now() - t);
    dst.destroy();
    dev.queue.submit([]);
    t = performance.now();
    await dev.queue.onSubmittedWorkDone();
    done.push(performance.now() - t);
  }
  emit({ op: "latency", map_async_ms: +median(map).toFixed(3), on_submitted_work_done_ms: +median(done).toFixed(3), adapter });
  dev.destroy();
}

// What the runtime itself gives, without the library: bandwidth of copyBufferToBuffer and of a plain
// copy shader over 256 MiB, and the CPU cost of encoding a dispatch (1000 tiny dispatches, one bind
// group, one pass) next to the GPU time they take.
async function runtimeProbe() {
  const adapter2 = await navigator.gpu.requestAdapter();
  const dev = await adapter2.requestDevice({ requiredLimits: {
    maxStorageBufferBindingSize: adapter2.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter2.limits.maxBufferSize } });
  const bytes = Math.min(256 * 2 ** 20, adapter2.limits.maxStorageBufferBindingSize);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const a = dev.createBuffer({ size: bytes, usage }), b = dev.createBuffer({ size: bytes, usage });
  const timed = async (reps, encode) => {
    const enc = dev.createCommandEncoder();
    encode(enc, 1);
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    const enc2 = dev.createCommandEncoder();
    encode(enc2, reps);
    const t1 = performance.now();
    dev.queue.submit([enc2.finish()]);
    await dev.queue.onSubmittedWorkDone();
    return { encode_ms: t1 - t0, total_ms: performance.now() - t0 };
  };
  const c = await timed(20, (enc, n) => { for (let i = 0; i < n; i++) enc.copyBufferToBuffer(a, 0, b, 0, bytes); });
  emit({ op: "runtime_copy_buffer", bytes, reps: 20, total_ms: +c.total_ms.toFixed(2),
    gbps_incl_latency: +(2 * bytes * 20 / (c.total_ms * 1e6)).toFixed(1), adapter });
  // The same copies, one submit each.
  let t = performance.now();
  for (let i = 0; i < 20; i++) {
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(a, 0, b, 0, bytes);
    dev.queue.submit([enc.finish()]);
  }
  const submitMs = performance.now() - t;
  await dev.queue.onSubmittedWorkDone();
  const total = performance.now() - t;
  emit({ op: "runtime_copy_buffer_submits", bytes, submits: 20, submit_calls_ms: +submitMs.toFixed(2),
    total_ms: +total.toFixed(2), adapter });
  const module = dev.createShaderModule({ code: `
    @group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
    @group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
    @compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>,
        @builtin(num_workgroups) n: vec3<u32>) {
      let i = g.x + g.y * n.x * 256u;
      if (i < arrayLength(&x)) { y[i] = x[i]; }
    }` });
  const pipeline = dev.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const group = dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [
    { binding: 0, resource: { buffer: a } }, { binding: 1, resource: { buffer: b } }] });
  const vecs = bytes / 16, wg = vecs / 256;
  const k = await timed(20, (enc, n) => {
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline); pass.setBindGroup(0, group);
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(Math.min(wg, 32768), Math.ceil(wg / 32768));
    pass.end();
  });
  emit({ op: "runtime_copy_shader", bytes, reps: 20, total_ms: +k.total_ms.toFixed(2),
    gbps_incl_latency: +(2 * bytes * 20 / (k.total_ms * 1e6)).toFixed(1), adapter });
  const small = dev.createBuffer({ size: 4096, usage });
  const g2 = dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [
    { binding: 0, resource: { buffer: small } }, { binding: 1, resource: { buffer: b, size: 4096 } }] });
  const d = await timed(1000, (enc, n) => {
    const pass = enc.beginComputePass();
    for (let i = 0; i < n; i++) { pass.setPipeline(pipeline); pass.setBindGroup(0, g2); pass.dispatchWorkgroups(1); }
    pass.end();
  });
  emit({ op: "runtime_dispatch", dispatches: 1000, encode_us_per_dispatch: +(d.encode_ms).toFixed(3),
    total_us_per_dispatch: +(d.total_ms).toFixed(3), adapter });
  dev.destroy();
}

// GPU time by kernel as the runtime runs them (a device with `{ profile: true }`: timestamp-query;
// under Dawn pass `--dawn-toggles disable-dawn-features=timestamp_quantization`, or times come in
// 100 µs steps as in Chrome): MiniLM at 1 and 32 × 128 tokens, a 15-token prefill and 16 decoding
// steps. One "webprofile" line a kernel.
async function webProfile() {
  const dev = await Device.create({ backend, profile: true });
  const e = await dev.loadEmbedder(new URL("all-MiniLM-L6-v2/", models).href);
  const texts = (batch) => Array.from({ length: batch }, (_, b) =>
    Array.from({ length: 126 }, (_, i) => WORDS[(i * (b + 1) + b) % WORDS.length]).join(" "));
  const report = async (what, run) => {
    await run();
    dev.setProfiling(true);
    const t = performance.now();
    await run();
    const wall = performance.now() - t;
    dev.setProfiling(false);
    const kernels = await dev.takeProfile();
    const gpuMs = kernels.reduce((a, k) => a + k.ms, 0);
    emit({ op: "webprofile", what, wall_ms: +wall.toFixed(2), gpu_ms: +gpuMs.toFixed(3),
      dispatches: kernels.reduce((a, k) => a + k.dispatches, 0), adapter });
    for (const k of kernels) emit({ op: "webprofile", what, kernel: k.kernel, dispatches: k.dispatches, ms: +k.ms.toFixed(4), adapter });
  };
  for (const batch of [1, 32]) {
    const t = texts(batch);
    await report(`embed ${batch}x128`, () => e.embed(t));
  }
  const g = await dev.loadGenerator(new URL(arg("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"), models).href);
  await report("generate 17-token prompt + 16 tokens", () => g.generateText(PROMPT, { maxTokens: 16, stopAtEos: false }));
}

// The probes make devices of their own: they run last, so that the library's runs share the runtime
// with nothing else.
for (const [name, run] of [["decode", decode], ["recording", recording], ["embed", embed], ["kernels", kernels], ["wllama", wllamaDecode],
  ["webprofile", webProfile],
  ["latency", latency], ["runtime", runtimeProbe]]) {
  if (!only.includes(name)) continue;
  try {
    await run();
  } catch (e) {
    emit({ op: name, error: String(e?.message ?? e), adapter });
  }
}
