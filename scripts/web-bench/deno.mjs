// The npm package's own WASM + JS, run through a WebGPU JS runtime outside a browser (Deno: its
// `navigator.gpu` is wgpu on the machine's Vulkan), as a page would run it: decoding, embeddings and
// the kernel benchmarks, JSON lines with "runtime" and the adapter on stdout.
//
//   deno run -A --unstable-webgpu scripts/web-bench/deno.mjs [--pkg pkg] [--models models]
//        [--only decode,embed,kernels] [--new-tokens 128] [--reps 3] [--embed-shapes 1x128,8x128,32x128]
//        [--kernel-ops matmul,gemv,attention,decode,copy] [--ort DIR]   (DIR: onnxruntime-web's dist/)
//
// scripts/gpu-web-bench.sh runs it on the GPU machine next to the native binaries.
import init, { Device } from "../../pkg/webgpu_infer.js";

const args = Deno.args;
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const root = new URL("../../", import.meta.url);
const abs = (p) => (p.startsWith("/") ? new URL(`file://${p}/`) : new URL(`${p}/`, root));
const pkg = abs(arg("pkg", "pkg"));
const models = abs(arg("models", "models"));
const only = (arg("only", "decode,embed,kernels")).split(",");
const reps = Number(arg("reps", "3"));
const runtime = `deno ${Deno.version.deno} webgpu`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const emit = (line) => console.log(JSON.stringify({ runtime, ...line }));

await init({ module_or_path: await Deno.readFile(new URL("webgpu_infer_bg.wasm", pkg)) });
const device = await Device.create();
const adapter = device.info.adapter;
console.error(`[web-bench] ${runtime}, adapter ${adapter}`);

async function decode() {
  const model = new URL(arg("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"), models).href;
  const g = await device.loadGenerator(model);
  const prompt = "The history of the city begins in the early middle ages, when a small settlement grew";
  await g.generateText(prompt, { maxTokens: 8, stopAtEos: false }); // pipelines compile here
  for (const newTokens of arg("new-tokens", "128").split(",").map(Number)) {
    const runs = [];
    for (let r = 0; r < reps; r++) {
      const { stats } = await g.generateText(prompt, { maxTokens: newTokens, stopAtEos: false });
      runs.push(stats);
    }
    const best = runs.reduce((a, b) => (b.decodeTokS > a.decodeTokS ? b : a));
    emit({
      op: "decode", model: model.split("/").pop(), prompt_tokens: best.promptTokens,
      new_tokens: best.newTokens, decode_tok_s: +best.decodeTokS.toFixed(1),
      decode_tok_s_runs: runs.map((s) => +s.decodeTokS.toFixed(1)),
      ttft_ms: +median(runs.map((s) => s.prefillMs)).toFixed(2),
      prefill_tok_s: +median(runs.map((s) => s.prefillTokS)).toFixed(1),
      bytes_read_back_per_token: best.bytesReadBackPerToken, adapter,
    });
  }
}

// Words that are one WordPiece token each (the browser page's list): n words are n + 2 tokens.
const WORDS = ("the city grew along the river where people built houses of stone and wood while "
  + "traders brought salt fish and cloth from the north and the south every year in the warm season "
  + "when the roads were dry and the market was full of music food and news from far away").split(" ");

async function embed() {
  const e = await device.loadEmbedder(new URL("all-MiniLM-L6-v2/", models).href);
  for (const [batch, seq] of arg("embed-shapes", "1x128,8x128,32x128").split(",").map((s) => s.split("x").map(Number))) {
    const texts = [];
    for (let b = 0; b < batch; b++) {
      const words = [];
      for (let i = 0; i < seq - 2; i++) words.push(WORDS[(i * (b + 1) + b) % WORDS.length]);
      texts.push(words.join(" "));
    }
    const n = e.encode(texts[0]).length;
    if (n !== seq) throw new Error(`text is ${n} tokens, not ${seq}`);
    await e.embed(texts);
    const times = [];
    for (let r = 0; r < Math.max(reps, 5); r++) {
      const t = performance.now();
      await e.embed(texts);
      times.push(performance.now() - t);
    }
    emit({ op: "embed", impl: "webgpu-infer", model: "all-MiniLM-L6-v2", batch, seq,
      ms: +median(times).toFixed(2), ms_runs: times.map((t) => +t.toFixed(2)), adapter });
  }
}

async function kernels() {
  const ops = arg("kernel-ops", "copy,matmul,gemv,attention,decode").split(",");
  await device.benchKernels({ ops, maxSquare: 4096, maxSeq: 2048, targetMs: 200 }, (line) => {
    emit(JSON.parse(line));
  });
}

for (const [name, run] of [["decode", decode], ["embed", embed], ["kernels", kernels]]) {
  if (!only.includes(name)) continue;
  try {
    await run();
  } catch (e) {
    emit({ op: name, error: String(e?.message ?? e), adapter });
  }
}
