// Conversions done on the GPU at load time, so that weights stored in types WGSL cannot read (bf16,
// i64) or that the adapter cannot compute in (f16 without shader-f16) never pass through the CPU.
//
// Source and destination are raw 32-bit words; every entry point writes `p.count` output elements.
//   bf16_to_f32: a bf16 is the top half of an f32, so widening is a 16-bit shift (exact).
//   f16_to_f32:  unpack2x16float (core WGSL, no shader-f16 needed) (exact).
//   i64_to_i32:  the low word of each little-endian i64 (exact for values within i32).
//   f32_to_f16, bf16_to_f16: pack2x16float, two outputs a word (WGSL lets the rounding of an inexact
//                value go to either neighbour: within one f16 ulp); overflow gives ±inf.

struct Params {
    count: u32, // output elements
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

fn index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// One thread per source word: two 16-bit halves, the first in the low bits (little-endian).
@compute @workgroup_size(256, 1, 1)
fn bf16_to_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let w = index(gid, groups);
    let i = 2u * w;
    if (i >= p.count) {
        return;
    }
    let word = src[w];
    dst[i] = word << 16u;
    if (i + 1u < p.count) {
        dst[i + 1u] = word & 0xffff0000u;
    }
}

@compute @workgroup_size(256, 1, 1)
fn f16_to_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let w = index(gid, groups);
    let i = 2u * w;
    if (i >= p.count) {
        return;
    }
    let pair = unpack2x16float(src[w]);
    dst[i] = bitcast<u32>(pair.x);
    if (i + 1u < p.count) {
        dst[i + 1u] = bitcast<u32>(pair.y);
    }
}

@compute @workgroup_size(256, 1, 1)
fn i64_to_i32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.count) {
        return;
    }
    dst[i] = src[2u * i];
}

// The f16 bits of x. pack2x16float is indeterminate outside f16's finite range, so overflow (to ±inf,
// from 65520 up, where round-to-nearest would go) and NaN are handled on the bits, which no fast-math
// assumption about infinities can fold away.
fn f16_bits(x: f32) -> u32 {
    let bits = bitcast<u32>(x);
    let sign = (bits >> 16u) & 0x8000u;
    let mag = bits & 0x7fffffffu;
    if (mag > 0x7f800000u) {
        return sign | 0x7e00u; // NaN
    }
    if (mag >= 0x477ff000u) {
        return sign | 0x7c00u; // ≥ 65520: ±inf
    }
    return pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu;
}

// One thread per output word: two f16 results.
@compute @workgroup_size(256, 1, 1)
fn f32_to_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let w = index(gid, groups);
    let i = 2u * w;
    if (i >= p.count) {
        return;
    }
    var hi = 0u;
    if (i + 1u < p.count) {
        hi = f16_bits(bitcast<f32>(src[i + 1u]));
    }
    dst[w] = f16_bits(bitcast<f32>(src[i])) | (hi << 16u);
}

@compute @workgroup_size(256, 1, 1)
fn bf16_to_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let w = index(gid, groups);
    if (2u * w >= p.count) {
        return;
    }
    let word = src[w]; // two bf16, like two f16 outputs: same word layout
    var hi = 0u;
    if (2u * w + 1u < p.count) {
        hi = f16_bits(bitcast<f32>(word & 0xffff0000u));
    }
    dst[w] = f16_bits(bitcast<f32>(word << 16u)) | (hi << 16u);
}
