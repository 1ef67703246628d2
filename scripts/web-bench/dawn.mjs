// scripts/web-bench/deno.mjs run through Dawn: the npm package `webgpu` (dawn.node, the WebGPU
// implementation Chrome ships, built as a Node-API addon) gives `navigator.gpu` on the machine's
// Vulkan. Closer to what a Chrome page gets than Deno's own WebGPU (wgpu): Dawn's validation and
// Tint's robustness checks, Chrome's limits, and map callbacks that resolve as soon as the GPU is
// done (Deno's WebGPU resolves them after a 10 ms sleep, docs/web-gpu-path.md).
//
//   node scripts/web-bench/dawn.mjs --dawn DIR [deno.mjs flags]
//   deno run -A scripts/web-bench/dawn.mjs --dawn DIR [deno.mjs flags]   (V8 in Deno, Dawn's WebGPU)
//     DIR: the unpacked npm package `webgpu` (its package.json and dist/linux-x64/dawn.node)
//     --dawn-toggles a,b: Dawn toggles (create()'s "enable-dawn-features=..." strings), none by default
//
// Under Node, what deno.mjs takes from Deno (args, file reads, file:// fetches) is provided here; the
// wllama peer (Deno.serve) runs under Deno's WebGPU only.
import { readFile } from "node:fs/promises";
import { realpathSync, statSync, createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const inDeno = typeof globalThis.Deno !== "undefined";
const argv = inDeno ? [...Deno.args] : process.argv.slice(2);
const take = (name) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const [, value] = argv.splice(i, 2);
  return value;
};
const dawnDir = take("dawn");
if (!dawnDir) {
  console.error("usage: node (or deno run -A) scripts/web-bench/dawn.mjs --dawn DIR [deno.mjs flags]");
  process.exit(2);
}
const toggles = (take("dawn-toggles") ?? "").split(",").filter(Boolean);
// The addon itself (the package's index.js only adds a fix for device.destroy() under Node).
const require = createRequire(import.meta.url);
const { create, globals } = require(`${realpathSync(dawnDir)}/dist/${process.platform}-${process.arch}/dawn.node`);
const { version } = JSON.parse(await readFile(`${dawnDir}/package.json`, "utf8"));

Object.assign(globalThis, globals);
const gpu = create(toggles);
Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
globalThis.self ??= globalThis;
// wgpu's web backend looks for `Window` (or `WorkerGlobalScope`) on the global before it reads
// `navigator.gpu`.
globalThis.Window ??= function Window() {};
// onnxruntime-web's WebGPU build runs on a shared WASM memory (a SharedArrayBuffer, even on one
// thread) and writes its inputs with `queue.writeBuffer(buffer, offset, viewOnThatMemory, ...)`,
// which Chrome accepts; dawn.node does not take a view on a SharedArrayBuffer (under Node: "Invalid
// argument"; under Deno the process died in the first session.run). Such views are copied into a
// plain array first (inputs of a few KB a run; our package's memory is not shared and never takes
// this branch).
const writeBuffer = GPUQueue.prototype.writeBuffer;
GPUQueue.prototype.writeBuffer = function (buffer, offset, data, dataOffset, size) {
  if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
    const start = dataOffset ?? 0;
    data = data.slice(start, size === undefined ? undefined : start + size);
    dataOffset = 0;
    size = data.length;
  }
  return dataOffset === undefined ? writeBuffer.call(this, buffer, offset, data)
    : writeBuffer.call(this, buffer, offset, data, dataOffset, size);
};
const host = inDeno ? `deno ${Deno.version.deno}` : `node ${process.versions.node}`;
globalThis.WEB_BENCH_RUNTIME = `${host} dawn.node (npm webgpu ${version})`;
if (inDeno) {
  // Deno reads file:// URLs with fetch and has the rest; deno.mjs's flag parser skips --dawn.
  await import("./deno.mjs");
  Deno.exit(0);
}

// file:// URLs: Node's fetch refuses them; the package loads models with fetch, streaming the body.
const netFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = String(input instanceof Request ? input.url : input);
  if (!url.startsWith("file:")) return netFetch(input, init);
  const path = fileURLToPath(url);
  let size;
  try {
    size = statSync(path).size;
  } catch {
    return new Response(null, { status: 404, statusText: `no such file: ${path}` });
  }
  const body = Readable.toWeb(createReadStream(path, { highWaterMark: 1 << 20 }));
  return new Response(body, { status: 200, headers: { "content-length": String(size) } });
};

globalThis.Deno = {
  args: argv,
  version: { deno: "(none: node)" },
  readFile: async (p) => new Uint8Array(await readFile(p instanceof URL ? p : String(p))),
  readTextFile: (p) => readFile(p instanceof URL ? p : String(p), "utf8"),
  realPathSync: (p) => realpathSync(p),
  serve: () => {
    throw new Error("Deno.serve: the wllama peer runs under Deno only");
  },
};

await import("./deno.mjs");
// dawn.node keeps the event loop alive while a device exists.
process.exit(0);
