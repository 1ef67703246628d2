// Element-wise activations, out = f(x), computed in f32 and rounded once to T.
//   0: GELU, the exact erf form BERT uses: 0.5·x·(1 + erf(x/√2))
//   1: SiLU: x·sigmoid(x)
// WGSL has no erf: Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7, so GELU is within 1.5e-7·|x|/2.

struct Params {
    len: u32,
    x_offset: u32,
    out_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> p: Params;

override OP: u32 = 0u;

fn erf(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-a * a));
}

fn gelu(v: f32) -> f32 {
    return 0.5 * v * (1.0 + erf(v * 0.70710678118654752));
}

fn silu(v: f32) -> f32 {
    return v / (1.0 + exp(-v));
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.len) {
        return;
    }
    let v = f32(x[p.x_offset + i]);
    var r: f32;
    if (OP == 0u) {
        r = gelu(v);
    } else {
        r = silu(v);
    }
    out[p.out_offset + i] = T(r);
}
