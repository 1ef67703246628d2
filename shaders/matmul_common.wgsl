// What both matmul shaders (shaders/matmul.wgsl, shaders/matmul_coop.wgsl) share: the parameters
// and the epilogue act(c + bias). Each declares the bindings `bias` and `p` it reads.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    a_offset: u32,
    b_offset: u32,
    c_offset: u32,
    has_bias: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

fn epilogue(v: f32, col: u32) -> f32 {
    var r = v;
    if (p.has_bias == 1u) {
        r += f32(bias[col]);
    }
    return act(r);
}
