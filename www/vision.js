// The images page: classify the picture (top-5 ImageNet labels) and upscale it, both on the GPU, or on
// the CPU backend where there is no WebGPU or only a software adapter, or as the "on" menu says. On the
// GPU pictures go from the browser into a GPU texture (copyExternalImageToTexture) and the upscaled
// result is drawn into the canvas from the GPU (Upscaler.upscaleToCanvas); on the CPU the pixels go
// through WASM memory and the result is drawn with the canvas's 2D context.
import { Device, ready, clearCache } from "../js/index.js";
import { $, banner, showStats, loadWithProgress, wireClearCache } from "./common.js";

// Upscaling cost grows with the area: larger pictures are cut to their centre for the upscaler
// (smaller on a software adapter, where a 128x128 picture takes about 20 s).
let MAX_UPSCALE_SIDE = 512;

let device = null;
let classifier = null;
let upscaler = null;

async function start() {
  await ready();
  try {
    device = await Device.create();
  } catch (e) {
    banner("error", e.message ?? String(e));
    return;
  }
  if (device.info.software) {
    MAX_UPSCALE_SIDE = 128;
    banner("warn", `This adapter (${device.info.adapter}) is a software fallback: correct, but 10-100x slower than a GPU.`);
  }
  $("load").addEventListener("click", load);
  $("backend").addEventListener("change", load);
  wireClearCache(clearCache);
  $("file").addEventListener("change", () => $("file").files[0] && useFile($("file").files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) useFile(f);
  });
  await load();
}

async function load() {
  classifier?.dispose();
  upscaler?.dispose();
  classifier = upscaler = null;
  const models = await loadWithProgress(async (onProgress) => {
    const c = await device.loadClassifier($("classifier-url").value, { onProgress, backend: $("backend").value });
    const u = await device.loadUpscaler($("upscaler-url").value, { onProgress, backend: $("backend").value }).catch((e) => {
      banner("warn", `No upscaler: ${e.message ?? e}`);
      return null;
    });
    return { c, u, fromCache: c.fromCache && u?.fromCache };
  }, ({ c, u }) => `EfficientNet-Lite0 (${c.labels.length} classes, ${c.imageSize}×${c.imageSize} input) on the ` +
    `${c.backend === "cpu" ? "CPU" : "GPU"} (${c.backendReason})` + (u ? ` and a ×${u.scale} upscaler on the ${u.backend.toUpperCase()}` : ""));
  if (!models) return;
  // A canvas keeps the first kind of context it gets (WebGPU or 2D): a fresh one for each backend.
  const fresh = $("upscaled").cloneNode(false);
  $("upscaled").replaceWith(fresh);
  ({ c: classifier, u: upscaler } = models);
  window.demo = { classifier, upscaler }; // for the end-to-end test
  await run();
}

async function useFile(file) {
  const url = URL.createObjectURL(file);
  $("original").src = url;
  await $("original").decode().catch(() => {});
  await run();
}

async function run() {
  const img = $("original");
  if (!classifier) return;
  try {
    await img.decode();
  } catch {
    $("image-status").textContent = "that file is not an image the browser can decode";
    return;
  }
  const timing = $("timing");
  timing.dataset.state = "running";
  timing.textContent = "running…";
  try {
    const bitmap = await createImageBitmap(img);
    let t0 = performance.now();
    const top = await classifier.classify(bitmap, 5);
    const classifyMs = performance.now() - t0;
    const body = $("labels").tBodies[0];
    body.replaceChildren();
    for (const p of top) {
      const tr = body.insertRow();
      tr.insertCell().textContent = p.label;
      tr.insertCell().textContent = `${(p.score * 100).toFixed(1)}%`;
    }
    $("timing").dataset.backend = classifier.backend;
    if (!upscaler) {
      $("image-status").textContent = `${bitmap.width}×${bitmap.height} pixels`;
      timing.textContent = `classified in ${classifyMs.toFixed(0)} ms on the ${classifier.backend.toUpperCase()}`;
      timing.dataset.state = "done";
      timing.dataset.top1 = top[0].label;
      showStats();
      return;
    }
    // The upscaler gets the picture, or its centre when it is large.
    const big = bitmap.width > MAX_UPSCALE_SIDE || bitmap.height > MAX_UPSCALE_SIDE;
    const sw = big ? Math.min(bitmap.width, MAX_UPSCALE_SIDE) : bitmap.width;
    const sh = big ? Math.min(bitmap.height, MAX_UPSCALE_SIDE) : bitmap.height;
    const part = big
      ? await createImageBitmap(bitmap, (bitmap.width - sw) >> 1, (bitmap.height - sh) >> 1, sw, sh)
      : bitmap;
    t0 = performance.now();
    const { width, height } = await upscaler.upscaleToCanvas(part, $("upscaled"));
    const upscaleMs = performance.now() - t0;
    $("upscaled-caption").textContent = `×${upscaler.scale}: ${part.width}×${part.height} → ${width}×${height}` +
      (big ? ` (the centre ${sw}×${sh} of the ${bitmap.width}×${bitmap.height} picture)` : "");
    $("image-status").textContent = `${bitmap.width}×${bitmap.height} pixels`;
    timing.textContent = `classified in ${classifyMs.toFixed(0)} ms on the ${classifier.backend.toUpperCase()}, ` +
      `upscaled in ${upscaleMs.toFixed(0)} ms on the ${upscaler.backend.toUpperCase()}`;
    timing.dataset.state = "done";
    timing.dataset.top1 = top[0].label;
    timing.dataset.upscaled = `${width}x${height}`;
  } catch (e) {
    timing.textContent = `failed: ${e.message ?? e}`;
    timing.dataset.state = "error";
  }
  showStats();
}

start();
