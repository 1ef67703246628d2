// Weight-loading benchmark. Prints one JSON line per measurement into #out and window.benchResults:
//   {"op":"load","model","bytes","ms","fetch_only_ms","bytes_through_wasm","wasm_memory_growth_bytes",...}
// ms: loadWeights (fetch + stream into mapped GPU buffers) until the GPU has finished (device.sync()).
// fetch_only_ms: fetch(url).arrayBuffer() of the same file, same run. Medians over `reps` runs.
import init, { Device, wasmMemoryBytes } from "../../pkg/webgpu_infer.js";

const params = new URLSearchParams(location.search);
const reps = Number(params.get("reps") ?? 5);
const model = params.get("model") ?? "/models/all-MiniLM-L6-v2/model.safetensors";
const syntheticMb = Number(params.get("synthetic_mb") ?? 256);
const out = document.getElementById("out");
window.benchResults = [];

function emit(obj) {
  const line = JSON.stringify(obj);
  window.benchResults.push(obj);
  out.textContent += line + "\n";
  console.log(line);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function fetchOnly(url) {
  const t0 = performance.now();
  const buf = await (await fetch(url, { cache: "no-store" })).arrayBuffer();
  return { ms: performance.now() - t0, bytes: buf.byteLength };
}

async function loadOnce(device, source) {
  device.resetStats();
  const mem0 = wasmMemoryBytes();
  const t0 = performance.now();
  const weights = await device.loadWeights(source);
  await device.sync();
  const ms = performance.now() - t0;
  const stats = device.stats();
  const result = {
    ms,
    tensors: weights.size,
    bytesThroughWasm: stats.wasmBytesIn,
    hostToGpu: stats.hostToGpuBytes,
    growth: wasmMemoryBytes() - mem0,
  };
  weights.free();
  return result;
}

// A safetensors file of `mb` MiB of f32 tensors (16 MiB each), built in JS, to show that WASM memory
// growth does not depend on the model's size.
function syntheticModel(mb) {
  const tensorBytes = 16 << 20;
  const count = Math.max(1, Math.round((mb << 20) / tensorBytes));
  const header = {};
  for (let i = 0; i < count; i++) {
    header[`t${i}`] = { dtype: "F32", shape: [tensorBytes / 4], data_offsets: [i * tensorBytes, (i + 1) * tensorBytes] };
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const file = new Uint8Array(8 + json.length + count * tensorBytes);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
  file.set(json, 8);
  for (let i = 8 + json.length; i < file.length; i += 4096) file[i] = i & 255;
  return new Blob([file]);
}

async function main() {
  await init();
  const device = await Device.create();
  const adapter = device.info.adapter;
  // Warm-up: compiles the cast pipeline, fills the server's page cache.
  await fetchOnly(model);
  await loadOnce(device, model);

  const fetches = [];
  const loads = [];
  for (let i = 0; i < reps; i++) {
    // Alternate the order so neither side always runs on a warmer machine.
    if (i % 2 === 0) {
      fetches.push(await fetchOnly(model));
      loads.push(await loadOnce(device, model));
    } else {
      loads.push(await loadOnce(device, model));
      fetches.push(await fetchOnly(model));
    }
  }
  const ms = median(loads.map((l) => l.ms));
  const fetchMs = median(fetches.map((f) => f.ms));
  emit({
    op: "load",
    model: model.split("/").slice(-2, -1)[0] ?? model,
    source: "url",
    bytes: fetches[0].bytes,
    tensors: loads[0].tensors,
    ms: +ms.toFixed(2),
    fetch_only_ms: +fetchMs.toFixed(2),
    ratio: +(ms / fetchMs).toFixed(3),
    bytes_through_wasm: Math.max(...loads.map((l) => l.bytesThroughWasm)),
    host_to_gpu_bytes: loads[0].hostToGpu,
    wasm_memory_growth_bytes: Math.max(...loads.map((l) => l.growth)),
    reps,
    adapter,
  });

  if (syntheticMb > 0) {
    const blob = syntheticModel(syntheticMb);
    const r = await loadOnce(device, blob);
    emit({
      op: "load",
      model: `synthetic-${syntheticMb}MiB`,
      source: "blob",
      bytes: blob.size,
      tensors: r.tensors,
      ms: +r.ms.toFixed(2),
      bytes_through_wasm: r.bytesThroughWasm,
      host_to_gpu_bytes: r.hostToGpu,
      wasm_memory_growth_bytes: r.growth,
      reps: 1,
      adapter,
    });
  }
  document.getElementById("status").textContent = "done";
  window.benchDone = true;
}

main().catch((e) => {
  document.getElementById("status").textContent = `error: ${e.message ?? e}`;
  window.benchError = String(e.message ?? e);
  window.benchDone = true;
});
