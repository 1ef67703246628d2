// Probes for the WebAssembly features the package's builds need, each a one-function module that
// `WebAssembly.validate` accepts only where the engine has the feature.

/** A module with one function of `body` (locals, instructions, `end`). */
function probe(body) {
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x02, 0x01, 0x00, 0x0a, body.length + 2, 0x01, body.length, ...body]);
}
const V128_ZERO = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0

/** Fixed-width SIMD (`v128.const`): both builds are compiled with it (`+simd128`). */
export function hasSimd128() {
  return WebAssembly.validate(probe([0x00, ...V128_ZERO, 0x1a, 0x0b]));
}

/** Relaxed SIMD (`f32x4.relaxed_madd`): the threaded build (pkg-threads/) uses it. */
export function hasRelaxedSimd() {
  return WebAssembly.validate(probe([0x00, ...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x85, 0x02, 0x1a, 0x0b]));
}

/** What `ready()` rejects with where the engine lacks fixed-width SIMD. */
export const NO_SIMD128 =
  "webgpu-infer needs WebAssembly SIMD (128-bit, fixed-width), which this browser does not offer: " +
  "Chrome/Edge 91+, Firefox 89+ and Safari 16.4+ have it; update the browser to run the models here";
