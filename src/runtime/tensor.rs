//! [`Tensor`]: a GPU buffer, a byte offset into it, a shape and an element type. No host copy hides
//! in here: uploads are one `queue.write_buffer` from the caller's slice, read-back is explicit and async.

pub use crate::runtime::dtype::DType;
use std::sync::Arc;

use half::f16;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::runtime::buffer::GpuBuffer;

/// An n-dimensional array in a GPU storage buffer, row-major (the last axis is contiguous).
///
/// Cloning is cheap and shares the buffer.
#[derive(Clone)]
pub struct Tensor {
    gpu: Gpu,
    buffer: Arc<GpuBuffer>,
    /// Byte offset of element 0 in `buffer`, a multiple of 4.
    offset: u64,
    shape: Vec<usize>,
    dtype: DType,
}

impl Tensor {
    /// Uploads f32 values of the given shape.
    ///
    /// ```no_run
    /// # async fn demo(gpu: &webgpu_infer::Gpu) -> webgpu_infer::Result<()> {
    /// let t = webgpu_infer::Tensor::from_f32(gpu, &[1.0, 2.0, 3.0], &[3])?;
    /// assert_eq!(t.to_f32_vec().await?, vec![1.0, 2.0, 3.0]);
    /// # Ok(()) }
    /// ```
    pub fn from_f32(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        Self::from_bytes(gpu, bytemuck::cast_slice(data), shape, DType::F32)
    }

    /// Uploads f16 values of the given shape.
    pub fn from_f16(gpu: &Gpu, data: &[f16], shape: &[usize]) -> Result<Tensor> {
        Self::from_bytes(gpu, bytemuck::cast_slice(data), shape, DType::F16)
    }

    /// Uploads raw little-endian bytes of `dtype` elements: one `write_buffer` from the slice (in the
    /// browser the slice is a view on WASM memory, so no JS-side copy is made).
    pub fn from_bytes(gpu: &Gpu, bytes: &[u8], shape: &[usize], dtype: DType) -> Result<Tensor> {
        let numel = numel(shape);
        if bytes.len() != numel * dtype.size_in_bytes() {
            return Err(Error::shape(
                "Tensor::from_bytes",
                format!(
                    "{} bytes given, but shape {shape:?} of {dtype:?} needs {}",
                    bytes.len(),
                    numel * dtype.size_in_bytes()
                ),
            ));
        }
        let tensor = Self::empty(gpu, shape, dtype)?;
        write_padded(gpu, &tensor.buffer, bytes);
        Ok(tensor)
    }

    /// A tensor whose contents are unspecified (a reused buffer keeps its last contents): for
    /// outputs that a kernel writes in full.
    pub fn empty(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let bytes = (numel(shape) * dtype.size_in_bytes()) as u64;
        check_buffer_size(gpu, bytes, "tensor size in bytes")?;
        // Padded: buffers and copies are sized in multiples of 4 bytes; never empty.
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let buffer = gpu.pooled_buffer(padded_size(bytes), usage);
        Ok(Self::from_buffer(gpu, buffer, shape, dtype))
    }

