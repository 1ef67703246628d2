//! Helpers shared by the integration tests, natively (`cargo test`, on the default adapter: lavapipe on
//! CI) and in the browser (`wasm-pack test --headless --chrome`, on SwiftShader). Each test body is an
//! `async fn`; [`gpu_test!`] turns it into a `#[test]` natively and a `#[wasm_bindgen_test]` on wasm32.
#![allow(dead_code)]

use webgpu_infer::{Gpu, Result};

/// Declares a test that runs the given async body on both targets.
#[macro_export]
macro_rules! gpu_test {
    ($name:ident, $body:path) => {
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            pollster::block_on($body()).expect(stringify!($name));
        }

        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() {
            $body().await.expect(stringify!($name));
        }
    };
}

/// Uploads `x` as `dtype`; for f16 the host values are rounded to f16 in place first, so that CPU
/// references see exactly what the GPU sees.
pub fn upload(
    gpu: &Gpu,
    dtype: webgpu_infer::DType,
    x: &mut [f32],
    shape: &[usize],
) -> Result<webgpu_infer::Tensor> {
    match dtype {
        webgpu_infer::DType::F16 => {
            let h: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
            x.iter_mut().zip(&h).for_each(|(v, h)| *v = h.to_f32());
            webgpu_infer::Tensor::from_f16(gpu, &h, shape)
        }
        _ => webgpu_infer::Tensor::from_f32(gpu, x, shape),
    }
}

/// Prints a line to the test output (the console in the browser, which wasm-bindgen-test relays).
pub fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}

/// The device the tests run on. A test fails, never skips, when there is none: CI installs one.
pub async fn gpu() -> Result<Gpu> {
    Gpu::new().await
}

/// A small deterministic generator (xorshift64*), so inputs are the same on every run and target.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [-1, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 random bits
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next_f32()).collect()
    }
}

/// Asserts |got - want| <= atol + rtol·|want| element-wise, naming the first index that is off.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        assert!(
            (g - w).abs() <= tol && g.is_finite() == w.is_finite(),
            "{what}: element {i}: got {g}, want {w} (tolerance {tol})"
        );
    }
}

/// CPU reference: C[b] = A[b] · B[b] (or · B[b]ᵀ), in f64 to be an exact yardstick for f32 kernels.
/// `b_batched` false means one B for every batch entry.
#[allow(clippy::too_many_arguments)]
pub fn matmul_ref(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
    b_batched: bool,
) -> Vec<f32> {
    let mut c = vec![0f32; batch * m * n];
    for bi in 0..batch {
        let a0 = bi * m * k;
        let b0 = if b_batched { bi * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for p in 0..k {
                    let bv = if trans_b {
                        b[b0 + j * k + p]
                    } else {
                        b[b0 + p * n + j]
                    };
                    acc += f64::from(a[a0 + i * k + p]) * f64::from(bv);
                }
                c[bi * m * n + i * n + j] = acc as f32;
            }
        }
    }
    c
}

/// CPU reference: softmax over rows of length `cols`, in f64.
pub fn softmax_ref(x: &[f32], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|&v| f64::from(v - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| (e / sum) as f32));
    }
    out
}

// ---- weight files ----

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};
use webgpu_infer::DType;
use webgpu_infer::bridge::Weights;

/// Builds a safetensors image by hand (independently of the loader): tensors in the given order,
/// contiguous, and the JSON padded with spaces so that the data section starts at a file offset
/// `≡ data_start_mod4 (mod 4)`, to exercise unaligned offsets.
pub fn safetensors_image(
    tensors: &[(&str, &str, &[usize], Vec<u8>)],
    data_start_mod4: usize,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [data.len(), data.len() + bytes.len()]}),
        );
        data.extend_from_slice(bytes);
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    while (8 + json.len()) % 4 != data_start_mod4 % 4 {
        json.push(b' ');
    }
    let mut image = (json.len() as u64).to_le_bytes().to_vec();
    image.extend_from_slice(&json);
    image.extend_from_slice(&data);
    image
}

