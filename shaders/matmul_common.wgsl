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
    k_split: u32,      // > 1: K split in this many parts (workgroup z = batch · k_split + part)
    k_chunk: u32,      // a part's length of K (a multiple of the kernel's K step)
}

// The batch entry and the K range [begin, end) of workgroup z. Split K (tiled16, tiled, coop,
// coop64): each part writes its own partial product, c's batch entry z, and `splitk_reduce` sums them.
fn k_part(z: u32) -> vec3<u32> {
    if (p.k_split <= 1u) {
        return vec3<u32>(z, 0u, p.k);
    }
    let begin = (z % p.k_split) * p.k_chunk;
    return vec3<u32>(z / p.k_split, begin, min(p.k, begin + p.k_chunk));
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
