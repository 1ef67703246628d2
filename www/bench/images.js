// Image-model benchmark: images per second of Classifier.classify and Upscaler.upscaleToCanvas;
// query: classifier_backend=auto|gpu|cpu|both, upscaler_backend (the same), ort=wasm
// (&ort_threads=N), sizes, reps, scale.
import { Device, ready } from "../../js/index.js";

const q = new URLSearchParams(location.search);
const sizes = (q.get("sizes") ?? "64,128").split(",").map(Number).filter(Boolean); // none: no upscaler
const reps = Number(q.get("reps") ?? 3);
const scale = Number(q.get("scale") ?? 2);
// Where the classifier runs: "auto" (the default: the CPU backend on a software adapter), "gpu",
// "cpu", or "both" (one line each).
const classifierBackend = q.get("classifier_backend") ?? "auto";
const upscalerBackend = q.get("upscaler_backend") ?? "auto";
// `ort=wasm`: onnxruntime-web's CPU execution provider on the same network (the ONNX export of
// scripts/export_efficientnet_onnx.py), `ort_threads` threads (more than 1 needs a cross-origin-
// isolated page). Its time is the network alone, on a preprocessed input; ours includes reading
// the pixels and preprocessing.
const ortEp = q.get("ort");
const ortThreads = Number(q.get("ort_threads") ?? 1);
window.benchResults = [];
const out = document.getElementById("out");
const status = (s) => { document.getElementById("status").textContent = s; };
const emit = (line) => { window.benchResults.push(line); out.textContent += JSON.stringify(line) + "\n"; };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function picture(size) {
  const img = new Image();
  img.src = "/tests/fixtures/images/cat.png";
  await img.decode();
  return createImageBitmap(img, 0, 0, Math.min(size, img.naturalWidth), Math.min(size, img.naturalHeight),
    { resizeWidth: size, resizeHeight: size });
}

async function time(fn) {
  await fn(); // warm-up: pipelines compile here
  const ms = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

async function main() {
  await ready();
  const device = await Device.create();
  const adapter = device.info.adapter;
  status("loading the models…");
  const backends = classifierBackend === "both" ? ["gpu", "cpu"] : [classifierBackend];
  const classifiers = [];
  for (const backend of backends) {
    classifiers.push(await device.loadClassifier("/models/efficientnet-lite0/", { cache: false, backend }));
  }
  const upscalers = [];
  for (const backend of sizes.length ? (upscalerBackend === "both" ? ["gpu", "cpu"] : [upscalerBackend]) : []) {
    upscalers.push(await device.loadUpscaler(`/models/esrgan-slim/x${scale}/`, { cache: false, backend }));
  }
  const line = (op, model, input, output, ms) => ({
    op, model, input, output, ms: +ms.toFixed(1), images_per_s: +(1000 / ms).toFixed(3), adapter,
  });
  const cat = await picture(224);
  let ortMs = null;
  let ortHow = null;
  if (ortEp) {
    status("onnxruntime-web…");
    const ort = await import("/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs");
    ort.env.wasm.wasmPaths = "/node_modules/onnxruntime-web/dist/";
    ort.env.wasm.numThreads = ortThreads;
    ort.env.logLevel = "error";
    const url = "/models/efficientnet-lite0/onnx/model.onnx";
    const head = await fetch(url, { method: "HEAD" });
    if (!head.ok) throw new Error(`${url}: HTTP ${head.status}; export it with scripts/export_efficientnet_onnx.py`);
    const session = await ort.InferenceSession.create(url, { executionProviders: [ortEp] });
    const x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i));
    const feeds = { input: new ort.Tensor("float32", x, [1, 3, 224, 224]) };
    const threads = ortEp === "wasm" ? (crossOriginIsolated ? ortThreads : 1) : null;
    ortHow = `onnxruntime-web ${ort.env.versions?.web ?? ""} ${ortEp}${threads ? `, ${threads} thread${threads > 1 ? "s" : ""}` : ""}`;
    ortMs = await time(() => session.run(feeds));
    emit({ ...line("classify", "efficientnet-lite0 (onnx)", "224x224 preprocessed", "logits", ortMs), engine: ortHow });
  }
  for (const classifier of classifiers) {
    status(`classify (${classifier.backend})…`);
    const ms = await time(() => classifier.classify(cat, 5));
    emit({ ...line("classify", "efficientnet-lite0", "224x224", "top-5", ms), backend: classifier.backend,
      backend_reason: classifier.backendReason,
      ...(ortMs ? { ratio_vs_ort: +(ms / ortMs).toFixed(3), ort: ortHow } : {}) });
  }
  for (const upscaler of upscalers) {
    // A canvas keeps its first kind of context (WebGPU or 2D): one for each upscaler.
    const canvas = document.createElement("canvas");
    document.getElementById("canvas").replaceWith(canvas);
    canvas.id = "canvas";
    for (const size of sizes) {
      status(`upscale ${size}×${size} (${upscaler.backend})…`);
      const bitmap = await picture(size);
      const ms = await time(() => upscaler.upscaleToCanvas(bitmap, canvas));
      emit({ ...line("upscale", `esrgan-slim-x${scale}`, `${size}x${size}`, `${size * scale}x${size * scale}`, ms),
        backend: upscaler.backend, backend_reason: upscaler.backendReason });
    }
  }
  status("done");
}

main()
  .catch((err) => { window.benchError = err.message ?? String(err); status(window.benchError); })
  .finally(() => { window.benchDone = true; });
