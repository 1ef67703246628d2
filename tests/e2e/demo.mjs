// End-to-end check of the demo page in headless Chromium (Playwright driving Debian's chromium):
//  1. with WebGPU: the adapter table is filled and the GPU matmul matches the page's CPU reference;
//  2. with navigator.gpu removed: the page says the browser has no WebGPU, instead of failing silently;
//  3. without --enable-unsafe-webgpu: whatever this Chromium then offers, the page ends in a clear state.
// Screenshots go to screenshots/ (gitignored) to be looked at.
import { chromium } from "playwright-core";
import { mkdir, readFile } from "node:fs/promises";
import assert from "node:assert/strict";
import { serve } from "../../scripts/serve.mjs";

const BASE_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 90_000; // SwiftShader is a CPU emulation: pipeline compilation alone takes seconds.
// Cosine similarities of the Vite app against the goldens: measured ≤ 1.1e-7 apart in Chromium on SwiftShader (2026-12-04); ~10× that.
const SIM_TOL = 1e-6;

await mkdir("screenshots", { recursive: true });
const server = await serve(0);
const url = `http://127.0.0.1:${server.address().port}/www/`;

async function withPage(args, fn, initScript) {
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    // An uncaught error on the page fails the check at once, rather than after a timeout.
    const pageError = new Promise((_, reject) =>
      page.on("pageerror", (e) => reject(new Error(`uncaught error on the page: ${e.message}`))),
    );
    pageError.catch(() => {});
    if (initScript) await page.addInitScript(initScript);
    await page.goto(url);
    await Promise.race([fn(page), pageError]);
  } finally {
    await browser.close();
  }
}

// The chat golden's first turn, as the demo shows it: the demo stops at the end-of-turn token;
// transformers' golden ran past it.
async function chatGolden() {
  const golden = JSON.parse(await readFile("tests/goldens/SmolLM2-135M-Instruct.Q4_1.json", "utf8"));
  const chat = golden.cases.find((c) => c.name === "chat");
  return { prompt: chat.prompt, expected: chat.greedy_text.split("<|im_end|>")[0] };
}

/** Sends `prompt` on the chat page (greedy, up to `maxTokens`) and waits for the answer. */
async function chatTurn(page, prompt, maxTokens) {
  await page.fill("#prompt", prompt);
  if (maxTokens) await page.fill("#max-tokens", String(maxTokens));
  await page.click("#send");
  await page.waitForSelector('#speed[data-state="done"]', { timeout: 300_000 });
  return { answer: await page.textContent("#answer"), speed: await page.textContent("#speed") };
}

