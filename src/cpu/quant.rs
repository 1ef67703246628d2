//! GGML block-quantized weights on the CPU, kept as the file stores them (like the GPU path keeps
//! them): [`HostQTensor`], and the products with them, `x · Wᵀ`, that decoding and prefill run
//! ([`qlinear`]). Each 32-element group is decoded to small integers with a scale and offset for each
//! half ([`groups::decode`], every format), multiplied into f32 lanes, and used for every row of `x`
//! while it is in registers; the rows of W are split over the threads (`cpu::par`). The decoding
//! step's kernel is written out for WASM SIMD128 (`quant/simd.rs`) and for x86-64 with AVX2, FMA and
//! F16C (`quant/x86.rs`, picked at run time); other targets run the portable one.

pub mod groups;

use std::sync::Arc;

use crate::cpu::HostTensor;
use crate::cpu::matmul::{Ld, SharedOut, xwt};
use crate::cpu::tensor::Data;
use crate::error::{Error, Result};
use crate::runtime::dtype::QuantType;

/// A quantized matrix in host memory: `shape` row-major (`[out, in]` for a weight), each row whole
/// blocks of `qtype`. Cloning shares the bytes.
#[derive(Clone)]
pub struct HostQTensor {
    data: Arc<Data>,
    /// Where the blocks start, in bytes of `data`.
    byte_offset: usize,
    shape: Vec<usize>,
    qtype: QuantType,
}

