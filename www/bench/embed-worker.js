// The embedding benchmark's worker side for the shared-memory build (pkg-threads/): rayon's pool can
// only block off the main thread, so the model runs here. Message: { modelDir, texts, reps, threads }
// → { times: [ms...], vectors } or { error }.
self.onmessage = async ({ data }) => {
  try {
    const wasm = await import(`../../${data.pkg}/webgpu_infer.js`);
    await wasm.default();
    await wasm.initThreadPool(data.threads);
    const device = await wasm.Device.create({ backend: "cpu" });
    const e = await device.loadEmbedder(data.modelDir);
    const vectors = await e.embed(data.texts);
    const times = [];
    for (let r = 0; r < data.reps; r++) {
      const t = performance.now();
      await e.embed(data.texts);
      times.push(performance.now() - t);
    }
    self.postMessage({ times, vectors: vectors.map((v) => Array.from(v)) });
  } catch (err) {
    self.postMessage({ error: err.message ?? String(err) });
  }
};