let failed = false;
// E2E_ONLY=regex runs the checks whose names match (while working on one page).
const only = process.env.E2E_ONLY ? new RegExp(process.env.E2E_ONLY) : null;
async function check(name, fn) {
  if (only && !only.test(name)) return;
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}\n${e.stack ?? e}`);
  }
}

await check("demo shows the adapter and a checked matmul", () =>
  withPage([...BASE_ARGS, "--enable-unsafe-webgpu"], async (page) => {
    await page.waitForSelector('#status[data-state="ok"], #status[data-state="fail"]', {
      timeout: TIMEOUT,
    });
    await page.screenshot({ path: "screenshots/demo.png", fullPage: true });
    const status = await page.textContent("#status");
    assert.match(status, /matches the CPU reference/, status);
    const adapter = await page.textContent("#adapter");
    assert.match(adapter, /max storage buffer binding/);
    assert.match(await page.textContent("#matmul"), /GFLOP\/s/);
    // Through the package's entry point: a call after dispose() says so instead of reaching Rust.
    const afterDispose = await page.evaluate(async () => {
      const { Device } = await import("/js/index.js");
      const d = await Device.create();
      d.dispose();
      try { d.info; return "accepted"; } catch (e) { return e.message; }
    });
    assert.match(afterDispose, /Device was disposed/);
    console.log(`     ${status.trim()}`);
  }),
);

// Opens a model page and waits until its model is loaded, sampling the progress bar meanwhile: it
// must have shown a value strictly between 0 and 1 (the weights streamed in, not in one jump).
async function loadWithProgress(page, pageUrl, { moved = true } = {}) {
  const progress = [];
  await page.exposeFunction("recordProgress", (v) => progress.push(v));
  await page.goto(pageUrl);
  await page.evaluate(() => {
    const bar = document.getElementById("progress");
    const tick = setInterval(() => {
      window.recordProgress(bar.value);
      if (bar.value >= 1) clearInterval(tick);
    }, 20);
  });
  await page.waitForSelector('#load-status[data-state="loaded"]', { timeout: TIMEOUT });
  if (moved) assert.ok(progress.some((v) => v > 0 && v < 1), `the progress bar moved: ${progress.slice(0, 20)}`);
}

let searchRows = null;
await check("semantic search loads the model with progress and ranks the sentences", async () => {
  const searchUrl = url.replace(/\/www\/$/, "/www/search.html");
  const browser = await chromium.launch({ executablePath, args: [...BASE_ARGS, "--enable-unsafe-webgpu"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
    await loadWithProgress(page, searchUrl);
    // "auto" on SwiftShader: the CPU backend, and the page says why (issue #18).
    // Not cross-origin isolated: one thread (the next check runs the threaded build).
    assert.match(await page.textContent("#load-status"), /on the CPU, 1 thread \(software adapter/);
    await page.click("#search");
    // On SwiftShader (a CPU) the first search also compiles every pipeline: allow minutes.
    await page.waitForSelector('#timing[data-state="done"]', { timeout: 300_000 });
    await page.screenshot({ path: "screenshots/search.png", fullPage: true });
    const rows = await page.$$eval("#results tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    searchRows = rows;
    // "A man is eating pasta." is closest to the two eating sentences (sentence-transformers ranks them so).
    assert.deepEqual(rows.slice(0, 2).map((r) => r[1]).sort(), ["A man is eating a piece of bread.", "A man is eating food."]);
    assert.ok(Number(rows[0][0]) > 0.5, `top score ${rows[0][0]}`);
    assert.match(await page.textContent("#stats"), /bytes copied into WASM memory/);
    console.log(`     top: ${rows[0][1]} (${rows[0][0]})`);
    // The model ran in a Web Worker: the page's own WASM module was never even loaded.
    assert.equal(await page.evaluate(() => performance.getEntriesByType("resource")
      .filter((r) => r.name.endsWith(".wasm")).length), 0);
    // Loading again in the same browser profile: the weights come from Cache Storage (revalidated
    // with the server's ETag), and the ranking is the same.
    assert.equal(await page.getAttribute("#load-status", "data-cache"), "miss");
    // The cache is written behind the load (its meta entry once the whole body is in): a reload
    // before that would cut the 90 MB write short, and the next load would fetch the file again.
    const weightsCached = () => page.waitForFunction(async () => {
      const url = new URL("/models/all-MiniLM-L6-v2/model.safetensors", location.href).href;
      return !!(await (await caches.open("webgpu-infer-v1-meta")).match(url));
    }, null, { timeout: TIMEOUT, polling: 250 });
    await weightsCached();
    await page.reload();
    await page.waitForSelector('#load-status[data-state="loaded"]', { timeout: TIMEOUT });
    assert.equal(await page.getAttribute("#load-status", "data-cache"), "hit", await page.textContent("#load-status"));
    await page.screenshot({ path: "screenshots/search-cached.png", fullPage: true });
    // A cached file that is damaged (here: cut short) is caught by the loader, evicted and fetched again.
    await weightsCached();
    await page.evaluate(async () => {
      const cache = await caches.open("webgpu-infer-v1");
      const url = new URL("/models/all-MiniLM-L6-v2/model.safetensors", location.href).href;
      const whole = await (await cache.match(url)).arrayBuffer();
      const headers = { "content-type": "application/octet-stream", etag: (await cache.match(url)).headers.get("etag") };
      await cache.put(url, new Response(whole.slice(0, 1 << 20), { headers }));
    });
    await page.reload();
    await page.waitForSelector('#load-status[data-state="loaded"]', { timeout: TIMEOUT });
    assert.equal(await page.getAttribute("#load-status", "data-cache"), "miss", await page.textContent("#load-status"));
    await page.click("#clear-cache");
    await page.waitForFunction(() => /cache cleared \(\d+ files?\)/.test(document.getElementById("load-status").textContent));
    assert.equal(await page.evaluate(async () => (await (await caches.open("webgpu-infer-v1")).keys()).length), 0);
  } finally {
    await browser.close();
  }
});

// The same page served cross-origin isolated: the worker takes the threaded build (pkg-threads/,
// relaxed SIMD; Chromium has both), runs the CPU backend on every core, and ranks with the same
// scores as the one-thread page (shown to 4 decimals; the fused multiply-adds round differently in
// the last bits only).
await check("cross-origin isolated, the worker's CPU backend runs on every core (pkg-threads)", async () => {
  const isolated = await serve(0, { isolated: true });
  const browser = await chromium.launch({ executablePath, args: [...BASE_ARGS, "--enable-unsafe-webgpu"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
    await loadWithProgress(page, `http://127.0.0.1:${isolated.address().port}/www/search.html`, { moved: false });
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const status = await page.textContent("#load-status");
    assert.match(status, new RegExp(`on the CPU, ${cores} threads? \\(`), status);
    await page.click("#search");
    await page.waitForSelector('#timing[data-state="done"]', { timeout: 300_000 });
    const rows = await page.$$eval("#results tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    if (searchRows) {
      const scoreOf = (rs) => Object.fromEntries(rs.map(([score, text]) => [text, Number(score)]));
      const [a, b] = [scoreOf(rows), scoreOf(searchRows)];
      for (const text of Object.keys(b)) assert.ok(Math.abs(a[text] - b[text]) <= 2e-4, `${text}: ${a[text]} vs ${b[text]}`);
    }
    assert.equal(rows[0][1], "A man is eating food.");
    console.log(`     ${status.trim()}`);
    // The chat page on the same isolated server: the generator on the CPU backend ("auto" on this
    // software adapter) on every core, its greedy answer transformers' (the CPU team's threads).
    const { prompt, expected } = await chatGolden();
    const chatPage = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    await loadWithProgress(chatPage, `http://127.0.0.1:${isolated.address().port}/www/chat.html`, { moved: false });
    const chatStatus = await chatPage.textContent("#load-status");
    assert.match(chatStatus, new RegExp(`on the CPU, ${cores} threads? \\(software adapter`), chatStatus);
    const { answer, speed } = await chatTurn(chatPage, prompt, 16);
    assert.equal(answer, expected);
    console.log(`     chat: ${chatStatus.trim()}; ${speed}`);
  } finally {
    await browser.close();
    isolated.close();
  }
});

