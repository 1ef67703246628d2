// Pieces the demo pages share: the banner (no WebGPU, software adapter), the copy-counter table and
// the model-worker start.
import { ModelWorker, stats } from "../js/index.js";

export const $ = (id) => document.getElementById(id);

/** Shows the page's banner: kind "error" or "warn". */
export function banner(kind, text) {
  const b = $("banner");
  b.className = `banner ${kind}`;
  b.textContent = text;
  b.hidden = false;
}

/** Starts the page's model worker (models run off the main thread); shows the banners. */
export async function startWorker() {
  let worker;
  try {
    worker = await ModelWorker.create();
  } catch (e) {
    banner("error", e.message ?? String(e));
    return null;
  }
  if (worker.info.software) {
    banner("warn", `This adapter (${worker.info.adapter}) is a software fallback: correct, but 10-100x slower than a GPU. ` +
      "Embedders and GGUF generators run on the CPU backend instead (faster here); image models use the adapter.");
  } else if (worker.info.backend === "cpu") {
    banner("warn", "This browser offers no WebGPU: embedders and GGUF generators run on the CPU backend; image models need WebGPU.");
  }
  return worker;
}

/** Fills the #stats table with the library's copy counters (`s`, else this page's own). */
export function showStats(s = stats()) {
  const rows = [
    ["bytes copied into WASM memory", s.wasmBytesIn],
    ["bytes written to the GPU", s.hostToGpuBytes],
    ["bytes read back from the GPU", s.gpuToHostBytes],
    ["submits", s.submits],
    ["GPU buffers in use", `${s.liveBuffers} (${(s.liveBufferBytes / 2 ** 20).toFixed(1)} MiB)`],
    ["weights in WASM memory (CPU backend)", `${((s.hostWeightBytes ?? 0) / 2 ** 20).toFixed(1)} MiB`],
  ];
  const body = $("stats").tBodies[0];
  body.replaceChildren();
  for (const [k, v] of rows) {
    const tr = body.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = typeof v === "number" ? v.toLocaleString("en") : v;
  }
}

/** Loads a model with `loader(onProgress)`, driving #progress and #load-status; `describe(model)` is
 *  the status once loaded. Resolves to the model, or null after showing the failure. */
export async function loadWithProgress(loader, describe) {
  $("load-status").textContent = "loading…";
  $("load-status").dataset.state = "";
  $("progress").value = 0;
  const t0 = performance.now();
  let model;
  try {
    model = await loader(({ bytesDone, bytesTotal }) => {
      if (bytesTotal > 0) $("progress").value = bytesDone / bytesTotal;
      $("load-status").textContent = `${(bytesDone / 2 ** 20).toFixed(1)} / ${(bytesTotal / 2 ** 20).toFixed(1)} MiB`;
    });
  } catch (e) {
    $("load-status").textContent = `failed: ${e.message ?? e}`;
    return null;
  }
  $("progress").value = 1;
  const where = model.fromCache ? " from the browser cache" : "";
  $("load-status").textContent = `loaded${where} in ${(performance.now() - t0).toFixed(0)} ms: ${describe(model)}`;
  $("load-status").dataset.state = "loaded";
  $("load-status").dataset.cache = model.fromCache ? "hit" : "miss";
  return model;
}

/** Wires the #clear-cache button: empties the weight cache and says how many files it held. */
export function wireClearCache(clearCache) {
  $("clear-cache")?.addEventListener("click", async () => {
    const n = await clearCache();
    $("load-status").textContent = `cache cleared (${n} file${n === 1 ? "" : "s"})`;
  });
}
