//! What a LLaMA-family decoder needs on the CPU beyond the encoder's ops: RMSNorm, RoPE (as the GPU
//! kernel computes it), a KV cache in host memory, causal grouped-query attention over it (sliding
//! windows, soft caps), the gated MLP's activations, scaling and soft-capping.

use crate::cpu::{HostTensor, math};
use crate::error::{Error, Result};
use crate::kernels::rope::Layout;

/// `x · w / √(mean(x²) + eps)` over the last axis (`w` as long as it).
pub fn rms_norm(x: &HostTensor, w: &HostTensor, eps: f32) -> Result<HostTensor> {
    let (xs, ws) = (x.f32s("rms_norm")?, w.f32s("rms_norm")?);
    let d = ws.len();
    if x.shape().last() != Some(&d) {
        return Err(Error::shape(
            "rms_norm",
            format!("x {:?} against weight {:?}", x.shape(), w.shape()),
        ));
    }
    let mut out = vec![0f32; xs.len()];
    for (o, row) in out.chunks_exact_mut(d).zip(xs.chunks_exact(d)) {
        let mean_sq = math::sum_sq_dev(row, 0.0) / d as f32;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        for ((o, &v), &g) in o.iter_mut().zip(row).zip(ws) {
            *o = v * inv * g;
        }
    }
    HostTensor::from_f32(out, x.shape())
}

/// RoPE over `[1, seq, heads, head_dim]` at positions `pos0..`: pair i of a head turns by
/// `(pos0 + s) / (θ^(2i/d) · factor_i)`, in f32 and with the angle reduced to (−π, π] as
/// `shaders/rope.wgsl` does (transformers computes it in f32 too).
pub fn rope(
    x: &HostTensor,
    pos0: usize,
    theta: f32,
    layout: Layout,
    factors: Option<&HostTensor>,
) -> Result<HostTensor> {
    let &[_, seq, heads, hd] = x.shape() else {
        return Err(Error::shape(
            "rope",
            format!("x {:?} is not [batch, seq, heads, head_dim]", x.shape()),
        ));
    };
    let half = hd / 2;
    let factors = factors.map(|f| f.f32s("rope")).transpose()?;
    if factors.is_some_and(|f| f.len() != half) {
        return Err(Error::shape("rope", format!("factors are not [{half}]")));
    }
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let f = 1.0 / theta.powf((2 * i) as f32 / hd as f32);
            f / factors.map_or(1.0, |fs| fs[i])
        })
        .collect();
    let xs = x.f32s("rope")?;
    let mut out = xs.to_vec();
    for (v, chunk) in out.chunks_exact_mut(hd).enumerate() {
        let s = (v / heads) % seq;
        let pos = (pos0 + s) as f32;
        let src = &xs[v * hd..(v + 1) * hd];
        for (i, &f) in inv_freq.iter().enumerate() {
            let angle = pos * f;
            let reduced = angle - std::f32::consts::TAU * (angle / std::f32::consts::TAU).round();
            let (sn, c) = reduced.sin_cos();
            let (i0, i1) = match layout {
                Layout::RotateHalf => (i, i + half),
                Layout::Interleaved => (2 * i, 2 * i + 1),
            };
            let (x0, x1) = (src[i0], src[i1]);
            chunk[i0] = x0 * c - x1 * sn;
            chunk[i1] = x1 * c + x0 * sn;
        }
    }
    HostTensor::from_f32(out, x.shape())
}

/// One layer's keys and values in host memory: `[capacity, kv_heads, head_dim]` each.
pub struct HostKv {
    k: Vec<f32>,
    v: Vec<f32>,
    kv_heads: usize,
    head_dim: usize,
}

impl HostKv {
    pub fn new(capacity: usize, kv_heads: usize, head_dim: usize) -> HostKv {
        let n = capacity * kv_heads * head_dim;
        HostKv {
            k: vec![0.0; n],
            v: vec![0.0; n],
            kv_heads,
            head_dim,
        }
    }

    /// Bytes held (k and v).
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * 4
    }

    /// Writes rows (`[seq, kv_heads, head_dim]` values) at positions `pos0..` of k or v.
    fn write(dst: &mut [f32], width: usize, pos0: usize, rows: &HostTensor) -> Result<()> {
        let src = rows.f32s("kv cache")?;
        let at = pos0 * width;
        if !src.len().is_multiple_of(width) || at + src.len() > dst.len() {
            return Err(Error::shape(
                "kv cache",
                format!(
                    "{:?} at position {pos0}: rows of {width} past the cache's {} values",
                    rows.shape(),
                    dst.len()
                ),
            ));
        }
        dst[at..at + src.len()].copy_from_slice(src);
        Ok(())
    }

    pub fn write_k(&mut self, pos0: usize, rows: &HostTensor) -> Result<()> {
        HostKv::write(&mut self.k, self.kv_heads * self.head_dim, pos0, rows)
    }

    pub fn write_v(&mut self, pos0: usize, rows: &HostTensor) -> Result<()> {
        HostKv::write(&mut self.v, self.kv_heads * self.head_dim, pos0, rows)
    }
}

