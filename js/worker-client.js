// The page side of the worker mode: models run in a Web Worker (worker.js), so loading and inference
// never block the page's main thread. Progress, generated text and results come back as messages;
// embeddings, logits and upscaled pixels come back transferred (moved, not copied). Images go to the
// worker as ImageBitmaps (made by the browser from whatever the page passes, then transferred).

/** One Web Worker with one GPU device; several models may share it (`{ worker }` in the options). */
export class ModelWorker {
  /** Starts a worker and its device (`options.device`: `Device.create`'s options; `backend: "gpu"`
   *  rejects with the library's message when there is no WebGPU). `options.threads`: the CPU
   *  backend's threads on a cross-origin-isolated page (default: every core; `false`: one). */
  static async create(options = {}) {
    const w = new ModelWorker(new Worker(new URL("./worker.js", import.meta.url), { type: "module" }));
    try {
      w.info = await w.call("init", { options: options.device ?? {}, threads: options.threads });
    } catch (e) {
      w.terminate();
      throw e;
    }
    return w;
  }

  constructor(worker) {
    this.worker = worker;
    this.pending = new Map();
    this.nextId = 1;
    this.models = 0;
    /** The worker's adapter: a `DeviceInfo`. */
    this.info = null;
    worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      if (data.error !== undefined) { this.pending.delete(data.id); p.reject(new Error(data.error)); }
      else if (data.done) { this.pending.delete(data.id); p.resolve(data.result); }
      else p.onMessage?.(data);
    };
    worker.onerror = (ev) => {
      const err = new Error(`the model worker failed: ${ev.message ?? "error"} (is worker.js served next to index.js?)`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  /** Sends one operation; `onMessage` sees its progress / piece messages; `signal` cancels it. */
  call(op, args = {}, { onMessage, signal, transfer } = {}) {
    if (signal?.aborted) return Promise.reject(new DOMException("aborted", "AbortError"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onMessage });
      signal?.addEventListener("abort", () => this.worker.postMessage({ op: "cancel", target: id }), { once: true });
      this.worker.postMessage({ id, op, ...args }, transfer ?? []);
    });
  }

  /** The copy counters of the worker's device (`CopyStats`). */
  stats() { return this.call("stats"); }

  /** Ends the worker: every model in it is gone. */
  terminate() {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error("the model worker was terminated"));
    this.pending.clear();
  }
}

const splitOptions = (options = {}) => {
  const { onProgress, signal, worker, device, threads, ...rest } = options;
  return { onProgress, signal, worker, device, threads, rest };
};

class WorkerModel {
  constructor(host, handle, ownsWorker, fromCache) {
    this.host = host;
    this.handle = handle;
    this.ownsWorker = ownsWorker;
    /** Whether any of the model's files came from Cache Storage. */
    this.fromCache = fromCache;
    this.disposed = false;
  }

  static async loadIn(op, source, options) {
    const { onProgress, signal, worker, device, threads, rest } = splitOptions(options);
    const host = worker ?? await ModelWorker.create({ device, threads });
    try {
      const meta = await host.call(op, { source, options: rest }, {
        signal,
        onMessage: (m) => m.progress && onProgress?.(m.progress),
      });
      host.models++;
      return { host, meta, owns: !worker };
    } catch (e) {
      if (!worker) host.terminate();
      throw e;
    }
  }

  call(op, args, extra) {
    if (this.disposed) {
      for (const t of extra?.transfer ?? []) t.close?.(); // the bitmaps made for this call
      return Promise.reject(new Error("this model was disposed: load it again"));
    }
    return this.host.call(op, { handle: this.handle, ...args }, extra);
  }

  /** The worker's adapter (`DeviceInfo`). */
  get info() { return this.host.info; }

  /** The copy counters of the worker's device (`CopyStats`). */
  copyStats() { return this.host.stats(); }

