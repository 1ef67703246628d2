// The shared-memory build (pkg-threads/, scripts/build-threads.sh) behind the same facade: the CPU
// backend's kernels run on `threads` Web Workers (rayon's pool, wasm-bindgen-rayon). Loaded by the
// worker mode (worker.js) on cross-origin-isolated pages: rayon blocks the thread that calls it, which
// a worker may do and a page's main thread may not.
import init, * as wasm from "../pkg-threads/webgpu_infer.js";
import { installFacade } from "./facade.js";

export { clearCache } from "./cache.js";
export const { Device, stats } = wasm;

const facade = installFacade(wasm, init);
let pool = null;
/** Threads the pool runs (1 until `ready` resolves). */
export let threads = 1;

/** Instantiates the module and starts `n` workers (default: the machine's logical cores), once. */
export function ready(n = navigator.hardwareConcurrency || 1) {
  pool ??= facade.ready().then(() => wasm.initThreadPool(n)).then(() => { threads = n; });
  return pool;
}