    /// A tensor over all of `buffer` (which holds at least `shape`'s elements of `dtype`).
    pub(crate) fn from_buffer(
        gpu: &Gpu,
        buffer: Arc<GpuBuffer>,
        shape: &[usize],
        dtype: DType,
    ) -> Tensor {
        debug_assert!(buffer.size() >= (numel(shape) * dtype.size_in_bytes()) as u64);
        Tensor {
            gpu: gpu.clone(),
            buffer,
            offset: 0,
            shape: shape.to_vec(),
            dtype,
        }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    pub fn size_in_bytes(&self) -> u64 {
        (self.numel() * self.dtype.size_in_bytes()) as u64
    }

    pub fn buffer(&self) -> &Arc<GpuBuffer> {
        &self.buffer
    }

    /// Byte offset of element 0 in [`Self::buffer`].
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Offset of element 0 counted in elements, as kernels index their `array<T>`.
    pub(crate) fn offset_elements(&self) -> u32 {
        (self.offset / self.dtype.size_in_bytes() as u64) as u32
    }

    /// The same elements under another shape of equal element count; shares the buffer.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "cannot view {:?} ({} elements) as {shape:?} ({} elements)",
                    self.shape,
                    self.numel(),
                    numel(shape)
                ),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// The elements from this view's first on, as `shape`: a larger view of the same buffer (layers
    /// stacked in one buffer seen whole from the first one's view).
    pub(crate) fn spanning(&self, shape: &[usize]) -> Result<Tensor> {
        let bytes = (numel(shape) * self.dtype.size_in_bytes()) as u64;
        if self.offset + bytes > self.buffer.size() {
            return Err(Error::shape(
                "spanning",
                format!(
                    "{shape:?} from byte {} passes the end of a {}-byte buffer",
                    self.offset,
                    self.buffer.size()
                ),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// Rows `start .. start + len` of the first axis: a view sharing the buffer (a KV cache's positions,
    /// a sequence's last token).
    pub fn narrow(&self, start: usize, len: usize) -> Result<Tensor> {
        let Some((&rows, rest)) = self.shape.split_first() else {
            return Err(Error::shape("narrow", "a scalar has no rows"));
        };
        let row_bytes = (numel(rest) * self.dtype.size_in_bytes()) as u64;
        let offset = self.offset + start as u64 * row_bytes;
        if start + len > rows || !offset.is_multiple_of(4) {
            return Err(Error::shape(
                "narrow",
                format!(
                    "rows {start}..{} of {:?} {}",
                    start + len,
                    self.shape,
                    if start + len > rows {
                        "are out of range"
                    } else {
                        "start at a byte offset that is not a multiple of 4"
                    }
                ),
            ));
        }
        let mut shape = self.shape.clone();
        shape[0] = len;
        Ok(Tensor {
            offset,
            shape,
            ..self.clone()
        })
    }

    /// Reads the tensor back as f32 (f16 tensors are widened on the host after the read).
    pub async fn to_f32_vec(&self) -> Result<Vec<f32>> {
        f32s_from_bytes(self.dtype, &self.read_bytes().await?)
    }

    /// Reads an i32 tensor back.
    pub async fn to_i32_vec(&self) -> Result<Vec<i32>> {
        if self.dtype != DType::I32 {
            return Err(Error::DType {
                op: "to_i32_vec",
                message: "the tensor must be i32".into(),
                got: self.dtype,
            });
        }
        Ok(bytemuck::pod_collect_to_vec(&self.read_bytes().await?))
    }

    /// Reads an f16 tensor back as f16 values.
    pub async fn to_f16_vec(&self) -> Result<Vec<f16>> {
        if self.dtype != DType::F16 {
            return Err(Error::DType {
                op: "to_f16_vec",
                message: "the tensor must be f16; use to_f32_vec".into(),
                got: self.dtype,
            });
        }
        let bytes = self.read_bytes().await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Copies the tensor's bytes into a mappable buffer, waits for the GPU, and returns them.
    pub async fn read_bytes(&self) -> Result<Vec<u8>> {
        let mapped = self.read_mapped().await?;
        let out = copy_out(&mapped.view, mapped.len);
        self.gpu.copy_stats().wasm_in(out.len() as u64);
        Ok(out)
    }

    /// Copies the tensor into a mappable buffer and maps it: the bytes are then readable in place
    /// (natively as a slice; in the browser as a JS view, with no copy into WASM memory).
    pub async fn read_mapped(&self) -> Result<Mapped> {
        let bytes = self.size_in_bytes();
        let padded = padded_size(bytes);
        let staging = self.gpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: padded,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .gpu
            .device()
            .create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.buffer, self.offset, &staging, 0, padded);
        self.gpu.submit(encoder.finish());
        map_read(&self.gpu, &staging).await?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Readback(e.to_string()))?;
        self.gpu.copy_stats().to_host(bytes);
        Ok(Mapped {
            view,
            len: bytes as usize,
            _staging: staging,
        })
    }
}

/// The first `len` bytes of a mapped range, copied once into a `Vec`. In the browser, reading a
/// `BufferView` as a slice makes wgpu copy the whole mapping into WASM memory first (a second copy,
/// and twice the memory, before `to_vec`); the JS view is copied into the `Vec` directly instead.
pub(crate) fn copy_out(view: &wgpu::BufferView, len: usize) -> Vec<u8> {
    #[cfg(target_arch = "wasm32")]
    {
        let mut out = vec![0u8; len];
        view.as_uint8array()
            .subarray(0, len as u32)
            .copy_to(&mut out);
        out
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        view[..len].to_vec()
    }
}

/// A tensor's bytes in a mapped read-back buffer. Dropping it unmaps and frees the buffer.
pub struct Mapped {
    // Field order matters: the view is dropped before the buffer is destroyed.
    view: wgpu::BufferView,
    len: usize,
    _staging: Arc<GpuBuffer>,
}

impl Mapped {
    /// The bytes, in place (natively; in the browser, reading them copies into WASM memory).
    pub fn bytes(&self) -> &[u8] {
        &self.view[..self.len]
    }

    /// The bytes as a JS view on the mapped ArrayBuffer: no copy into WASM memory. Valid while `self`
    /// lives.
    #[cfg(target_arch = "wasm32")]
    pub fn as_uint8array(&self) -> js_sys::Uint8Array {
        self.view.as_uint8array().subarray(0, self.len as u32)
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("offset", &self.offset)
            .finish()
    }
}

/// Product of the dimensions (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Rounds a byte count up to wgpu's copy alignment (4), and never below 4.
pub(crate) fn padded_size(bytes: u64) -> u64 {
    bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
}

/// Refuses a buffer past `maxStorageBufferBindingSize` / `maxBufferSize`, naming the limit.
pub(crate) fn check_buffer_size(gpu: &Gpu, bytes: u64, what: &str) -> Result<()> {
    let limits = gpu.limits();
    let (limit, limit_name) = if limits.max_storage_buffer_binding_size < limits.max_buffer_size {
        (
            limits.max_storage_buffer_binding_size,
            "maxStorageBufferBindingSize",
        )
    } else {
        (limits.max_buffer_size, "maxBufferSize")
    };
    if padded_size(bytes) > limit {
        return Err(Error::LimitExceeded {
            what: what.into(),
            value: bytes,
            limit_name,
            limit,
        });
    }
    Ok(())
}

/// `write_buffer` needs a length that is a multiple of 4: write the aligned body straight from the
/// caller's slice and only the last 1-3 bytes through a small padded copy.
fn write_padded(gpu: &Gpu, buffer: &wgpu::Buffer, bytes: &[u8]) {
    let body = bytes.len() / 4 * 4;
    if body > 0 {
        gpu.write_buffer(buffer, 0, &bytes[..body]);
    }
    if body < bytes.len() {
        let mut tail = [0u8; 4];
        tail[..bytes.len() - body].copy_from_slice(&bytes[body..]);
        gpu.write_buffer(buffer, body as u64, &tail);
    }
}

/// Maps `buffer` for reading and waits for it, natively by polling the device, in the browser by
/// awaiting the mapAsync promise. A lost device or a WebGPU error ends the wait with an error.
pub(crate) async fn map_read(gpu: &Gpu, buffer: &wgpu::Buffer) -> Result<()> {
    let (sender, receiver) = futures_channel::oneshot::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |result| {
        let _ = sender.send(result);
    });
    #[cfg(not(target_arch = "wasm32"))]
    gpu.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Readback(e.to_string()))?;
    let mapped = receiver.await;
    gpu.check()?;
    match mapped {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Readback(e.to_string())),
        Err(_) => Err(Error::Readback(
            "the map callback was dropped (device lost?)".into(),
        )),
    }
}

/// A float tensor's bytes as read back (`dtype` f32 or f16) to f32 values.
pub(crate) fn f32s_from_bytes(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        DType::F32 => bytemuck::pod_collect_to_vec(bytes),
        DType::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::I32 => {
            return Err(Error::DType {
                op: "to_f32_vec",
                message: "an integer tensor reads back with to_i32_vec".into(),
                got: dtype,
            });
        }
    })
}
