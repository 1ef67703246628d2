// The smallest app that uses the npm package through a bundler: the model runs in a Web Worker that
// the package starts itself, the page stays responsive, the weights are cached after the first visit.
import { Embedder, Classifier, similarity, cachedFiles } from "webgpu-infer";
import type { Prediction } from "webgpu-infer";

const out = document.getElementById("out") as HTMLPreElement;
const bar = document.getElementById("progress") as HTMLProgressElement;
const model = new URLSearchParams(location.search).get("model") ?? "/models/all-MiniLM-L6-v2/";

async function main(): Promise<void> {
  const embedder = await Embedder.inWorker(model, {
    onProgress: ({ bytesDone, bytesTotal }) => { if (bytesTotal > 0) bar.value = bytesDone / bytesTotal; },
  });
  const [meal, food, market] = await embedder.embed([
    "A man is eating food.", "Someone is having a meal.", "The stock market fell sharply today.",
  ]);
  // Two calls at once on one model, then a call after dispose(): both answered clearly.
  const [x, y] = await Promise.all([embedder.embed(["A man is eating food."]), embedder.embed(["A man is eating food."])]);
  const concurrentSame = x[0].every((v, i) => v === y[0][i]);
  const result = {
    adapter: embedder.info.adapter,
    dims: embedder.dims,
    meal_vs_food: similarity(meal, food),
    meal_vs_market: similarity(meal, market),
    cached_files: (await cachedFiles()).length,
    concurrent_same: concurrentSame,
    after_dispose: "",
    top_labels: [] as string[],
  };
  // An image model in the same worker (one GPU device): the <img> goes over as an ImageBitmap.
  const classifier = await Classifier.inWorker("/models/efficientnet-lite0/", { worker: embedder.host });
  const img = new Image();
  img.src = "/tests/fixtures/images/cat.png";
  await img.decode();
  const top: Prediction[] = await classifier.classify(img, 3);
  result.top_labels = top.map((p) => p.label);
  await classifier.dispose();
  await embedder.dispose();
  result.after_dispose = await embedder.embed(["x"]).then(() => "accepted", (e: Error) => e.message);
  out.textContent = JSON.stringify(result, null, 2);
  out.dataset.state = "done";
}

main().catch((e: unknown) => {
  out.textContent = `failed: ${e instanceof Error ? e.message : String(e)}`;
  out.dataset.state = "failed";
});
