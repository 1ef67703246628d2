// webgpu-infer: the npm package's entry point. Everything wasm-bindgen generates (pkg/) is re-exported
// as it is; this facade adds what a web app needs around it:
//   - no init() call to remember: `ready()` runs once, and the load functions below await it;
//   - weight caching: `Embedder.load`, `Generator.load`, `Classifier.load`, `Upscaler.load`,
//     `Device.loadEmbedder/loadGenerator/loadClassifier/loadUpscaler/loadWeights`
//     fetch through Cache Storage unless `{ cache: false }` (see cache.js); a cached file that fails
//     the loader's checks is evicted and fetched again once;
//   - a Web Worker mode: `Embedder.inWorker(source)`, `Generator.inWorker(source)`,
//     `Classifier.inWorker(source)`, `Upscaler.inWorker(source)` (worker-client.js);
//   - `ChatEngine`: WebLLM's OpenAI-style chat API over a generator (chat.js).
import init, * as wasm from "../pkg/webgpu_infer.js";
import { cachedFetch, clearCache, cachedFiles, evict, cacheStats, CACHE_NAME } from "./cache.js";
import { installFacade } from "./facade.js";
import { ModelWorker, EmbedderWorker, GeneratorWorker, ClassifierWorker, UpscalerWorker } from "./worker-client.js";
import { ChatEngine } from "./chat.js";

export * from "../pkg/webgpu_infer.js";
export { init, cachedFetch, clearCache, cachedFiles, evict, cacheStats, CACHE_NAME };
export { ModelWorker, EmbedderWorker, GeneratorWorker, ClassifierWorker, UpscalerWorker, ChatEngine };

/** Cosine similarity of two vectors (0 when either is zero); plain JS, usable before `ready()`. */
export function similarity(a, b) {
  if (a.length !== b.length) throw new Error(`vectors of ${a.length} and ${b.length} values: similarity needs equal lengths`);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Loads and instantiates the WASM module once; `module_or_path` as wasm-bindgen's `init`. */
export const { ready } = installFacade(wasm, init);
