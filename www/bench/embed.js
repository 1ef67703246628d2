// Embedding benchmark: webgpu-infer's Embedder against onnxruntime-web (its WebGPU EP and/or its WASM
// CPU EP: `ort=webgpu,wasm`, `ort_threads=2`; by default the one matching where ours runs) on the same
// model, same texts, same page, runs alternating.
// `backend=auto|gpu|cpu` places ours (auto: the CPU backend on a software adapter). Our time is `embed(texts)` end to end (tokenization, upload,
// the forward pass, pooling, normalisation, read-back); onnxruntime-web's is `session.run` (ids given,
// tokenized beforehand) plus pooling and normalisation in JS, as Transformers.js does them; and
// Transformers.js itself (its feature-extraction pipeline, WebGPU, fp32), end to end as ours is, when
// bench-peers/ holds it (scripts/fetch-web-peers.sh; `transformers=0` leaves it out).
// `worker=1`: ours runs in the worker mode (Embedder.inWorker), which on this cross-origin-isolated
// page takes the threaded build (pkg-threads/, scripts/build-threads.sh) with `threads` threads
// (default: every core; `threads=1` or a missing build: one).
import init, { Device } from "../../pkg/webgpu_infer.js";

const q = new URLSearchParams(location.search);
const modelDir = q.get("model") ?? "/models/all-MiniLM-L6-v2/";
const onnxUrl = q.get("onnx") ?? `${modelDir}onnx/model.onnx`;
const shapes = (q.get("shapes") ?? "8x128,1x128").split(",").map((s) => s.split("x").map(Number));
const reps = Number(q.get("reps") ?? 3);
// Default: the peer's EP that matches where ours runs (wasm against our CPU backend, webgpu against
// our GPU one).
let ortEps = q.get("ort")?.split(",").filter((e) => e && e !== "0") ?? null;
const ortThreads = Number(q.get("ort_threads") ?? 2);
const backend = q.get("backend") ?? "auto";
const withTransformers = q.get("transformers") !== "0";
const PEERS = "/bench-peers/transformers/";
const ORT_VERSION = "1.30.0";
window.benchResults = [];
const out = document.getElementById("out");
const status = (s) => { document.getElementById("status").textContent = s; };
const emit = (line) => { window.benchResults.push(line); out.textContent += JSON.stringify(line) + "\n"; };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Words that are one WordPiece token each in the uncased BERT vocabulary, so a text of n words is
// n + 2 tokens ([CLS] ... [SEP]); checked with the model's own tokenizer below.
const WORDS = ("the city grew along the river where people built houses of stone and wood while "
  + "traders brought salt fish and cloth from the north and the south every year in the warm season "
  + "when the roads were dry and the market was full of music food and news from far away").split(" ");

async function textsOf(embedder, batch, seq) {
  const texts = [];
  for (let b = 0; b < batch; b++) {
    const words = [];
    for (let i = 0; i < seq - 2; i++) words.push(WORDS[(i * (b + 1) + b) % WORDS.length]);
    const text = words.join(" ");
    const n = (await embedder.encode(text)).length;
    if (n !== seq) throw new Error(`text ${b} is ${n} tokens, not ${seq}: fix the word list`);
    texts.push(text);
  }
  return texts;
}

// Transformers.js' feature-extraction pipeline: mean over the mask, then L2 normalisation.
function poolAndNormalize(hidden, mask, batch, seq, dims) {
  const vecs = [];
  for (let b = 0; b < batch; b++) {
    const v = new Float32Array(dims);
    let count = 0;
    for (let s = 0; s < seq; s++) {
      if (!mask[b * seq + s]) continue;
      count++;
      const row = (b * seq + s) * dims;
      for (let d = 0; d < dims; d++) v[d] += hidden[row + d];
    }
    let norm = 0;
    for (let d = 0; d < dims; d++) { v[d] /= count; norm += v[d] * v[d]; }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    for (let d = 0; d < dims; d++) v[d] /= norm;
    vecs.push(v);
  }
  return vecs;
}