/// Loads an image through the target's streaming path: natively from memory, in the browser from a
/// `Response` whose body arrives in 7-byte chunks (so chunk edges fall everywhere, with no
/// Content-Length).
pub async fn load_image(gpu: &Gpu, image: &[u8]) -> Result<Weights> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        webgpu_infer::bridge::native::load_bytes(gpu, "image", image, &mut |_| {})
    }
    #[cfg(target_arch = "wasm32")]
    {
        let response = web::chunked_response(&js_sys::Uint8Array::from(image), 7);
        let source = webgpu_infer::bridge::web::Source::Response(response);
        webgpu_infer::bridge::web::load(gpu, source, None, &mut |_| {}).await
    }
}

#[cfg(target_arch = "wasm32")]
pub mod web {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = r#"
export function chunked_response(bytes, chunk) {
  let pos = 0;
  const body = new ReadableStream({
    pull(c) {
      if (pos >= bytes.length) { c.close(); return; }
      c.enqueue(bytes.slice(pos, pos + chunk));
      pos += chunk;
    },
  });
  return new Response(body);
}
export async function image_bitmap_js(bytes) {
  return await createImageBitmap(new Blob([bytes], { type: "image/png" }),
    { colorSpaceConversion: "none", premultiplyAlpha: "none" });
}
export async function decode_rgba_js(bytes) {
  const b = await image_bitmap_js(bytes);
  const ctx = new OffscreenCanvas(b.width, b.height).getContext("2d");
  ctx.drawImage(b, 0, 0);
  const d = ctx.getImageData(0, 0, b.width, b.height);
  return [new Uint8Array(d.data.buffer), b.width, b.height];
}
export function blob_of(bytes) {
  return new Blob([bytes]);
}
export async function fetch_bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
"#)]
    extern "C" {
        pub fn chunked_response(bytes: &js_sys::Uint8Array, chunk: u32) -> web_sys::Response;
        pub fn blob_of(bytes: &js_sys::Uint8Array) -> web_sys::Blob;
        #[wasm_bindgen(catch)]
        async fn fetch_bytes(url: &str) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(catch)]
        async fn image_bitmap_js(bytes: &js_sys::Uint8Array) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(catch)]
        async fn decode_rgba_js(bytes: &js_sys::Uint8Array) -> Result<JsValue, JsValue>;
    }

    /// Decodes an image file the way a page does (`createImageBitmap`).
    pub async fn image_bitmap(bytes: &[u8]) -> web_sys::ImageBitmap {
        use wasm_bindgen::JsCast;
        image_bitmap_js(&js_sys::Uint8Array::from(bytes))
            .await
            .expect("createImageBitmap")
            .unchecked_into()
    }

    /// RGBA pixels of an image file, decoded by the browser and read from a 2D canvas.
    pub async fn decode_rgba(bytes: &[u8]) -> (Vec<u8>, u32, u32) {
        let out: js_sys::Array = decode_rgba_js(&js_sys::Uint8Array::from(bytes))
            .await
            .expect("decode")
            .into();
        let pixels = js_sys::Uint8Array::new(&out.get(0)).to_vec();
        let dim = |i| out.get(i).as_f64().expect("size") as u32;
        (pixels, dim(1), dim(2))
    }

    /// A served file's bytes held in JS (nothing enters WASM memory).
    pub async fn fetch_js(url: &str) -> js_sys::Uint8Array {
        js_sys::Uint8Array::new(&fetch_bytes(url).await.expect("fetch"))
    }

    /// The test's own copy of a served file (into WASM memory: only for reference values).
    pub async fn fetch_vec(url: &str) -> Vec<u8> {
        let bytes = fetch_bytes(url).await.expect("fetch");
        js_sys::Uint8Array::new(&bytes).to_vec()
    }
}

/// Checks every tensor of `weights` against the file `image`, decoded by the `safetensors` crate and
/// `half` on the CPU: bit-exact (every conversion the loader does is exact).
pub async fn check_against_file(weights: &Weights, image: &[u8]) -> Result<()> {
    let file = SafeTensors::deserialize(image).expect("reference parse");
    assert_eq!(weights.len(), file.len(), "tensor count");
    check_tensors_of_file(weights, image).await
}