  /** Frees the model's GPU memory; ends the worker too when this model started it. */
  async dispose() {
    if (this.disposed) return;
    this.disposed = true;
    await this.host.call("dispose", { handle: this.handle }).catch(() => {});
    this.host.models--;
    if (this.ownsWorker) this.host.terminate();
  }
}

/** `Embedder`'s API, run in a Web Worker. `Embedder.inWorker(source, options)` makes one. */
export class EmbedderWorker extends WorkerModel {
  /** `options`: those of `Embedder.load` (`onProgress`, `signal`, `cache`) plus `worker` (a
   *  `ModelWorker` to share) and `device` (`Device.create`'s options). */
  static async load(source, options) {
    const { host, meta, owns } = await WorkerModel.loadIn("loadEmbedder", source, options);
    const e = new EmbedderWorker(host, meta.handle, owns, meta.fromCache);
    e.dims = meta.dims;
    e.maxSeqLength = meta.maxSeqLength;
    e.backend = meta.backend;
    e.backendReason = meta.backendReason;
    return e;
  }

  /** One `Float32Array` of `dims` values a text. */
  embed(texts) { return this.call("embed", { texts }); }

  /** The token ids of `text` as the model sees it. */
  encode(text) { return this.call("encode", { text }); }

  /** Whether each text would be truncated at `maxSeqLength` tokens. */
  truncated(texts) { return this.call("truncated", { texts }); }
}

/** `Generator`'s API, run in a Web Worker. `Generator.inWorker(source, options)` makes one. */
export class GeneratorWorker extends WorkerModel {
  static async load(source, options) {
    const { host, meta, owns } = await WorkerModel.loadIn("loadGenerator", source, options);
    const g = new GeneratorWorker(host, meta.handle, owns, meta.fromCache);
    g.contextLength = meta.contextLength;
    g.modelContextLength = meta.modelContextLength;
    g.backend = meta.backend;
    g.backendReason = meta.backendReason;
    g.lastStats = null;
    return g;
  }

  /** The figures of the last finished generation (`GenerationStats`), or null. */
  get stats() { return this.lastStats; }

  /** The prompt's token ids (through the chat template when `chat`). */
  encode(prompt, chat = false) { return this.call("encode", { text: prompt, chat }); }

  /** `{ text, ids, stats }` of a whole generation. */
  async generateText(prompt, options = {}) {
    const { signal, ...rest } = options;
    const r = await this.call("generateText", { prompt, options: rest }, { signal });
    this.lastStats = r.stats;
    return r;
  }

  /** An async iterator of text pieces, as `Generator.generate`; `.stats` once it has ended. Breaking
   *  out of the loop, `return()`, or `options.signal` stop the generation in the worker. */
  generate(prompt, options = {}) {
    return this.#stream("generate", { prompt }, options);
  }

  /** `Generator.chat` in the worker: the assistant's next message after `messages`, streamed; the
   *  conversation's KV cache stays in the worker for the next call. */
  chat(messages, options = {}) {
    return this.#stream("chat", { messages }, options);
  }

  /** `{ text, ids, stopReason, stats }` of a whole chat turn (`Generator.chatText`). */
  async chatText(messages, options = {}) {
    const { signal, ...rest } = options;
    const r = await this.call("chatText", { messages, options: rest }, { signal });
    this.lastStats = r.stats;
    return r;
  }

  /** Forgets the conversation's cache (`Generator.resetChat`). */
  resetChat() { return this.call("resetChat"); }

