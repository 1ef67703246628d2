// Pieces the demo pages share: the banner (no WebGPU, software adapter) and the copy-counter table.
import { stats } from "../pkg/webgpu_infer.js";

export const $ = (id) => document.getElementById(id);

/** Shows the page's banner: kind "error" or "warn". */
export function banner(kind, text) {
  const b = $("banner");
  b.className = `banner ${kind}`;
  b.textContent = text;
  b.hidden = false;
}

/** Fills the #stats table with the library's copy counters. */
export function showStats() {
  const s = stats();
  const rows = [
    ["bytes copied into WASM memory", s.wasmBytesIn],
    ["bytes written to the GPU", s.hostToGpuBytes],
    ["bytes read back from the GPU", s.gpuToHostBytes],
    ["submits", s.submits],
    ["GPU buffers in use", `${s.liveBuffers} (${(s.liveBufferBytes / 2 ** 20).toFixed(1)} MiB)`],
  ];
  const body = $("stats").tBodies[0];
  body.replaceChildren();
  for (const [k, v] of rows) {
    const tr = body.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = typeof v === "number" ? v.toLocaleString("en") : v;
  }
}
