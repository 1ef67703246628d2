// 2-D convolution over NHWC tensors (channels last), out = act(conv(x, w) + bias) + residual, with
// stride, explicit top/left padding (bottom/right padding is whatever the output size implies: TF's
// asymmetric "SAME" and PyTorch's symmetric padding both fit), and groups. Weights are in PyTorch's
// layout, [out_c, in_c / groups, k_h, k_w]. Sums in f32, one rounding to T at the store.
//
// `conv`: a thread computes 4 neighbouring output pixels of one row × 4 output channels of one group
// (16 accumulators in registers), so each input value it loads serves 4 channels and each weight 4
// pixels. Channel blocks never straddle groups (a group's last block is masked).
// `depthwise`: groups with one input channel each (in_c / groups = 1: depthwise, with any channel
// multiplier); 4 pixels × 4 channels a thread, each channel reading its own input channel.
//
// Grid: x over channel blocks (16 a workgroup), y and z over pixel blocks (4 a workgroup), folded into z
// past the per-dimension limit.

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    groups: u32,
    k_h: u32,
    k_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    cin_g: u32,
    cout_g: u32,
    x_offset: u32,
    out_offset: u32,
    res_offset: u32,
    has_bias: u32,
    has_res: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> w: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read> res: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;
@group(0) @binding(5) var<uniform> p: Params;

struct Block {
    valid: bool,
    n: u32,
    oy: u32,
    ox0: u32,
}

fn pixel_block(gid: vec3<u32>, groups: vec3<u32>) -> Block {
    let wblocks = (p.out_w + 3u) / 4u;
    let pb = gid.y + gid.z * groups.y * 4u;
    var b: Block;
    b.valid = pb < p.batch * p.out_h * wblocks;
    b.ox0 = (pb % wblocks) * 4u;
    let row = pb / wblocks;
    b.oy = row % p.out_h;
    b.n = row / p.out_h;
    return b;
}

// Index of input pixel (iy, column of output pixel ox0 + j, tap kx)'s first channel, or -1 when the
// tap falls in the padding or the output pixel is past the row's end.
fn tap(b: Block, iy: i32, j: u32, kx: u32) -> i32 {
    let ox = b.ox0 + j;
    let ix = i32(ox * p.stride_w + kx) - i32(p.pad_left);
    if (ox >= p.out_w || ix < 0 || ix >= i32(p.in_w)) {
        return -1;
    }
    return i32(p.x_offset + ((b.n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_c);
}

fn load_x(i: i32) -> f32 {
    if (i < 0) {
        return 0.0;
    }
    return f32(x[u32(i)]);
}

fn store(b: Block, j: u32, co: u32, v: f32) {
    let ox = b.ox0 + j;
    let o = ((b.n * p.out_h + b.oy) * p.out_w + ox) * p.out_c + co;
    var r = v;
    if (p.has_bias == 1u) {
        r += f32(bias[co]);
    }
    r = act(r);
    if (p.has_res == 1u) {
        r += f32(res[p.res_offset + o]);
    }
    out[p.out_offset + o] = T(r);
}

@compute @workgroup_size(16, 4, 1)
fn conv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let per_group = (p.cout_g + 3u) / 4u;
    let b = pixel_block(gid, groups);
    if (gid.x >= per_group * p.groups || !b.valid) {
        return;
    }
    let g = gid.x / per_group;
    let co0 = g * p.cout_g + (gid.x % per_group) * 4u;
    let co_end = (g + 1u) * p.cout_g;
    let khw = p.k_h * p.k_w;
    let w_step = p.cin_g * khw; // between consecutive output channels
    // Channels past the group's end read channel co0's weights (always in range) and are not stored.
    let c1 = select(0u, w_step, co0 + 1u < co_end);
    let c2 = select(0u, 2u * w_step, co0 + 2u < co_end);
    let c3 = select(0u, 3u * w_step, co0 + 3u < co_end);
    let ci0 = g * p.cin_g;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.k_h; ky++) {
        let iy = i32(b.oy * p.stride_h + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < p.k_w; kx++) {
            let t0 = tap(b, iy, 0u, kx);
            let t1 = tap(b, iy, 1u, kx);
            let t2 = tap(b, iy, 2u, kx);
            let t3 = tap(b, iy, 3u, kx);
            var wi = co0 * w_step + ky * p.k_w + kx;
            for (var ci = 0u; ci < p.cin_g; ci++) {
                let wv = vec4<f32>(f32(w[wi]), f32(w[wi + c1]), f32(w[wi + c2]), f32(w[wi + c3]));
                let c = i32(ci0 + ci);
                acc0 += load_x(select(-1, t0 + c, t0 >= 0)) * wv;
                acc1 += load_x(select(-1, t1 + c, t1 >= 0)) * wv;
                acc2 += load_x(select(-1, t2 + c, t2 >= 0)) * wv;
                acc3 += load_x(select(-1, t3 + c, t3 >= 0)) * wv;
                wi += khw;
            }
        }
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        if (b.ox0 + j >= p.out_w) {
            break;
        }
        for (var c = 0u; c < 4u; c++) {
            if (co0 + c < co_end) {
                store(b, j, co0 + c, accs[j][c]);
            }
        }
    }
}

@compute @workgroup_size(16, 4, 1)
fn depthwise(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = pixel_block(gid, groups);
    let co0 = gid.x * 4u;
    if (co0 >= p.out_c || !b.valid) {
        return;
    }
    let khw = p.k_h * p.k_w;
    // Output channel co reads input channel co / cout_g; channels past the end repeat the last one.
    let last = p.out_c - 1u;
    let co = vec4<u32>(co0, min(co0 + 1u, last), min(co0 + 2u, last), min(co0 + 3u, last));
    let ci = vec4<i32>(co / p.cout_g);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.k_h; ky++) {
        let iy = i32(b.oy * p.stride_h + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < p.k_w; kx++) {
            let k = ky * p.k_w + kx;
            let wv = vec4<f32>(f32(w[co.x * khw + k]), f32(w[co.y * khw + k]), f32(w[co.z * khw + k]), f32(w[co.w * khw + k]));
            let t0 = tap(b, iy, 0u, kx);
            let t1 = tap(b, iy, 1u, kx);
            let t2 = tap(b, iy, 2u, kx);
            let t3 = tap(b, iy, 3u, kx);
            acc0 += load4(t0, ci) * wv;
            acc1 += load4(t1, ci) * wv;
            acc2 += load4(t2, ci) * wv;
            acc3 += load4(t3, ci) * wv;
        }
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var j = 0u; j < 4u; j++) {
        if (b.ox0 + j >= p.out_w) {
            break;
        }
        for (var c = 0u; c < 4u; c++) {
            if (co0 + c < p.out_c) {
                store(b, j, co0 + c, accs[j][c]);
            }
        }
    }
}

fn load4(t: i32, ci: vec4<i32>) -> vec4<f32> {
    if (t < 0) {
        return vec4<f32>(0.0);
    }
    return vec4<f32>(f32(x[u32(t + ci.x)]), f32(x[u32(t + ci.y)]), f32(x[u32(t + ci.z)]), f32(x[u32(t + ci.w)]));
}
