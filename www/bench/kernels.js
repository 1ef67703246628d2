// Kernel benchmark page: JSON lines {"op","dtype","m","n","k","ms","gflops"|"gbps","adapter"} into
// #out and window.benchResults.
import init, { Device } from "../../pkg/webgpu_infer.js";

const params = new URLSearchParams(location.search);
const out = document.getElementById("out");
window.benchResults = [];

async function main() {
  await init();
  const device = await Device.create();
  const soft = device.info.software;
  const num = (k, dflt) => (params.has(k) ? Number(params.get(k)) : dflt);
  const options = {
    maxSquare: num("max_square", soft ? 512 : 4096),
    maxSeq: num("max_seq", soft ? 512 : 2048),
    copyBytes: num("copy_mb", soft ? 32 : 256) * 2 ** 20,
    targetMs: num("target_ms", soft ? 150 : 300),
    ops: params.get("ops")?.split(",") ?? [],
  };
  await device.benchKernels(options, (line) => {
    window.benchResults.push(JSON.parse(line));
    out.textContent += line + "\n";
    console.log(line);
  });
  document.getElementById("status").textContent = "done";
  window.benchDone = true;
}

main().catch((e) => {
  document.getElementById("status").textContent = `error: ${e.message ?? e}`;
  window.benchError = String(e.message ?? e);
  window.benchDone = true;
});
