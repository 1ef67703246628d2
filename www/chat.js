// Chat: load a model into a ChatEngine in a Web Worker (progress bar; on the GPU, or the CPU backend:
// "auto" takes the CPU without WebGPU or on a software adapter, and the page says which and why),
// stream each answer through the
// OpenAI-style `chat.completions.create({ stream: true })` (the Stop button aborts), keep the
// conversation (each request sends it whole; the engine reuses the KV cache of the turns it has
// seen), show tokens/s, reused prompt tokens and the library's copy counters.
import { ChatEngine, clearCache } from "../js/index.js";
import { $, loadWithProgress, showStats, startWorker, wireClearCache } from "./common.js";

let worker;
let engine;
let abort;
let messages = [];

async function load() {
  $("send").disabled = true;
  await engine?.dispose();
  engine = await loadWithProgress(
    (onProgress) => ChatEngine.inWorker($("model").value, { worker, onProgress, backend: $("backend").value }),
    (e) => {
      const g = e.generator;
      const threads = worker.info.cpuThreads;
      const where = g.backend === "cpu" ? `CPU, ${threads} thread${threads > 1 ? "s" : ""}` : "GPU";
      return `context ${g.contextLength} tokens, in a Web Worker, on the ${where} (${g.backendReason})`;
    },
  );
  if (!engine) return;
  newChat();
  $("send").disabled = false;
  showStats(await worker.stats());
}

function newChat() {
  messages = [];
  $("history").replaceChildren();
  $("answer").textContent = "";
  engine?.resetChat();
}

function showTurn(role, text) {
  const p = document.createElement("p");
  p.className = `turn ${role}`;
  p.textContent = `${role === "user" ? "You" : "Model"}: ${text}`;
  $("history").append(p);
}

async function send() {
  $("send").disabled = true;
  $("stop").disabled = false;
  $("speed").dataset.state = "";
  // The previous answer joins the history; the new one streams into #answer.
  if ($("answer").textContent) showTurn("assistant", $("answer").textContent);
  $("answer").textContent = "";
  const prompt = $("prompt").value;
  showTurn("user", prompt);
  messages.push({ role: "user", content: prompt });
  abort = new AbortController();
  try {
    const chunks = await engine.chat.completions.create({
      messages,
      stream: true,
      max_tokens: Number($("max-tokens").value),
      temperature: Number($("temperature").value),
      seed: 1,
      signal: abort.signal,
    });
    let usage;
    for await (const chunk of chunks) {
      $("answer").textContent += chunk.choices[0]?.delta.content ?? "";
      usage = chunk.usage ?? usage;
    }
    messages.push({ role: "assistant", content: $("answer").textContent });
    const s = engine.generator.stats;
    $("speed").textContent =
      `${usage.prompt_tokens} prompt tokens (${usage.extra.reused_prompt_tokens} reused) at ` +
      `${s.prefillTokS.toFixed(1)} tok/s; ${usage.completion_tokens} new tokens at ` +
      `${usage.extra.decode_tokens_per_s.toFixed(1)} tok/s; ` +
      (engine.generator.backend === "cpu" ? "on the CPU backend; " : `${s.bytesReadBackPerToken} bytes read back a token; `) +
      `stop: ${s.stopReason}`;
    $("speed").dataset.state = "done";
  } catch (e) {
    messages.pop();
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
  $("new-chat").addEventListener("click", newChat);
  $("backend").addEventListener("change", load);
  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  await load();
}

main();
