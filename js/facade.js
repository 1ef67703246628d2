// The facade's behaviour, installed on a wasm-bindgen module's classes: js/index.js installs it on
// pkg/ (the package's entry point), js/threads.js on pkg-threads/ (the shared-memory build the worker
// mode loads on cross-origin-isolated pages). See index.js for what it adds.
import { cachedFetch, evict } from "./cache.js";
import { hasSimd128, NO_SIMD128 } from "./features.js";
import { EmbedderWorker, GeneratorWorker, ClassifierWorker, UpscalerWorker } from "./worker-client.js";

/** Patches `wasm`'s classes (caching loads, `Device.create` awaiting init, guards after `free()`,
 *  the `inWorker` loaders) and returns `ready(module_or_path)`, which runs `init` once. */
export function installFacade(wasm, init) {
  let initialized = null;
  /** Loads and instantiates the WASM module once; `module_or_path` as wasm-bindgen's `init`. Rejects
   *  with a message naming the browsers that can, where the engine lacks WebAssembly SIMD (the module
   *  would not compile). */
  function ready(module_or_path) {
    initialized ??= hasSimd128()
      ? init(module_or_path ? { module_or_path } : undefined)
      : Promise.reject(new Error(NO_SIMD128));
    return initialized;
  }

  // Runs `load(options)` with the caching fetch, recording which URLs came from the cache; if the load
  // fails while any did, those entries are evicted and the load runs once more from the network.
  async function withCache(options, load) {
    await ready();
    if (options?.cache === false || typeof caches === "undefined" || options?.fetch) return load(options ?? {});
    let fromCache = [];
    const fetch = async (url, init) => {
      const res = await cachedFetch(url, init);
      if (res.fromCache) fromCache.push(url);
      return res;
    };
    let model;
    try {
      model = await load({ ...options, fetch });
    } catch (e) {
      if (fromCache.length === 0 || options?.signal?.aborted) throw e;
      await Promise.all(fromCache.map(evict));
      fromCache = [];
      model = await load({ ...options, fetch });
    }
    // Whether any of the model's files came from the cache (shown by the demo, used by tests).
    model.fromCache = fromCache.length > 0;
    return model;
  }

  const wrapStatic = (cls, name) => {
    const raw = cls[name];
    cls[name] = (source, options) => withCache(options, (o) => raw.call(cls, source, o));
  };
  const wrapMethod = (cls, name) => {
    const raw = cls.prototype[name];
    cls.prototype[name] = function (source, options) {
      return withCache(options, (o) => raw.call(this, source, o));
    };
  };
  for (const cls of [wasm.Embedder, wasm.Generator, wasm.Classifier, wasm.Upscaler]) wrapStatic(cls, "load");
  wrapMethod(wasm.Device, "loadEmbedder");
  wrapMethod(wasm.Device, "loadGenerator");
  wrapMethod(wasm.Device, "loadClassifier");
  wrapMethod(wasm.Device, "loadUpscaler");
  wrapMethod(wasm.Device, "loadWeights");
  const rawCreate = wasm.Device.create;
  wasm.Device.create = async (options) => { await ready(); return rawCreate.call(wasm.Device, options); };

  // A call on an object after `free()` would reach Rust with a null pointer (wasm-bindgen's own
  // "null pointer passed to rust"); instead it throws saying what happened. `dispose()` is `free()`
  // under the worker mode's name. (`__wbg_ptr` is wasm-bindgen 0.2.130's handle; 0 once freed.)
  function guardFreed(cls, name) {
    const proto = cls.prototype;
    const guard = (f) => function (...args) {
      if (this.__wbg_ptr === 0) throw new Error(`this ${name} was disposed (free() or dispose()): load it again`);
      return f.apply(this, args);
    };
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === "constructor" || key === "free" || key.startsWith("__")) continue;
      const d = Object.getOwnPropertyDescriptor(proto, key);
      if (typeof d.value === "function") Object.defineProperty(proto, key, { ...d, value: guard(d.value) });
      else if (d.get) Object.defineProperty(proto, key, { ...d, get: guard(d.get) });
    }
    if (!proto.dispose) proto.dispose = function () { if (this.__wbg_ptr !== 0) this.free(); };
  }
  for (const [cls, name] of [[wasm.Embedder, "Embedder"], [wasm.Generator, "Generator"], [wasm.Weights, "Weights"],
    [wasm.Device, "Device"], [wasm.TensorData, "TensorData"], [wasm.Classifier, "Classifier"],
    [wasm.Upscaler, "Upscaler"]]) {
    guardFreed(cls, name);
  }

  /** Loads a sentence-embedding model in a Web Worker; see `EmbedderWorker`. */
  wasm.Embedder.inWorker = (source, options) => EmbedderWorker.load(source, options);
  /** Loads a text-generation model in a Web Worker; see `GeneratorWorker`. */
  wasm.Generator.inWorker = (source, options) => GeneratorWorker.load(source, options);
  /** Loads an image classifier in a Web Worker; see `ClassifierWorker`. */
  wasm.Classifier.inWorker = (source, options) => ClassifierWorker.load(source, options);
  /** Loads an upscaler in a Web Worker; see `UpscalerWorker`. */
  wasm.Upscaler.inWorker = (source, options) => UpscalerWorker.load(source, options);
  return { ready };
}
