// Chat: load a Generator (progress bar), stream the answer token by token (the Stop button aborts),
// show tokens/s and the library's copy counters.
import { Generator, clearCache } from "../js/index.js";
import { $, loadWithProgress, showStats, startWorker, wireClearCache } from "./common.js";

let worker;
let generator;
let abort;

async function load() {
  $("send").disabled = true;
  await generator?.dispose();
  generator = await loadWithProgress(
    (onProgress) => Generator.inWorker($("model").value, { worker, onProgress }),
    (g) => `context ${g.contextLength} tokens (in a Web Worker)`,
  );
  if (!generator) return;
  $("send").disabled = false;
  showStats(await worker.stats());
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
  showStats(await worker.stats());
}

async function main() {
  worker = await startWorker();
  if (!worker) return;
  $("load").addEventListener("click", load);
  wireClearCache(clearCache);
  $("stop").addEventListener("click", () => abort?.abort());
  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  await load();
}

main();