async function ortRunner(session, embedder, texts, seq) {
  const batch = texts.length;
  const ids = new BigInt64Array(batch * seq);
  for (const [b, t] of texts.entries()) (await embedder.encode(t)).forEach((id, s) => { ids[b * seq + s] = BigInt(id); });
  const mask = new BigInt64Array(batch * seq).fill(1n);
  const types = new BigInt64Array(batch * seq);
  const ort = window.ort;
  const feeds = {
    input_ids: new ort.Tensor("int64", ids, [batch, seq]),
    attention_mask: new ort.Tensor("int64", mask, [batch, seq]),
    token_type_ids: new ort.Tensor("int64", types, [batch, seq]),
  };
  const maskNum = new Uint8Array(batch * seq).fill(1);
  return async () => {
    const { last_hidden_state: h } = await session.run(feeds);
    const vecs = poolAndNormalize(h.data, maskNum, batch, seq, h.dims[2]);
    h.dispose?.();
    return vecs;
  };
}

// One session an execution provider: [{ ep, impl, session }].
async function loadOrt() {
  const ort = await import(`/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs`);
  ort.env.wasm.wasmPaths = "/node_modules/onnxruntime-web/dist/";
  ort.env.wasm.numThreads = ortThreads;
  ort.env.logLevel = "error";
  window.ort = ort;
  const head = await fetch(onnxUrl, { method: "HEAD" });
  if (!head.ok) {
    throw new Error(`${onnxUrl}: HTTP ${head.status}; export it first with scripts/export_minilm_onnx.py, or pass ort=0`);
  }
  const sessions = [];
  for (const ep of ortEps) {
    const session = await ort.InferenceSession.create(onnxUrl, {
      executionProviders: [ep], graphOptimizationLevel: "all",
    });
    const how = ep === "wasm" ? `wasm, ${crossOriginIsolated ? ortThreads : 1} thread${ortThreads > 1 ? "s" : ""}` : ep;
    sessions.push({ ep, impl: `onnxruntime-web ${ORT_VERSION} (${how})`, session });
  }
  return sessions;
}

// null when bench-peers/ lacks it (a line says so).
async function loadTransformers(tjsDevice) {
  const version = await fetch(`${PEERS}VERSION`);
  if (!version.ok) return null;
  const { pipeline, env } = await import(`${PEERS}transformers.min.js`);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = modelDir.replace(/[^/]+\/$/, "");
  env.useBrowserCache = false;
  env.backends.onnx.wasm.wasmPaths = PEERS;
  env.backends.onnx.logLevel = "error";
  const name = modelDir.replace(/\/$/, "").split("/").pop();
  env.backends.onnx.wasm.numThreads = ortThreads;
  const extractor = await pipeline("feature-extraction", name, { device: tjsDevice, dtype: "fp32" });
  return { extractor, impl: `transformers.js ${(await version.text()).trim()} (${tjsDevice}, fp32)` };
}

// Ours on this page, or in the worker mode (`worker=1`): { e, threads, where }.
async function loadOurs(device) {
  if (q.get("worker") !== "1") return { e: await device.loadEmbedder(modelDir), threads: 1, where: "" };
  const { Embedder } = await import("../../js/index.js");
  const threads = q.has("threads") ? Number(q.get("threads")) : true;
  const e = await Embedder.inWorker(modelDir, { backend, threads, cache: false });
  const info = e.host.info;
  return { e, threads: info.cpuThreads, where: `, worker mode${info.cpuThreadsNote ? `; ${info.cpuThreadsNote}` : ""}` };
}