impl HostQTensor {
    /// Blocks already in GGML's layout (tests, small tables), copied into host memory.
    pub fn from_blocks(bytes: &[u8], shape: &[usize], qtype: QuantType) -> Result<HostQTensor> {
        let mut values = vec![0f32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<f32, u8>(&mut values)[..bytes.len()].copy_from_slice(bytes);
        HostQTensor::view(&Arc::new(Data::F32(values)), 0, shape, qtype)
    }

    /// `shape`'s blocks of `qtype` in `data` from byte `byte_offset` (a weight inside a loaded file).
    pub(crate) fn view(
        data: &Arc<Data>,
        byte_offset: usize,
        shape: &[usize],
        qtype: QuantType,
    ) -> Result<HostQTensor> {
        let cols = shape.last().copied().unwrap_or(0);
        let numel: usize = shape.iter().product();
        let want = qtype.bytes_for(numel as u64) as usize;
        let have = data.bytes().len().saturating_sub(byte_offset);
        if !(cols as u64).is_multiple_of(qtype.block_elems()) || want > have {
            return Err(Error::shape(
                "HostQTensor",
                format!(
                    "{shape:?} of {qtype:?}: rows must be whole {}-element blocks and its {want} \
                     bytes inside the {have} given",
                    qtype.block_elems()
                ),
            ));
        }
        Ok(HostQTensor {
            data: data.clone(),
            byte_offset,
            shape: shape.to_vec(),
            qtype,
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn qtype(&self) -> QuantType {
        self.qtype
    }

    /// Elements of a row (the last axis).
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    /// The product of all but the last axis.
    pub fn rows(&self) -> usize {
        self.shape[..self.shape.len().saturating_sub(1)]
            .iter()
            .product()
    }

    /// The blocks' bytes.
    pub fn blocks(&self) -> &[u8] {
        let len = self.qtype.bytes_for((self.rows() * self.cols()) as u64) as usize;
        &self.data.bytes()[self.byte_offset..self.byte_offset + len]
    }

    /// The bytes of `rows` consecutive rows from row `first`.
    fn row_blocks(&self, first: usize, rows: usize) -> &[u8] {
        let row = self.qtype.bytes_for(self.cols() as u64) as usize;
        &self.blocks()[first * row..(first + rows) * row]
    }

    /// A matrix as consecutive row ranges of `parts` rows (views: rows are whole blocks).
    pub fn split_rows(&self, name: &str, parts: &[usize]) -> Result<Vec<HostQTensor>> {
        crate::cpu::tensor::split_check(name, &self.shape, parts)?;
        let row = self.qtype.bytes_for(self.cols() as u64) as usize;
        let mut start = self.byte_offset;
        parts
            .iter()
            .map(|&n| {
                let t = HostQTensor::view(&self.data, start, &[n, self.cols()], self.qtype);
                start += n * row;
                t
            })
            .collect()
    }

    /// Rows `ids` as f32 (an embedding lookup), `[ids.len(), cols]`.
    pub fn gather(&self, ids: &[i32]) -> Result<HostTensor> {
        let (rows, cols) = (self.rows(), self.cols());
        let mut out = vec![0f32; ids.len() * cols];
        for (&id, o) in ids.iter().zip(out.chunks_exact_mut(cols.max(1))) {
            let r = usize::try_from(id)
                .ok()
                .filter(|&r| r < rows)
                .ok_or_else(|| {
                    Error::Input(format!("token id {id} is outside the {rows}-row table"))
                })?;
            groups::dequantize(self.qtype, self.row_blocks(r, 1), o);
        }
        HostTensor::from_f32(out, &[ids.len(), cols])
    }

    /// Every value as f32, same shape.
    pub fn dequantize(&self) -> Result<HostTensor> {
        let mut out = vec![0f32; self.rows() * self.cols()];
        groups::dequantize(self.qtype, self.blocks(), &mut out);
        HostTensor::from_f32(out, &self.shape)
    }
}

/// `$with(a, decode)` with `decode` = `$decode` of a fixed format, one instance a format: the
/// decode's `match` folds away inside the row loops.
macro_rules! per_format {
    ($a:expr, $with:ident, $decode:path) => {{
        use QuantType as Q;
        match $a.w.qtype() {
            Q::Q4_0 => $with($a, |b, g| $decode(Q::Q4_0, b, g)),
            Q::Q4_1 => $with($a, |b, g| $decode(Q::Q4_1, b, g)),
            Q::Q5_0 => $with($a, |b, g| $decode(Q::Q5_0, b, g)),
            Q::Q5_1 => $with($a, |b, g| $decode(Q::Q5_1, b, g)),
            Q::Q8_0 => $with($a, |b, g| $decode(Q::Q8_0, b, g)),
            Q::IQ4_NL => $with($a, |b, g| $decode(Q::IQ4_NL, b, g)),
            Q::Q2_K => $with($a, |b, g| $decode(Q::Q2_K, b, g)),
            Q::Q3_K => $with($a, |b, g| $decode(Q::Q3_K, b, g)),
            Q::Q4_K => $with($a, |b, g| $decode(Q::Q4_K, b, g)),
            Q::Q5_K => $with($a, |b, g| $decode(Q::Q5_K, b, g)),
            Q::Q6_K => $with($a, |b, g| $decode(Q::Q6_K, b, g)),
        }
    }};
}

/// Rows of x a pass over W's rows serves (their accumulators stay in registers).
const TOKENS: usize = 8;

/// `x · Wᵀ (+ residual)` for `x` `[.., in]` and `w` `[out, in]` quantized, as `[.., out]`.
pub fn qlinear(
    x: &HostTensor,
    w: &HostQTensor,
    residual: Option<&HostTensor>,
) -> Result<HostTensor> {
    let xs = x.f32s("qlinear")?;
    let (n, k) = (w.rows(), w.cols());
    if x.shape().last() != Some(&k) || w.shape().len() != 2 {
        return Err(Error::shape(
            "qlinear",
            format!("x {:?} against weight {:?}", x.shape(), w.shape()),
        ));
    }
    let m = xs.len() / k.max(1);
    let mut out = match residual {
        Some(r) if r.numel() == m * n => r.to_vec()?,
        Some(r) => {
            return Err(Error::shape(
                "qlinear",
                format!("residual {:?} for a [{m}, {n}] output", r.shape()),
            ));
        }
        None => vec![0f32; m * n],
    };
    let c = SharedOut(out.as_mut_ptr());
    if m >= SGEMM_ROWS {
        dequantized_products(xs, w, m, c);
    } else {
        integer_products_of(xs, &[(w, c)], m);
    }
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    HostTensor::from_f32(out, &shape)
}

/// From this many rows of x on (a prompt), W is dequantized a tile of rows at a time and multiplied
/// by the f32 product (`cpu::matmul::xwt`): the decoding is paid once a tile instead of once a row
/// of x, and the product's kernel does the rest.
const SGEMM_ROWS: usize = 4;
/// Rows of W a tile of [`dequantized_products`] (a multiple of the sgemm's register block).
const TILE_ROWS: usize = 64;

/// `out += x · Wᵀ` for m ≥ [`SGEMM_ROWS`]: tiles of W's rows dequantized into f32 scratch, then
/// `xwt` into those columns of `out`; tiles split over the threads.
fn dequantized_products(xs: &[f32], w: &HostQTensor, m: usize, c: SharedOut) {
    let (n, k) = (w.rows(), w.cols());
    let task = |tile: usize| {
        let rows = tile * TILE_ROWS..((tile + 1) * TILE_ROWS).min(n);
        let mut scratch = vec![0f32; rows.len() * k];
        groups::dequantize(
            w.qtype(),
            w.row_blocks(rows.start, rows.len()),
            &mut scratch,
        );
        // SAFETY: x is m×k, scratch rows.len()×k, and out m×n: every view is in bounds; tiles
        // write disjoint columns of out.
        unsafe {
            let ld = Ld { x: k, w: k, c: n };
            xwt(
                (m, k, rows.len()),
                xs.as_ptr(),
                scratch.as_ptr(),
                c.ptr().add(rows.start),
                ld,
                true,
            );
        }
    };
    crate::cpu::par::for_each(n.div_ceil(TILE_ROWS), task);
}

/// `out += x · Wᵀ` for a few rows of x (decoding), for one or several weights of the same x (and k)
/// in one parallel region (q, k and v; gate and up): x as integers ([`QuantizedX`]), quantized once;
/// W's groups decoded in registers and dotted with every row of x while they are there.
fn integer_products_of(xs: &[f32], layers: &[(&HostQTensor, SharedOut)], m: usize) {
    let threads = crate::cpu::par::threads();
    let xq = quantize_x(xs);
    let task = |(li, rows): (usize, std::ops::Range<usize>)| {
        let (w, c) = layers[li];
        for t0 in (0..m).step_by(TOKENS) {
            let args = Rows {
                w,
                rows: rows.clone(),
                x: &xq,
                tokens: t0..(t0 + TOKENS).min(m),
                k: w.cols(),
                n: w.rows(),
                out: c,
            };
            rows_dot(args);
        }
    };
    let total: usize = layers.iter().map(|(w, _)| w.rows()).sum();
    // Enough tasks for the threads to share unevenly timed rows; whole rows of 4.
    let per = total.div_ceil(threads * 4).next_multiple_of(4).max(4);
    let mut tasks = Vec::new();
    for (li, (w, _)) in layers.iter().enumerate() {
        let n = w.rows();
        tasks.extend((0..n.div_ceil(per)).map(|i| (li, i * per..((i + 1) * per).min(n))));
    }
    crate::cpu::par::for_each(tasks.len(), |i| task(tasks[i].clone()));
}

/// `x · Wᵢᵀ` for several weights of the same input (q, k and v; gate and up): for a few rows of x in
/// one parallel region, else one [`qlinear`] each.
pub fn qlinears(x: &HostTensor, ws: &[&HostQTensor]) -> Result<Vec<HostTensor>> {
    let xs = x.f32s("qlinear")?;
    let k = x.shape().last().copied().unwrap_or(0);
    let m = xs.len() / k.max(1);
    if m >= SGEMM_ROWS || ws.iter().any(|w| w.cols() != k || w.shape().len() != 2) {
        // The prompt's path, or shapes that qlinear refuses by name.
        return ws.iter().map(|w| qlinear(x, w, None)).collect();
    }
    let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![0f32; m * w.rows()]).collect();
    let layers: Vec<(&HostQTensor, SharedOut)> = ws
        .iter()
        .zip(outs.iter_mut())
        .map(|(w, o)| (*w, SharedOut(o.as_mut_ptr())))
        .collect();
    integer_products_of(xs, &layers, m);
    ws.iter()
        .zip(outs)
        .map(|(w, o)| {
            let mut shape = x.shape().to_vec();
            if let Some(last) = shape.last_mut() {
                *last = w.rows();
            }
            HostTensor::from_f32(o, &shape)
        })
        .collect()
}

/// One task of [`qlinear`]: rows of W against a few rows of x.
#[derive(Clone)]
struct Rows<'a> {
    w: &'a HostQTensor,
    rows: std::ops::Range<usize>,
    x: &'a QuantizedX,
    tokens: std::ops::Range<usize>,
    k: usize,
    n: usize,
    out: SharedOut,
}

fn rows_dot(a: Rows<'_>) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return simd::rows_dot(a);
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: the CPU has AVX2, FMA and F16C (`x86::available`).
        return unsafe { x86::rows_dot(a) };
    }
    #[allow(unreachable_code)]
    rows_dot_portable(a)
}

fn rows_dot_portable(a: Rows<'_>) {
    per_format!(a, rows_dot_with, groups::decode)
}

#[inline(always)]
fn rows_dot_with(a: Rows<'_>, decode: impl Fn(&[u8], usize) -> groups::Group) {
    let qtype = a.w.qtype();
    let (bytes, per) = (
        qtype.block_bytes() as usize,
        groups::groups_per_block(qtype),
    );
    let nt = a.tokens.len();
    let groups_k = a.k / 32;
    for r in a.rows.clone() {
        let mut acc = [0f32; TOKENS];
        for (b, block) in a.w.row_blocks(r, 1).chunks_exact(bytes).enumerate() {
            for g in 0..per {
                let gr = decode(block, g);
                let group = b * per + g;
                for (t, acc) in acc.iter_mut().enumerate().take(nt) {
                    let at = (a.tokens.start + t) * groups_k + group;
                    let (hi, lo) = (
                        &a.x.q[at * 32..at * 32 + 32],
                        &a.x.lo[at * 32..at * 32 + 32],
                    );
                    let half = |h: usize| {
                        let r = 16 * h..16 * h + 16;
                        dot16(&gr.q[r.clone()], &hi[r.clone()]) as f32
                            + dot16(&gr.q[r.clone()], &lo[r]) as f32 * LO_SCALE
                    };
                    let (s0, s1) = (half(0), half(1));
                    let hs = &a.x.half_sums[2 * at..2 * at + 2];
                    *acc += a.x.scale[at] * (gr.d[0] * s0 + gr.d[1] * s1)
                        + (gr.m[0] * hs[0] + gr.m[1] * hs[1]);
                }
            }
        }
        for (t, sum) in acc.iter().enumerate().take(nt) {
            let at = (a.tokens.start + t) * a.n + r;
            // SAFETY: `at` is row `r` of a token of this task: no other task writes it; the buffer
            // holds m·n values.
            unsafe { *a.out.ptr().add(at) += sum };
        }
    }
}

/// Σ q·x over 16 lanes in i32 (|q| ≤ 127, |x| ≤ 32767: no overflow). LLVM makes this `pmaddwd`
/// natively and `i32x4.dot_i16x8_s` in WASM.
#[inline(always)]
fn dot16(q: &[i8], x: &[i16]) -> i32 {
    let (q, x) = (&q[..16], &x[..16]);
    let mut s = 0i32;
    for i in 0..16 {
        s += i32::from(q[i]) * i32::from(x[i]);
    }
    s
}

/// What a unit of [`QuantizedX::lo`] is worth in units of `q`.
const LO_SCALE: f32 = 1.0 / 32768.0;

/// The rows of x as integers a 32-element group: `x ≈ scale · (q + lo / 32768)`, q the nearest
/// 16-bit step and lo the remainder in 2⁻¹⁵ of a step, so that the integer dot products carry x to
/// ~2⁻³¹ of the group's largest value (f32 carries 2⁻²⁴ of each). q alone (2⁻¹⁶) moved SmolLM2's
/// logits by 2e-3 against transformers; with lo they stay within 1.5e-5, as exact f32 products do.
/// Each half-group's exact sum goes with them, for the formats' offsets.
struct QuantizedX {
    q: Vec<i16>,
    lo: Vec<i16>,
    scale: Vec<f32>,
    half_sums: Vec<f32>,
}

fn quantize_x(xs: &[f32]) -> QuantizedX {
    let mut q = vec![0i16; xs.len()];
    let mut lo = vec![0i16; xs.len()];
    let mut scale = Vec::with_capacity(xs.len() / 32);
    for ((c, o), l) in xs
        .chunks_exact(32)
        .zip(q.chunks_exact_mut(32))
        .zip(lo.chunks_exact_mut(32))
    {
        let max = c.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = max / 32767.0;
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        for ((o, l), v) in o.iter_mut().zip(l.iter_mut()).zip(c) {
            let t = v * inv;
            let r = t.round();
            *o = r as i16;
            *l = ((t - r) * 32768.0).round() as i16;
        }
        scale.push(s);
    }
    let half_sums = xs.chunks_exact(16).map(|c| c.iter().sum()).collect();
    QuantizedX {
        q,
        lo,
        scale,
        half_sums,
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;
