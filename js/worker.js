// The Web Worker side of the worker mode: holds one Device and the models loaded into it, and answers
// the messages of worker-client.js: { id, op, ...args } → { id, progress } / { id, piece } while it
// runs, then { id, done: true, result } or { id, error }. { op: "cancel", target } aborts a call.
// On a cross-origin-isolated page the worker runs the shared-memory build (threads.js: the CPU
// backend's kernels on several threads) unless `threads: false`; else, or when that build is not
// there, the package's own (index.js, one thread).
import { clearCache } from "./cache.js";
import { hasRelaxedSimd } from "./features.js";

let lib = null;
let device = null;
let threadsNote = "";
const models = new Map();
const running = new Map();
const canvases = new Map();
let nextHandle = 1;

const model = (handle) => {
  const m = models.get(handle);
  if (!m) throw new Error(`model ${handle} was disposed (or never loaded in this worker)`);
  return m;
};
const keep = (m) => { const handle = nextHandle++; models.set(handle, m); return handle; };
const infoOf = (d) => ({ ...d.info });

/** The module to run: threads.js when allowed and possible (`threads`: false, true or a count). */
async function libFor(threads) {
  if (threads !== false && self.crossOriginIsolated && !hasRelaxedSimd()) {
    threadsNote = "one thread: this browser lacks WebAssembly relaxed SIMD, which the threaded build uses";
  } else if (threads !== false && self.crossOriginIsolated) {
    try {
      const t = await import("./threads.js");
      await t.ready(typeof threads === "number" ? threads : undefined);
      return t;
    } catch (e) {
      threadsNote = `one thread: the threaded build failed to start (${e?.message ?? e})`;
    }
  } else {
    threadsNote = threads === false ? "one thread: threads: false" : "one thread: the page is not cross-origin isolated";
  }
  const m = await import("./index.js");
  await m.ready();
  return m;
}

const ops = {
  async init({ options, threads }) {
    lib ??= await libFor(threads);
    device ??= await lib.Device.create(options);
    return { value: { ...infoOf(device), cpuThreads: lib.threads ?? 1, cpuThreadsNote: threadsNote } };
  },
  async loadEmbedder({ source, options }, signal, post) {
    const e = await device.loadEmbedder(source, { ...options, signal, onProgress: (p) => post({ progress: p }) });
    return { value: { handle: keep(e), dims: e.dims, maxSeqLength: e.maxSeqLength, backend: e.backend,
      backendReason: e.backendReason, fromCache: !!e.fromCache } };
  },
  async embed({ handle, texts }) {
    const vecs = await model(handle).embed(texts);
    return { value: vecs, transfer: vecs.map((v) => v.buffer) };
  },
  async encode({ handle, text, chat }) {
    return { value: model(handle).encode(text, chat) };
  },
  async truncated({ handle, texts }) {
    return { value: model(handle).truncated(texts) };
  },
  async loadGenerator({ source, options }, signal, post) {
    const g = await device.loadGenerator(source, { ...options, signal, onProgress: (p) => post({ progress: p }) });
    return { value: { handle: keep(g), contextLength: g.contextLength, modelContextLength: g.modelContextLength,
      backend: g.backend, backendReason: g.backendReason, fromCache: !!g.fromCache } };
  },
  async generate({ handle, prompt, options }, signal, post) {
    const g = model(handle);
    const stream = g.generate(prompt, { ...options, signal });
    for await (const piece of stream) post({ piece });
    return { value: stream.stats };
  },
  async chat({ handle, messages, options }, signal, post) {
    const stream = model(handle).chat(messages, { ...options, signal });
    for await (const piece of stream) post({ piece });
    return { value: stream.stats };
  },
  async chatText({ handle, messages, options }, signal) {
    const { text, ids, stopReason, stats: s } = await model(handle).chatText(messages, { ...options, signal });
    return { value: { text, ids, stopReason, stats: s } };
  },
  async resetChat({ handle }) {
    model(handle).resetChat();
    return { value: null };
  },
  async generateText({ handle, prompt, options }, signal) {
    const { text, ids, stats: s } = await model(handle).generateText(prompt, { ...options, signal });
    return { value: { text, ids, stats: s } };
  },
  async loadClassifier({ source, options }, signal, post) {
    const c = await device.loadClassifier(source, { ...options, signal, onProgress: (p) => post({ progress: p }) });
    return { value: { handle: keep(c), labels: c.labels, imageSize: c.imageSize, backend: c.backend,
      backendReason: c.backendReason, fromCache: !!c.fromCache } };
  },
  async classify({ handle, image, topK }) {
    try {
      return { value: await model(handle).classify(image, topK) };
    } finally {
      image.close?.();
    }
  },
  async logits({ handle, image }) {
    try {
      const l = await model(handle).logits(image);
      return { value: l, transfer: [l.buffer] };
    } finally {
      image.close?.();
    }
  },
  async loadUpscaler({ source, options }, signal, post) {
    const u = await device.loadUpscaler(source, { ...options, signal, onProgress: (p) => post({ progress: p }) });
    return { value: { handle: keep(u), scale: u.scale, tile: u.tile, backend: u.backend,
      backendReason: u.backendReason, fromCache: !!u.fromCache } };
  },
  async upscale({ handle, image }) {
    try {
      const d = await model(handle).upscale(image);
      return { value: d, transfer: [d.data.buffer] };
    } finally {
      image.close?.();
    }
  },
  // A page canvas arrives once, as an OffscreenCanvas (transferControlToOffscreen), under an id.
  async upscaleToCanvas({ handle, image, canvasId, canvas }) {
    if (canvas) canvases.set(canvasId, canvas);
    const target = canvases.get(canvasId);
    if (!target) throw new Error(`canvas ${canvasId} is unknown to this worker`);
    try {
      return { value: await model(handle).upscaleToCanvas(image, target) };
    } finally {
      image.close?.();
    }
  },
  async setTile({ handle, tile }) {
    model(handle).tile = tile;
    return { value: model(handle).tile };
  },
  async dispose({ handle }) {
    models.get(handle)?.free();
    models.delete(handle);
    return { value: models.size };
  },
  async stats() {
    return { value: lib.stats() };
  },
  async clearCache() {
    return { value: await clearCache() };
  },
};

self.onmessage = async ({ data: msg }) => {
  const { id, op } = msg;
  if (op === "cancel") {
    running.get(msg.target)?.abort();
    return;
  }
  const ctl = new AbortController();
  running.set(id, ctl);
  try {
    if (!ops[op]) throw new Error(`unknown worker operation ${JSON.stringify(op)}`);
    if (op !== "init" && !device) throw new Error("the worker has no device yet: call init first");
    const post = (m) => self.postMessage({ id, ...m });
    const { value, transfer } = await ops[op](msg, ctl.signal, post);
    self.postMessage({ id, done: true, result: value }, transfer ?? []);
  } catch (e) {
    self.postMessage({ id, error: String(e?.message ?? e) });
  } finally {
    running.delete(id);
  }
};
