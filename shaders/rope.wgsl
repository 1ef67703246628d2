// Rotary position embedding. Hugging Face's "rotate half" layout: for i < d/2, the pair
// (x[i], x[i + d/2]) is rotated by the angle pos · θ^(-2i/d):
//   out[i]       = x[i]·cos − x[i + d/2]·sin
//   out[i + d/2] = x[i + d/2]·cos + x[i]·sin
// With INTERLEAVED (GGML's layout, which llama.cpp's converter produces by permuting the rows of the
// query and key weights) the pair is (x[2i], x[2i + 1]) instead, at the same angle.
// x is [batch, seq, heads, head_dim]; the token at sequence index s has position p.pos0 + s (pos0 is
// the number of tokens already in the KV cache). inv_freq and the angle are computed in f32 as
// transformers does; the angle is reduced to [-π, π] before sin/cos, whose WGSL accuracy is only
// specified there.

override INTERLEAVED: bool = false;
// Llama 3's RoPE scaling as llama.cpp stores it (`rope_freqs.weight`): pair i's frequency divided by
// freq_factors[i].
override HAS_FACTORS: bool = false;

struct Params {
    total_pairs: u32, // batch · seq · heads · head_dim/2
    seq: u32,
    heads: u32,
    head_dim: u32,
    pos0: u32,
    theta: f32,
    x_offset: u32,
    out_offset: u32,
    factor_offset: u32, // HAS_FACTORS: freq_factors' first element
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> freq_factors: array<f32>;

const TWO_PI: f32 = 6.283185307179586;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let pair = gid.x + gid.y * groups.x * 256u;
    if (pair >= p.total_pairs) {
        return;
    }
    let half_dim = p.head_dim / 2u;
    let i = pair % half_dim;
    let vec_index = pair / half_dim; // (b, s, h) flattened
    let s = (vec_index / p.heads) % p.seq;
    var inv_freq = 1.0 / pow(p.theta, f32(2u * i) / f32(p.head_dim));
    if (HAS_FACTORS) {
        inv_freq = inv_freq / freq_factors[p.factor_offset + i];
    }
    let angle = f32(p.pos0 + s) * inv_freq;
    let reduced = angle - TWO_PI * round(angle / TWO_PI);
    let c = cos(reduced);
    let sn = sin(reduced);
    let base = vec_index * p.head_dim;
    var i0 = base + i;
    var i1 = base + i + half_dim;
    if (INTERLEAVED) {
        i0 = base + 2u * i;
        i1 = i0 + 1u;
    }
    let x0 = f32(x[p.x_offset + i0]);
    let x1 = f32(x[p.x_offset + i1]);
    out[p.out_offset + i0] = T(x0 * c - x1 * sn);
    out[p.out_offset + i1] = T(x1 * c + x0 * sn);
}