/// Like [`check_against_file`] for the tensors of `image` only (one shard of a larger checkpoint).
pub async fn check_tensors_of_file(weights: &Weights, image: &[u8]) -> Result<()> {
    let file = SafeTensors::deserialize(image).expect("reference parse");
    for (name, view) in file.tensors() {
        let t = weights.get(&name)?;
        assert_eq!(t.shape(), view.shape(), "{name}: shape");
        let raw = view.data();
        match (view.dtype(), t.dtype()) {
            (Dtype::F32, DType::F32) => {
                assert_bits(&name, &t.to_f32_vec().await?, &decode_f32(raw))
            }
            (Dtype::BF16, DType::F32) => {
                let want: Vec<f32> = raw
                    .chunks_exact(2)
                    .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect();
                assert_bits(&name, &t.to_f32_vec().await?, &want)
            }
            (Dtype::F16, DType::F32) => {
                let want: Vec<f32> = raw
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect();
                assert_bits(&name, &t.to_f32_vec().await?, &want)
            }
            (Dtype::F16, DType::F16) => {
                let want: Vec<f16> = raw
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]))
                    .collect();
                assert_eq!(t.to_f16_vec().await?, want, "{name}");
            }
            (Dtype::I32, DType::I32) => {
                let want: Vec<i32> = raw
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                assert_eq!(t.to_i32_vec().await?, want, "{name}");
            }
            (Dtype::I64, DType::I32) => {
                let want: Vec<i32> = raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as i32)
                    .collect();
                assert_eq!(t.to_i32_vec().await?, want, "{name}");
            }
            (stored, loaded) => panic!("{name}: stored {stored:?} loaded as {loaded:?}"),
        }
    }
    Ok(())
}

fn decode_f32(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn assert_bits(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!("{name}: element {i}: got {}, want {}", got[i], want[i]);
    }
}

/// Reads a test asset: natively from the crate root, in the browser from the test server (which serves
/// the crate root).
pub async fn read_asset(path: &str) -> Vec<u8> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/fetch-models.sh)"))
    }
    #[cfg(target_arch = "wasm32")]
    {
        web::fetch_vec(&format!("/{path}")).await
    }
}

/// Parses and validates a WGSL module with naga, every capability on (shaders an adapter here cannot
/// run: tensor cores, subgroups); panics with `name` and naga's report on an error.
#[cfg(not(target_arch = "wasm32"))]
pub fn naga_validates(name: &str, source: &str) {
    use wgpu::naga;
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
}

/// [`naga_validates`], then the module for `entry` with these override constants written as SPIR-V
/// 1.6 (what wgpu hands a Vulkan 1.3 driver), so that a kernel no adapter here can run still meets
/// the backend that will compile it; panics with `name` and naga's error. Where wgpu's naga has no
/// SPIR-V writer (no Vulkan backend: macOS), only validates.
#[cfg(not(target_arch = "wasm32"))]
pub fn naga_writes_spirv(name: &str, source: &str, entry: &str, constants: &[(&str, f64)]) {
    naga_validates(name, source);
    #[cfg(any(target_os = "linux", target_os = "windows"))]
    {
        use wgpu::naga;
        let module = naga::front::wgsl::parse_str(source).expect("parsed above");
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .expect("validated above");
        let mut values = naga::back::PipelineConstants::default();
        for &(k, v) in constants {
            values.insert(k.to_string(), v);
        }
        let (module, info) = naga::back::pipeline_constants::process_overrides(
            &module,
            &info,
            Some((naga::ShaderStage::Compute, entry)),
            &values,
        )
        .unwrap_or_else(|e| panic!("{name} {entry} {constants:?}: {e}"));
        let options = naga::back::spv::Options {
            lang_version: (1, 6),
            ..Default::default()
        };
        let pipeline = naga::back::spv::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: entry.to_string(),
        };
        naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline))
            .unwrap_or_else(|e| panic!("{name} {entry} {constants:?}: SPIR-V: {e}"));
    }
}
