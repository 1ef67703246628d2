// Element-wise binary operations, out = a OP b (OP: add, mul, or SwiGLU's silu(a)·b), where b repeats over a's leading axes (b's shape is a
// suffix of a's: a bias added to every row, a scale applied to every token). Computed in f32 and
// rounded once to T, which for f16 gives the correctly rounded f16 result.
//
// One thread an element; the grid may be two-dimensional when there are more than
// 65535 workgroups of elements (the per-dimension dispatch limit).

struct Params {
    len: u32,      // elements of a and out
    b_len: u32,    // elements of b (divides len)
    a_offset: u32,
    b_offset: u32,
    out_offset: u32,
    scalar: f32,   // scale: the factor; softcap: the cap
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
@group(0) @binding(3) var<uniform> p: Params;

// 0: add, 1: mul, 2: silu(a) * b (SwiGLU: a is the gate projection, b the up projection), 3: a
// (a copy into a view, such as a KV cache's next rows), 4: gelu_tanh(a) * b (GeGLU, Gemma),
// 5: a * scalar, 6: scalar * tanh(a / scalar) (soft-capping). tanh's argument is clamped to ±15
// (where it is ±1 in f32): some tanh implementations overflow past |x| ≈ 44.
override OP: u32 = 0u;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.len) {
        return;
    }
    let x = f32(a[p.a_offset + i]);
    let y = f32(b[p.b_offset + i % p.b_len]);
    var r: f32;
    if (OP == 0u) {
        r = x + y;
    } else if (OP == 1u) {
        r = x * y;
    } else if (OP == 3u) {
        r = x;
    } else if (OP == 4u) {
        // transformers' gelu_pytorch_tanh: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
        let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
        r = 0.5 * x * (1.0 + tanh(clamp(u, -15.0, 15.0))) * y;
    } else if (OP == 5u) {
        r = x * p.scalar;
    } else if (OP == 6u) {
        r = p.scalar * tanh(clamp(x / p.scalar, -15.0, 15.0));
    } else {
        r = x / (1.0 + exp(-x)) * y;
    }
    out[p.out_offset + i] = T(r);
}
