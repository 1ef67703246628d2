//! `Device.loadWeights` and the `Weights` / `TensorData` classes: weights streamed into GPU buffers,
//! and tensors read back as JS views of the mapped read-back buffer.

use js_sys::{Array, Float32Array, Int32Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::bridge::load::{Progress, Weights as RustWeights};
use crate::bridge::web::{Source, load};
use crate::tensor::{DType, Mapped};
use crate::web::Device;

/// Tensors loaded onto the GPU, by name.
#[wasm_bindgen]
pub struct Weights {
    inner: RustWeights,
}

#[wasm_bindgen]
impl Weights {
    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.names().into_iter().map(String::from).collect()
    }

    #[wasm_bindgen(getter)]
    pub fn size(&self) -> usize {
        self.inner.len()
    }

    /// `{ shape: number[], dtype: "f32" | "f16" | "i32" }` of one tensor; throws for an unknown name.
    #[wasm_bindgen(unchecked_return_type = "{ shape: number[], dtype: 'f32' | 'f16' | 'i32' }")]
    pub fn info(&self, name: &str) -> Result<Object, JsValue> {
        let t = self.inner.get(name)?;
        let o = Object::new();
        let shape: Array = t.shape().iter().map(|&d| JsValue::from(d as f64)).collect();
        Reflect::set(&o, &"shape".into(), &shape)?;
        Reflect::set(&o, &"dtype".into(), &t.dtype().name().into())?;
        Ok(o)
    }

    /// Reads one tensor back from the GPU. The result is a view of the mapped read-back buffer (no
    /// copy into WASM memory); call `free()` on it when done to release the buffer.
    pub async fn read(&self, name: &str) -> Result<TensorData, JsValue> {
        let t = self.inner.get(name)?;
        let mapped = t.read_mapped().await?;
        Ok(TensorData {
            mapped,
            dtype: t.dtype(),
        })
    }
}

/// A tensor's bytes in a mapped GPU read-back buffer, seen from JS without a copy.
#[wasm_bindgen]
pub struct TensorData {
    mapped: Mapped,
    dtype: DType,
}

#[wasm_bindgen]
impl TensorData {
    /// The values: a `Float32Array` (f32), `Int32Array` (i32) or `Uint16Array`'s bits (f16) viewing the
    /// mapped buffer. Valid until `free()`.
    #[wasm_bindgen(
        getter,
        unchecked_return_type = "Float32Array | Int32Array | Uint16Array"
    )]
    pub fn data(&self) -> JsValue {
        let bytes = self.mapped.as_uint8array();
        let (buffer, offset) = (bytes.buffer(), bytes.byte_offset());
        match self.dtype {
            DType::F32 => {
                Float32Array::new_with_byte_offset_and_length(&buffer, offset, bytes.length() / 4)
                    .into()
            }
            DType::I32 => {
                Int32Array::new_with_byte_offset_and_length(&buffer, offset, bytes.length() / 4)
                    .into()
            }
            DType::F16 => js_sys::Uint16Array::new_with_byte_offset_and_length(
                &buffer,
                offset,
                bytes.length() / 2,
            )
            .into(),
        }
    }

    /// The raw bytes, viewing the mapped buffer.
    #[wasm_bindgen(getter)]
    pub fn bytes(&self) -> Uint8Array {
        self.mapped.as_uint8array()
    }
}

#[wasm_bindgen]
impl Device {
    /// Streams safetensors weights into GPU buffers. `source`: a URL (a `.index.json` URL loads a
    /// sharded checkpoint), a `Response`, a `Blob`/`File`, an `ArrayBuffer` or a typed array.
    /// `options.onProgress({ bytesDone, bytesTotal, tensor })` is called as bytes arrive;
    /// `options.signal` (an `AbortSignal`) cancels the load and frees what was loaded.
    #[wasm_bindgen(js_name = loadWeights)]
    pub async fn load_weights(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "string | URL | Response | Blob | ArrayBuffer | ArrayBufferView"
        )]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<Object>,
    ) -> Result<Weights, JsValue> {
        let source = Source::from_js(source)?;
        let opts = crate::web::LoadOptions::from_js(options.as_ref());
        let mut on_progress = |p: Progress<'_>| opts.report(p);
        let inner = load(
            self.gpu_for("loadWeights")?,
            source,
            opts.net(),
            &mut on_progress,
        )
        .await?;
        Ok(Weights { inner })
    }
}