  #stream(op, args, options) {
    const { signal, ...rest } = options;
    const queue = [];
    let wake = null;
    let finished = false;
    let failure = null;
    const cancel = new AbortController();
    signal?.addEventListener("abort", () => cancel.abort(), { once: true });
    const stream = {
      stats: null,
      [Symbol.asyncIterator]() { return this; },
      async next() {
        while (queue.length === 0 && !finished) await new Promise((r) => { wake = r; });
        if (queue.length > 0) return { value: queue.shift(), done: false };
        if (failure) throw failure;
        return { value: undefined, done: true };
      },
      async return() {
        cancel.abort();
        finished = true;
        return { value: undefined, done: true };
      },
    };
    const poke = () => { wake?.(); wake = null; };
    this.call(op, { ...args, options: rest }, {
      signal: cancel.signal,
      onMessage: (m) => { if (m.piece !== undefined) { queue.push(m.piece); poke(); } },
    }).then(
      (s) => { stream.stats = s; this.lastStats = s; },
      (e) => { failure = e; },
    ).finally(() => { finished = true; poke(); });
    return stream;
  }
}

// An ImageBitmap of `image` to transfer to the worker: a new one (the caller's own stays usable),
// decoded by the browser. HTMLImageElement, canvas, video, ImageData, ImageBitmap, OffscreenCanvas.
async function bitmapOf(image) {
  try {
    return await createImageBitmap(image);
  } catch (e) {
    throw new Error(`expected an ImageBitmap, HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, ImageData or HTMLVideoElement (${e.message})`);
  }
}

/** `Classifier`'s API, run in a Web Worker. `Classifier.inWorker(source, options)` makes one. */
export class ClassifierWorker extends WorkerModel {
  static async load(source, options) {
    const { host, meta, owns } = await WorkerModel.loadIn("loadClassifier", source, options);
    const c = new ClassifierWorker(host, meta.handle, owns, meta.fromCache);
    c.labels = meta.labels;
    c.imageSize = meta.imageSize;
    c.backend = meta.backend;
    c.backendReason = meta.backendReason;
    return c;
  }

  /** The `topK` most probable classes, `[{ index, label, score }]`. */
  async classify(image, topK = 5) {
    const bitmap = await bitmapOf(image);
    return this.call("classify", { image: bitmap, topK }, { transfer: [bitmap] });
  }

  /** All class logits, a `Float32Array`. */
  async logits(image) {
    const bitmap = await bitmapOf(image);
    return this.call("logits", { image: bitmap }, { transfer: [bitmap] });
  }
}

const canvasIds = new WeakMap();
let nextCanvas = 1;

/** `Upscaler`'s API, run in a Web Worker. `Upscaler.inWorker(source, options)` makes one. */
export class UpscalerWorker extends WorkerModel {
  static async load(source, options) {
    const { host, meta, owns } = await WorkerModel.loadIn("loadUpscaler", source, options);
    const u = new UpscalerWorker(host, meta.handle, owns, meta.fromCache);
    u.scale = meta.scale;
    u.tileSize = meta.tile;
    u.backend = meta.backend;
    u.backendReason = meta.backendReason;
    return u;
  }

  /** Sets the tile size (input pixels; the result does not depend on it). */
  async setTile(tile) { this.tileSize = await this.call("setTile", { tile }); }

  /** The upscaled image as an `ImageData`. */
  async upscale(image) {
    const bitmap = await bitmapOf(image);
    return this.call("upscale", { image: bitmap }, { transfer: [bitmap] });
  }

  /** Draws the upscaled image into `canvas` from the worker's GPU. The first call hands the canvas to
   *  the worker (`transferControlToOffscreen`): from then on only this worker can draw into it, and an
   *  `OffscreenCanvas` passed here is moved into the worker. Resolves with `{ width, height }`. */
  async upscaleToCanvas(image, canvas) {
    const bitmap = await bitmapOf(image);
    let canvasId = canvasIds.get(canvas);
    const args = { image: bitmap };
    const transfer = [bitmap];
    if (canvasId === undefined) {
      canvasId = nextCanvas++;
      const offscreen = typeof canvas.transferControlToOffscreen === "function" ? canvas.transferControlToOffscreen() : canvas;
      canvasIds.set(canvas, canvasId);
      args.canvas = offscreen;
      transfer.push(offscreen);
    }
    args.canvasId = canvasId;
    return this.call("upscaleToCanvas", args, { transfer });
  }
}