/// Where and how the queries attend (see `models::ops::Causal`).
pub struct CausalSpec {
    pub kv_len: usize,
    pub scale: f32,
    pub window: Option<usize>,
    pub softcap: Option<f32>,
}

/// Causal attention of q `[1, seq, heads, head_dim]` (the last `seq` of `kv_len` positions) over the
/// cache's first `kv_len` positions, query head h reading key head `h / (heads / kv_heads)`.
/// One task a (query, head): scores, soft cap, softmax, weighted sum of values.
pub fn causal_attention(q: &HostTensor, kv: &HostKv, c: &CausalSpec) -> Result<HostTensor> {
    let &[_, seq, heads, hd] = q.shape() else {
        return Err(Error::shape(
            "attention",
            format!("q {:?} is not [1, seq, heads, head_dim]", q.shape()),
        ));
    };
    let kvh = kv.kv_heads;
    if hd != kv.head_dim || kvh == 0 || !heads.is_multiple_of(kvh) || seq > c.kv_len {
        return Err(Error::shape(
            "attention",
            format!(
                "q {:?} against a cache of {kvh} heads of {}, {} keys",
                q.shape(),
                kv.head_dim,
                c.kv_len
            ),
        ));
    }
    if c.kv_len * kvh * hd > kv.k.len() {
        return Err(Error::shape("attention", "kv_len is past the cache"));
    }
    let qs = q.f32s("attention")?;
    let group = heads / kvh;
    let mut out = vec![0f32; qs.len()];
    let task = |(t, o): (usize, &mut [f32])| {
        let (s, h) = (t / heads, t % heads);
        let pos = c.kv_len - seq + s;
        let first = c.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let kh = h / group;
        let qv = &qs[t * hd..(t + 1) * hd];
        let mut scores: Vec<f32> = (first..=pos)
            .map(|j| {
                let k = &kv.k[(j * kvh + kh) * hd..(j * kvh + kh + 1) * hd];
                let mut lanes = [0f32; 8];
                for (i, (a, b)) in qv.iter().zip(k).enumerate() {
                    lanes[i % 8] += a * b;
                }
                let s = lanes.iter().sum::<f32>() * c.scale;
                match c.softcap {
                    Some(cap) => cap * (s / cap).tanh(),
                    None => s,
                }
            })
            .collect();
        math::softmax(&mut scores);
        for (j, p) in (first..=pos).zip(&scores) {
            let v = &kv.v[(j * kvh + kh) * hd..(j * kvh + kh + 1) * hd];
            for (o, &x) in o.iter_mut().zip(v) {
                *o += p * x;
            }
        }
    };
    let work = seq * heads * c.kv_len * hd;
    if work >= 1 << 18 {
        crate::cpu::par::chunks_mut(&mut out, hd, |t, o| task((t, o)));
    } else {
        out.chunks_mut(hd).enumerate().for_each(task);
    }
    HostTensor::from_f32(out, q.shape())
}

/// `act(g) · u` element-wise: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU).
pub fn gated(g: &HostTensor, u: &HostTensor, gelu_tanh: bool) -> Result<HostTensor> {
    let (gs, us) = (g.f32s("gated")?, u.f32s("gated")?);
    if g.shape() != u.shape() {
        return Err(Error::shape(
            "gated",
            format!("gate {:?} and up {:?} differ", g.shape(), u.shape()),
        ));
    }
    let out = gs
        .iter()
        .zip(us)
        .map(|(&g, &u)| {
            let a = if gelu_tanh {
                // transformers' gelu_pytorch_tanh.
                let inner = 0.797_884_6 * (g + 0.044_715 * g * g * g);
                0.5 * g * (1.0 + inner.tanh())
            } else {
                g * math::sigmoid(g)
            };
            a * u
        })
        .collect();
    HostTensor::from_f32(out, g.shape())
}

/// `f(x)` element-wise.
pub fn map(x: &HostTensor, f: impl Fn(f32) -> f32) -> Result<HostTensor> {
    let out = x.f32s("map")?.iter().map(|&v| f(v)).collect();
    HostTensor::from_f32(out, x.shape())
}

#[cfg(test)]
mod tests;
