// Chat: load a Generator (progress bar), stream the answer token by token (the Stop button aborts),
// show tokens/s and the library's copy counters.
import init, { Device } from "../pkg/webgpu_infer.js";
import { $, banner, showStats } from "./common.js";

let device;
let generator;
let abort;

async function load() {
  $("send").disabled = true;
  $("load-status").textContent = "loading…";
  const t0 = performance.now();
  try {
    generator?.free();
    generator = await device.loadGenerator($("model").value, {
      onProgress: ({ bytesDone, bytesTotal }) => {
        if (bytesTotal > 0) $("progress").value = bytesDone / bytesTotal;
        $("load-status").textContent = `${(bytesDone / 2 ** 20).toFixed(1)} / ${(bytesTotal / 2 ** 20).toFixed(1)} MiB`;
      },
    });
  } catch (e) {
    $("load-status").textContent = `failed: ${e.message ?? e}`;
    return;
  }
  $("progress").value = 1;
  $("load-status").textContent =
    `loaded in ${(performance.now() - t0).toFixed(0)} ms (context ${generator.contextLength} tokens)`;
  $("load-status").dataset.state = "loaded";
  $("send").disabled = false;
  showStats();
}

async function send() {
  $("send").disabled = true;
  $("stop").disabled = false;
  $("answer").textContent = "";
  $("speed").dataset.state = "";
  abort = new AbortController();
  const stream = generator.generate($("prompt").value, {
    chat: true,
    maxTokens: Number($("max-tokens").value),
    temperature: Number($("temperature").value),
    seed: 1,
    signal: abort.signal,
  });
  try {
    for await (const piece of stream) {
      $("answer").textContent += piece;
    }
    const s = stream.stats;
    $("speed").textContent =
      `${s.promptTokens} prompt tokens at ${s.prefillTokS.toFixed(1)} tok/s; ${s.newTokens} new tokens at ` +
      `${s.decodeTokS.toFixed(1)} tok/s; ${s.bytesReadBackPerToken} bytes read back a token; stop: ${s.stopReason}`;
    $("speed").dataset.state = "done";
  } catch (e) {
    $("speed").textContent = `failed: ${e.message ?? e}`;
  }
  $("send").disabled = false;
  $("stop").disabled = true;
  showStats();
}

async function main() {
  await init();
  try {
    device = await Device.create();
  } catch (e) {
    banner("error", e.message ?? String(e));
    return;
  }
  if (device.info.software) {
    banner("warn", `This adapter (${device.info.adapter}) is a software fallback: correct, but 10-100x slower than a GPU.`);
  }
  $("load").addEventListener("click", load);
  $("stop").addEventListener("click", () => abort?.abort());
  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  await load();
}

main();