await check("chat streams the answer transformers gives (greedy) and shows tokens/s", async () => {
  const chatUrl = url.replace(/\/www\/$/, "/www/chat.html");
  const { prompt, expected } = await chatGolden();
  const browser = await chromium.launch({ executablePath, args: [...BASE_ARGS, "--enable-unsafe-webgpu"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    await loadWithProgress(page, chatUrl);
    // "auto" on SwiftShader: the CPU backend, and the page says why.
    const status = await page.textContent("#load-status");
    assert.match(status, /on the CPU, 1 thread \(software adapter .*: the CPU backend is faster\)/, status);
    const { answer, speed } = await chatTurn(page, prompt, 16);
    await page.screenshot({ path: "screenshots/chat.png", fullPage: true });
    assert.equal(answer, expected);
    assert.match(speed, /tok\/s/);
    assert.match(speed, /\(0 reused\)/);
    assert.match(speed, /on the CPU backend; stop: eos/);
    console.log(`     ${JSON.stringify(expected)}; ${speed}`);
    // A second turn: the page sends the whole conversation; the engine prefills only the new turn.
    const second = (await chatTurn(page, "And of Italy?")).speed;
    const [, promptTokens, reused] = second.match(/(\d+) prompt tokens \((\d+) reused\)/).map(Number);
    assert.ok(reused > 20 && reused < promptTokens, second);
    assert.equal(await page.locator("#history p").count(), 3); // user, model, user
    await page.screenshot({ path: "screenshots/chat-2.png", fullPage: true });
    console.log(`     turn 2: ${JSON.stringify(await page.textContent("#answer"))}; ${second}`);
  } finally {
    await browser.close();
  }
});

// ChatEngine on the page (the demo runs it in a worker): a whole completion equals the stream's text
// and the generator's own greedy answer for the same prompt (tests/fixtures/tiny-gguf, whose chat
// golden comes from transformers); OpenAI's response shape; what it cannot do is refused by name.
await check("ChatEngine: OpenAI-style completions, streamed and whole, as the generator's greedy answer", () =>
  withPage([...BASE_ARGS, "--enable-unsafe-webgpu"], async (page) => {
    const golden = JSON.parse(await readFile("tests/fixtures/tiny-gguf/golden.json", "utf8"));
    const chat = golden.cases.find((c) => c.name === "chat");
    const r = await page.evaluate(async (prompt) => {
      const { ChatEngine, Generator } = await import("/js/index.js");
      const source = "/tests/fixtures/tiny-gguf/tiny-kquants.gguf";
      const engine = await ChatEngine.load(source, { cache: false });
      const messages = [{ role: "user", content: prompt }];
      const req = { messages, max_tokens: 16, temperature: 0, ignore_eos: true };
      const whole = await engine.chat.completions.create(req);
      const chunks = [];
      for await (const c of await engine.chat.completions.create({ ...req, stream: true })) chunks.push(c);
      // The reference on the GPU (the engine, "auto" on SwiftShader, runs on the CPU backend).
      const g = await Generator.load(source, { cache: false, backend: "gpu" });
      const ref = await g.generateText(prompt, { chat: true, maxTokens: 16, stopAtEos: false });
      // JSON mode on a random-weight model (no liking for JSON): every field bounded, so the
      // document ends; the answer must parse and follow the schema.
      const schema = {
        type: "object",
        properties: { answer: { enum: ["yes", "no"] }, score: { type: "integer", minimum: 0, maximum: 9 } },
        required: ["answer", "score"], additionalProperties: false,
      };
      const json = await engine.chat.completions.create({
        messages, max_tokens: 48, temperature: 1, seed: 3,
        response_format: { type: "json_schema", json_schema: { name: "verdict", schema } },
      });
      let refused = "";
      try {
        await engine.chat.completions.create({ ...req, ignore_eos: false,
          response_format: { type: "json_schema", json_schema: { schema: { type: "nonsense" } } } });
      } catch (e) { refused = e.message; }
      return { whole, chunks, refText: ref.text, refIds: Array.from(ref.ids), refused, json,
        backends: [engine.generator.backend, g.backend] };
    }, chat.prompt);
    assert.deepEqual(r.backends, ["cpu", "gpu"]);
    assert.deepEqual(r.refIds, chat.greedy_ids); // the generator against transformers
    assert.equal(r.whole.object, "chat.completion");
    assert.equal(r.whole.choices[0].message.role, "assistant");
    assert.equal(r.whole.choices[0].message.content, r.refText);
    assert.equal(r.whole.choices[0].finish_reason, "length");
    assert.equal(r.whole.usage.completion_tokens, 16);
    assert.equal(r.whole.usage.prompt_tokens, chat.prompt_ids.length);
    assert.equal(r.chunks[0].choices[0].delta.role, "assistant");
    assert.equal(r.chunks.map((c) => c.choices[0].delta.content ?? "").join(""), r.refText);
    const last = r.chunks.at(-1);
    assert.equal(last.choices[0].finish_reason, "length");
    // The same request again: all but the last prompt token came from the cache.
    assert.equal(last.usage.extra.reused_prompt_tokens, chat.prompt_ids.length - 1);
    assert.equal(r.json.choices[0].finish_reason, "stop", r.json.choices[0].message.content);
    const verdict = JSON.parse(r.json.choices[0].message.content);
    assert.deepEqual(Object.keys(verdict), ["answer", "score"]);
    assert.ok(["yes", "no"].includes(verdict.answer) && Number.isInteger(verdict.score) &&
      verdict.score >= 0 && verdict.score <= 9, r.json.choices[0].message.content);
    assert.match(r.refused, /response_format: the JSON schema/);
    console.log(`     JSON mode: ${r.json.choices[0].message.content}`);
    console.log(`     ${JSON.stringify(r.whole.choices[0].message.content)}`);
  }),
);

await check("images page: top-5 labels as PyTorch's, the upscaled picture drawn into the canvas (CPU backend on this software adapter, and a GPU upscaler alike)", async () => {
  const pageUrl = url.replace(/\/www\/$/, "/www/vision.html");
  const golden = JSON.parse(await readFile("tests/goldens/efficientnet_lite0.json", "utf8"));
  const cat = golden.images.find((g) => g.image === "cat.png");
  // A WebGPU canvas in headless Chromium needs Vulkan compositing (SwiftShader's): with the default GL
  // compositing the device is lost as soon as the canvas is configured.
  const args = [...BASE_ARGS, "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
    "--use-angle=swiftshader"];
  const browser = await chromium.launch({ executablePath, args });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    // 20 MB from localhost can load between two samples of the bar: not asserted here.
    await loadWithProgress(page, pageUrl, { moved: false });
    await page.waitForSelector('#timing[data-state="done"], #timing[data-state="error"]', { timeout: 300_000 });
    await page.screenshot({ path: "screenshots/vision.png", fullPage: true });
    const timing = await page.textContent("#timing");
    assert.equal(await page.getAttribute("#timing", "data-state"), "done", timing);
    const labels = await page.$$eval("#labels td:first-child", (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(labels, cat.top5.map((t) => t.label));
    // cat.png is 361x240: on a software adapter the upscaler takes its centre 128x128; x2 gives 256x256.
    assert.equal(await page.getAttribute("#timing", "data-upscaled"), "256x256");
    // What upscaleToCanvas drew equals what upscale() reads back, pixel for pixel, for the page's
    // upscaler (auto: the CPU backend on this software adapter, nothing submitted to the GPU) and for
    // one on the GPU (each tile a counted submit, then the copy to the canvas or the read-back); the
    // two backends' pixels agree within one step (sums in another order).
    const diff = await page.evaluate(async () => {
      const { Upscaler, stats } = await import("/js/index.js");
      const img = document.getElementById("original");
      const bitmap = await createImageBitmap(img, 0, 0, 64, 48);
      const check = async (upscaler) => {
        const canvas = document.createElement("canvas");
        const s0 = stats().submits;
        const { width, height } = await upscaler.upscaleToCanvas(bitmap, canvas);
        const s1 = stats().submits;
        const ctx = new OffscreenCanvas(width, height).getContext("2d");
        ctx.drawImage(canvas, 0, 0);
        const drawn = ctx.getImageData(0, 0, width, height).data;
        const read = (await upscaler.upscale(bitmap)).data;
        const submits = { canvas: s1 - s0, upscale: stats().submits - s1 };
        let off = 0, max = 0;
        const where = [];
        for (let i = 0; i < read.length; i++) {
          const d = Math.abs(read[i] - drawn[i]);
          max = Math.max(max, d);
          if (d > 1) { off++; if (where.length < 6) where.push([i % 4, read[i], drawn[i]]); }
        }
        return { backend: upscaler.backend, off, max, where, n: read.length, width, height, submits, read };
      };
      const page = await check(window.demo.upscaler);
      const gpuUpscaler = await Upscaler.load("/models/esrgan-slim/x2/", { backend: "gpu" });
      const gpu = await check(gpuUpscaler);
      gpuUpscaler.free();
      let across = 0;
      for (let i = 0; i < gpu.read.length; i++) across = Math.max(across, Math.abs(gpu.read[i] - page.read[i]));
      delete page.read;
      delete gpu.read;
      return { page, gpu, across };
    });
    assert.equal(diff.page.backend, "cpu", JSON.stringify(diff));
    for (const d of [diff.page, diff.gpu]) assert.equal(d.off, 0, `canvas vs read-back: ${JSON.stringify(d)}`);
    assert.deepEqual(diff.page.submits, { canvas: 0, upscale: 0 }, "the CPU upscaler submitted GPU work");
    assert.ok(diff.gpu.submits.canvas >= 2, `upscaleToCanvas counted ${diff.gpu.submits.canvas} submits`);
    assert.equal(diff.gpu.submits.canvas, diff.gpu.submits.upscale, `submits: ${JSON.stringify(diff.gpu.submits)}`);
    assert.ok(diff.across <= 1, `CPU and GPU upscalers differ by ${diff.across}`);
    // A non-image input is refused with a message that says what is expected.
    const refused = await page.evaluate(async () => {
      try { await window.demo.classifier.classify("cat.png"); return "accepted"; } catch (e) { return e.message; }
    });
    assert.match(refused, /expected an ImageBitmap, HTMLImageElement/);
    // Worker mode: the same pixels as on the page, and the canvas handed to the worker gets drawn.
    const w = await page.evaluate(async () => {
      const { Upscaler, Classifier } = await import("/js/index.js");
      const img = document.getElementById("original");
      const bitmap = await createImageBitmap(img, 0, 0, 32, 24);
      const u = await Upscaler.inWorker("/models/esrgan-slim/x2/");
      const inWorker = await u.upscale(bitmap);
      const onPage = await window.demo.upscaler.upscale(bitmap);
      let off = 0;
      for (let i = 0; i < onPage.data.length; i++) if (Math.abs(onPage.data[i] - inWorker.data[i]) > 1) off++;
      const canvas = document.createElement("canvas");
      const dims = await u.upscaleToCanvas(bitmap, canvas);
      const c = await Classifier.inWorker("/models/efficientnet-lite0/", { worker: u.host });
      const top = await c.classify(img, 1);
      const backends = [u.backend, c.backend];
      await c.dispose();
      await u.dispose();
      return { off, size: `${inWorker.width}x${inWorker.height}`, dims, top: top[0].label, backends };
    });
    // The worker's own device places both models as the page's does (the CPU on this software adapter).
    assert.deepEqual(w.backends, ["cpu", "cpu"], JSON.stringify(w));
    delete w.backends;
    assert.deepEqual(w, { off: 0, size: "64x48", dims: { width: 64, height: 48 }, top: cat.top5[0].label });
    console.log(`     ${labels[0]}; ${timing}`);
  } finally {
    await browser.close();
  }
});

await check("the packed npm package works in a Vite app (Embedder.inWorker)", async () => {
  const appUrl = url.replace(/\/www\/$/, "/examples/vite-app/dist/index.html");
  const browser = await chromium.launch({ executablePath, args: [...BASE_ARGS, "--enable-unsafe-webgpu"] });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
    page.on("pageerror", (e) => console.log(`     page error: ${e.message}`));
    await page.goto(appUrl);
    await page.waitForSelector('#out[data-state="done"], #out[data-state="failed"]', { timeout: 300_000 });
    await page.screenshot({ path: "screenshots/vite-app.png", fullPage: true });
    const text = await page.textContent("#out");
    assert.equal(await page.getAttribute("#out", "data-state"), "done", text);
    const r = JSON.parse(text);
    assert.equal(r.dims, 384);
    // The pairs' similarities as sentence-transformers computes them (scripts/goldens_minilm.py writes
    // them into the goldens); the embeddings match it within 4e-7 a component (tests/bert.rs), which
    // moves a cosine by ~1e-7 (measured): bound SIM_TOL.
    const sims = JSON.parse(await readFile("tests/goldens/all-MiniLM-L6-v2.json", "utf8")).similarities;
    for (const key of ["meal_vs_food", "meal_vs_market"]) {
      assert.ok(Math.abs(r[key] - sims[key]) < SIM_TOL, `${key}: ${r[key]} vs ${sims[key]}; ${text}`);
    }
    assert.equal(r.concurrent_same, true, "two concurrent embed calls give the same vector");
    assert.match(r.after_dispose, /disposed/);
    // EfficientNet-Lite0 in the same worker, on tests/fixtures/images/cat.png: PyTorch's top 3.
    const cat = JSON.parse(await readFile("tests/goldens/efficientnet_lite0.json", "utf8")).images.find((g) => g.image === "cat.png");
    assert.deepEqual(r.top_labels, cat.top5.slice(0, 3).map((t) => t.label));
    console.log(`     ${JSON.stringify(r)}`);
  } finally {
    await browser.close();
  }
});

await check("a browser without navigator.gpu gets a clear message", () =>
  withPage(
    [...BASE_ARGS, "--enable-unsafe-webgpu"],
    async (page) => {
      await page.waitForSelector("#banner.error", { timeout: TIMEOUT });
      await page.screenshot({ path: "screenshots/demo-no-webgpu.png", fullPage: true });
      assert.match(await page.textContent("#banner"), /does not expose WebGPU/);
    },
    () => {
      delete Navigator.prototype.gpu;
    },
  ),
);

// A browser without WebAssembly SIMD (the module would not compile): `ready()`, and so every load,
// rejects with a message that names the browsers that can; here every `WebAssembly.validate` says
// no, as such an engine answers the package's SIMD probe.
await check("a browser without WebAssembly SIMD gets a clear message", () =>
  withPage(
    [...BASE_ARGS, "--enable-unsafe-webgpu"],
    async (page) => {
      const message = await page.evaluate(async () => {
        const { ready } = await import("/js/index.js");
        return ready().then(() => "ready", (e) => e.message);
      });
      assert.match(message, /needs WebAssembly SIMD .*Safari 16\.4\+/, message);
    },
    () => {
      WebAssembly.validate = () => false;
    },
  ),
);

await check("without --enable-unsafe-webgpu the page ends in the state the browser's WebGPU implies", () =>
  withPage(BASE_ARGS, async (page) => {
    // Asked of the browser itself, not of the page: does it give an adapter without the flag?
    const adapter = await page.evaluate(async () => {
      try {
        return Boolean(navigator.gpu && (await navigator.gpu.requestAdapter()));
      } catch {
        return false;
      }
    });
    await page.waitForSelector('#banner.error, #status[data-state="ok"]', { timeout: TIMEOUT });
    await page.screenshot({ path: "screenshots/demo-default-flags.png", fullPage: true });
    const banner = await page.$("#banner.error");
    if (adapter) {
      assert.equal(banner, null, "an adapter exists, yet the page shows an error");
      assert.equal(await page.getAttribute("#status", "data-state"), "ok");
    } else {
      assert.ok(banner, "no adapter, yet no error banner");
      assert.match(await banner.textContent(), /WebGPU|adapter/);
    }
    console.log(`     adapter without the flag: ${adapter}`);
  }),
);

server.close();
process.exit(failed ? 1 : 0);
