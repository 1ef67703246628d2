// The start page: the adapter and what the library will use of it, and a matmul run on the GPU
// through the library, checked against a plain JavaScript matmul.
import init, { Device } from "../pkg/webgpu_infer.js";
import { $, banner } from "./common.js";

function row(table, label, value) {
  const tr = table.tBodies[0].insertRow();
  tr.insertCell().textContent = label;
  tr.insertCell().textContent = value;
}

function mib(bytes) {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

function randomMatrix(len, seed) {
  // Deterministic values in [-1, 1) so every run of the page checks the same product.
  let s = seed >>> 0;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function cpuMatmul(a, b, m, k, n) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
    }
  }
  return c;
}

function showAdapter(info) {
  const t = $("adapter");
  t.tBodies[0].replaceChildren();
  row(t, "adapter", info.adapter || "(not disclosed)");
  row(t, "vendor / architecture", `${info.vendor || "?"} / ${info.architecture || "?"}`);
  row(t, "backend", info.backend);
  row(t, "shader-f16", info.shaderF16 ? "yes" : "no (f32 kernels)");
  row(t, "subgroups", info.subgroups ? "yes" : "no");
  row(t, "max storage buffer binding", mib(info.limits.maxStorageBufferBindingSize));
  row(t, "max buffer size", mib(info.limits.maxBufferSize));
  row(t, "workgroup storage", `${info.limits.maxComputeWorkgroupStorageSize / 1024} KiB`);
  row(t, "invocations per workgroup", info.limits.maxComputeInvocationsPerWorkgroup);
  row(t, "features", info.features.join(", ") || "(none)");
  if (info.software) {
    banner(
      "warn",
      `This adapter (${info.adapter}) is a software fallback that runs on the CPU: results are ` +
        "correct, but 10-100x slower than a real GPU.",
    );
  }
}

async function runMatmul(device) {
  const [m, k, n] = ["m", "k", "n"].map((id) => Number($(id).value));
  const status = $("status");
  status.dataset.state = "running";
  status.textContent = `Running ${m}×${k} · ${k}×${n}…`;
  const t = $("matmul");
  t.tBodies[0].replaceChildren();
  const a = randomMatrix(m * k, 1);
  const b = randomMatrix(k * n, 2);
  try {
    await device.matmul(a, b, m, k, n); // warm-up: compiles the pipeline
    const t0 = performance.now();
    const c = await device.matmul(a, b, m, k, n);
    const gpuMs = performance.now() - t0;
    const t1 = performance.now();
    const ref = cpuMatmul(a, b, m, k, n);
    const cpuMs = performance.now() - t1;
    let maxErr = 0;
    let bad = 0;
    for (let i = 0; i < ref.length; i++) {
      const err = Math.abs(c[i] - ref[i]);
      maxErr = Math.max(maxErr, err);
      if (!(err <= 1e-4 + 1e-4 * Math.abs(ref[i]))) bad++;
    }
    const gflops = (2 * m * n * k) / (gpuMs * 1e6);
    row(t, "shape", `${m}×${k} · ${k}×${n} (f32)`);
    row(t, "GPU time (upload, run, read back)", `${gpuMs.toFixed(2)} ms (${gflops.toFixed(2)} GFLOP/s)`);
    row(t, "CPU time (JavaScript, f64)", `${cpuMs.toFixed(2)} ms`);
    row(t, "max |GPU - CPU|", maxErr.toExponential(2));
    row(t, "C[0], C[last]", `${c[0].toFixed(6)}, ${c[c.length - 1].toFixed(6)}`);
    status.dataset.state = bad === 0 ? "ok" : "fail";
    status.textContent =
      bad === 0
        ? `✓ GPU result matches the CPU reference (${ref.length} values)`
        : `✗ ${bad} of ${ref.length} values differ from the CPU reference`;
  } catch (e) {
    status.dataset.state = "fail";
    status.textContent = `✗ ${e.message ?? e}`;
  }
}

async function main() {
  await init();
  let device;
  try {
    // This page is the GPU's own check: no CPU fallback here (the search page has one).
    device = await Device.create({ backend: "gpu" });
  } catch (e) {
    $("adapter").tBodies[0].replaceChildren();
    banner("error", e.message ?? String(e));
    $("status").textContent =
      "No WebGPU device: the GPU matmul cannot run here. The search page runs its model on the CPU instead.";
    return;
  }
  showAdapter(device.info);
  $("run").disabled = false;
  $("matmul-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    runMatmul(device);
  });
  await runMatmul(device);
}

main();
