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
    has_res: u32,
    res_offset: u32,   // where the residual's elements start in `res`
    bias_offset: u32,  // where the bias's elements start in `bias`
    bias_stride: u32,  // > 0: a bias a batch entry, this many elements apart (stacked linears)
    _pad0: u32,
    _pad1: u32,
}

fn epilogue(v: f32, at: u32) -> f32 {
    var r = v;
    if (p.has_bias == 1u) {
        r += f32(bias[at]);
    }
    return act(r);
}

// Stores output `i` of c (column `col`): act(v + bias), plus the residual's element at the same
// place when there is one.
fn put_c(i: u32, v: f32, col: u32) {
    var at = p.bias_offset + col;
    if (p.bias_stride != 0u) {
        at += (i - p.c_offset) / (p.m * p.n) * p.bias_stride;
    }
    var r = epilogue(v, at);
    if (p.has_res == 1u) {
        r += f32(res[i - p.c_offset + p.res_offset]);
    }
    c[i] = T(r);
}
