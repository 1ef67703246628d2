// Image-model benchmark: images per second of Classifier.classify and Upscaler.upscaleToCanvas.
import { Device, ready } from "../../js/index.js";

const q = new URLSearchParams(location.search);
const sizes = (q.get("sizes") ?? "64,128").split(",").map(Number);
const reps = Number(q.get("reps") ?? 3);
const scale = Number(q.get("scale") ?? 2);
// Where the classifier runs: "auto" (the default: the CPU backend on a software adapter), "gpu",
// "cpu", or "both" (one line each).
const classifierBackend = q.get("classifier_backend") ?? "auto";
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
  const upscaler = await device.loadUpscaler(`/models/esrgan-slim/x${scale}/`, { cache: false });
  const canvas = document.getElementById("canvas");
  const line = (op, model, input, output, ms) => ({
    op, model, input, output, ms: +ms.toFixed(1), images_per_s: +(1000 / ms).toFixed(3), adapter,
  });
  const cat = await picture(224);
  for (const classifier of classifiers) {
    status(`classify (${classifier.backend})…`);
    const ms = await time(() => classifier.classify(cat, 5));
    emit({ ...line("classify", "efficientnet-lite0", "224x224", "top-5", ms), backend: classifier.backend,
      backend_reason: classifier.backendReason });
  }
  for (const size of sizes) {
    status(`upscale ${size}×${size}…`);
    const bitmap = await picture(size);
    const ms = await time(() => upscaler.upscaleToCanvas(bitmap, canvas));
    emit(line("upscale", `esrgan-slim-x${scale}`, `${size}x${size}`, `${size * scale}x${size * scale}`, ms));
  }
  status("done");
}

main()
  .catch((err) => { window.benchError = err.message ?? String(err); status(window.benchError); })
  .finally(() => { window.benchDone = true; });
