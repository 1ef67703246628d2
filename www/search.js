// Semantic search: load an Embedder (progress bar), embed the sentences and the query on the GPU or the
// CPU backend ("auto": the CPU without WebGPU or on a software adapter; the page says which and why),
// rank by cosine similarity. Shows timings and the library's copy counters.
import { Embedder, similarity, clearCache } from "../js/index.js";
import { $, loadWithProgress, showStats, startWorker, wireClearCache } from "./common.js";

let worker;
let embedder;
let corpusCache = { text: null, vectors: null };

async function load() {
  $("search").disabled = true;
  await embedder?.dispose();
  embedder = await loadWithProgress(
    (onProgress) => Embedder.inWorker($("model").value, { worker, onProgress, backend: $("backend").value }),
    (e) => {
      const threads = e.host.info.cpuThreads;
      const where = e.backend === "cpu" ? `CPU, ${threads} thread${threads > 1 ? "s" : ""}` : "GPU";
      return `${e.dims} dimensions, up to ${e.maxSeqLength} tokens a text, in a Web Worker, on the ${where} ` +
        `(${e.backendReason})`;
    },
  );
  if (!embedder) return;
  corpusCache = { text: null, vectors: null };
  $("search").disabled = false;
  showStats(await worker.stats());
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
  showStats(await worker.stats());
}

async function main() {
  worker = await startWorker();
  if (!worker) return;
  $("load").addEventListener("click", load);
  $("backend").addEventListener("change", load);
  wireClearCache(clearCache);
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search();
  });
  await load();
}

main();