async function main() {
  await init();
  const device = await Device.create({ backend });
  status("loading the model…");
  const { e, threads, where } = await loadOurs(device);
  ortEps ??= [e.backend === "cpu" ? "wasm" : "webgpu"];
  let ortSessions = [];
  if (ortEps.length) { status("loading onnxruntime-web…"); ortSessions = await loadOrt(); }
  let tjs = null;
  if (withTransformers) {
    status("loading Transformers.js…");
    tjs = await loadTransformers(e.backend === "cpu" ? "wasm" : "webgpu");
    if (!tjs) emit({ op: "embed", impl: "transformers.js", error: "not in bench-peers/: run scripts/fetch-web-peers.sh" });
  }
  // Ours runs where the device put it: the adapter, or the CPU backend (and why).
  const adapter = e.backend === "cpu"
    ? `cpu (wasm simd128${threads > 1 ? " + relaxed simd" : ""}, ${threads} thread${threads > 1 ? "s" : ""}${where}; ${e.backendReason})`
    : device.info.adapter;
  for (const [batch, seq] of shapes) {
    const texts = await textsOf(e, batch, seq);
    const ours = () => e.embed(texts);
    const peers = [];
    for (const o of ortSessions) peers.push({ ...o, run: await ortRunner(o.session, e, texts, seq) });
    status(`${batch}×${seq}: warming up…`);
    const a = await ours();
    for (const p of peers) {
      const b = await p.run();
      let maxDiff = 0;
      a.forEach((v, i) => v.forEach((x, d) => { maxDiff = Math.max(maxDiff, Math.abs(x - b[i][d])); }));
      p.maxDiff = maxDiff;
      p.times = [];
    }
    const oursTimes = [];
    for (let r = 0; r < reps; r++) {
      status(`${batch}×${seq}: run ${r + 1} of ${reps}…`);
      let t = performance.now(); await ours(); oursTimes.push(performance.now() - t);
      for (const p of peers) { t = performance.now(); await p.run(); p.times.push(performance.now() - t); }
    }
    const line = (impl, ms, adapterName = adapter) => ({
      op: "embed", impl, model: "all-MiniLM-L6-v2", batch, seq, ms: +ms.toFixed(1),
      texts_per_s: +(batch / (ms / 1000)).toFixed(2), adapter: adapterName,
    });
    const oursMs = median(oursTimes);
    const ourLine = { ...line("webgpu-infer", oursMs), backend: e.backend };
    for (const p of peers) {
      // ratio_vs_ort: against the WebGPU EP (as before); ratio_vs_ort_wasm: against the CPU EP.
      const key = p.ep === "webgpu" ? "ort" : `ort_${p.ep}`;
      ourLine[`ratio_vs_${key}`] = +(oursMs / median(p.times)).toFixed(3);
      ourLine[`max_abs_diff_vs_${key}`] = p.maxDiff;
    }
    emit(ourLine);
    for (const p of peers) emit(line(p.impl, median(p.times), p.ep === "wasm" ? "cpu (wasm)" : device.info.adapter));
    if (tjs) {
      const tjsRun = async () => (await tjs.extractor(texts, { pooling: "mean", normalize: true })).tolist();
      status(`${batch}×${seq}: Transformers.js, warming up…`);
      const b = await tjsRun();
      let maxDiff = 0;
      a.forEach((v, i) => v.forEach((x, d) => { maxDiff = Math.max(maxDiff, Math.abs(x - b[i][d])); }));
      const tt = { ours: [], tjs: [] };
      for (let r = 0; r < reps; r++) {
        status(`${batch}×${seq}: Transformers.js, run ${r + 1} of ${reps}…`);
        let t = performance.now(); await tjsRun(); tt.tjs.push(performance.now() - t);
        t = performance.now(); await ours(); tt.ours.push(performance.now() - t);
      }
      const o = median(tt.ours), th = median(tt.tjs);
      emit({ ...line("webgpu-infer", o), vs: "transformers.js", ratio_vs_transformers_js: +(o / th).toFixed(3),
        max_abs_diff_vs_transformers_js: maxDiff });
      emit(line(tjs.impl, th, e.backend === "cpu" ? "cpu (wasm)" : device.info.adapter));
    }
  }
  status("done");
}

main()
  .catch((err) => { window.benchError = err.message ?? String(err); status(window.benchError); })
  .finally(() => { window.benchDone = true; });
