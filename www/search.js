// Semantic search: load an Embedder (progress bar), embed the sentences and the query on the GPU, rank by
// cosine similarity. Shows timings and the library's copy counters.
import init, { Device, similarity } from "../pkg/webgpu_infer.js";
import { $, banner, showStats } from "./common.js";

let device;
let embedder;
let corpusCache = { text: null, vectors: null };

async function load() {
  $("search").disabled = true;
  $("load-status").textContent = "loading…";
  const t0 = performance.now();
  try {
    embedder?.free();
    embedder = await device.loadEmbedder($("model").value, {
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
    `loaded in ${(performance.now() - t0).toFixed(0)} ms: ${embedder.dims} dimensions, ` +
    `up to ${embedder.maxSeqLength} tokens a text`;
  $("load-status").dataset.state = "loaded";
  corpusCache = { text: null, vectors: null };
  $("search").disabled = false;
  showStats();
}

async function search() {
  const sentences = $("corpus").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const t0 = performance.now();
  if (corpusCache.text !== $("corpus").value) {
    corpusCache = { text: $("corpus").value, vectors: await embedder.embed(sentences) };
  }
  const t1 = performance.now();
  const [q] = await embedder.embed([$("query").value]);
  const t2 = performance.now();
  const ranked = sentences
    .map((s, i) => ({ s, score: similarity(q, corpusCache.vectors[i]) }))
    .sort((a, b) => b.score - a.score);
  const body = $("results").tBodies[0];
  body.replaceChildren();
  for (const { s, score } of ranked) {
    const tr = body.insertRow();
    tr.insertCell().textContent = score.toFixed(4);
    tr.insertCell().textContent = s;
  }
  $("timing").textContent =
    `${sentences.length} sentences embedded in ${(t1 - t0).toFixed(0)} ms (cached after the first search), ` +
    `query in ${(t2 - t1).toFixed(0)} ms`;
  $("timing").dataset.state = "done";
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
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search();
  });
  await load();
}

main();
