// Image-model helpers over NHWC tensors: average pooling (global and windowed), nearest upsampling,
// concatenation along channels, batch-norm folding, and packing to RGBA8. One thread an output element,
// linear index x + y·groups.x·256 (folded past the per-dimension limit). Sums in f32.

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    k_h: u32,
    k_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    c_offset: u32, // concat: the first output channel written
    x_offset: u32,
    out_offset: u32,
    len: u32,      // threads with work
    eps: f32,      // batch norm
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> p: Params;

fn index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// (n, y, x, channel) of element i of the NHWC output [N, out_h, out_w, out_c].
fn output_coords(i: u32) -> vec4<u32> {
    let c = i % p.out_c;
    let ox = (i / p.out_c) % p.out_w;
    let oy = (i / (p.out_c * p.out_w)) % p.out_h;
    return vec4<u32>(i / (p.out_c * p.out_w * p.out_h), oy, ox, c);
}

// out [N, C] = mean of x [N, H, W, C] over H and W. Thread (n, c).
@compute @workgroup_size(256, 1, 1)
fn global_avg_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let c = i % p.in_c;
    let n = i / p.in_c;
    let hw = p.in_h * p.in_w;
    var base = p.x_offset + n * hw * p.in_c + c;
    var sum = 0.0;
    for (var k = 0u; k < hw; k++) {
        sum += f32(x[base]);
        base += p.in_c;
    }
    out[p.out_offset + i] = T(sum / f32(hw));
}

// Windowed average over the taps inside the input (padding not counted, as count_include_pad=False).
@compute @workgroup_size(256, 1, 1)
fn avg_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let o = output_coords(i);
    let n = o.x;
    let oy = o.y;
    let ox = o.z;
    let c = o.w;
    var sum = 0.0;
    var count = 0u;
    for (var ky = 0u; ky < p.k_h; ky++) {
        let iy = i32(oy * p.stride_h + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < p.k_w; kx++) {
            let ix = i32(ox * p.stride_w + kx) - i32(p.pad_left);
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            sum += f32(x[p.x_offset + ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_c + c]);
            count++;
        }
    }
    out[p.out_offset + i] = T(sum / f32(max(count, 1u)));
}

// Nearest-neighbour upsampling by integer factors (stride_h, stride_w).
@compute @workgroup_size(256, 1, 1)
fn upsample_nearest(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let o = output_coords(i);
    let n = o.x;
    let oy = o.y;
    let ox = o.z;
    let c = o.w;
    let src = ((n * p.in_h + oy / p.stride_h) * p.in_w + ox / p.stride_w) * p.in_c + c;
    out[p.out_offset + i] = x[p.x_offset + src];
}

// Copies x [.., in_c] into channels [c_offset, c_offset + in_c) of out [.., out_c]: one input of a
// channel concatenation. Thread per element of x.
@compute @workgroup_size(256, 1, 1)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let c = i % p.in_c;
    let pixel = i / p.in_c;
    out[p.out_offset + pixel * p.out_c + p.c_offset + c] = x[p.x_offset + i];
}

// Batch norm folded into the preceding convolution: x is the weight [C_out, rest] (rest = in_c here)
// and out the folded weight; out_bias gets beta - mean·scale (+ the conv's own bias·scale), where
// scale = gamma / sqrt(var + eps). bn holds [gamma | beta | mean | var | conv bias or zeros], C_out each.
@group(0) @binding(3) var<storage, read> bn: array<T>;
@group(0) @binding(4) var<storage, read_write> out_bias: array<T>;

@compute @workgroup_size(256, 1, 1)
fn fold_batchnorm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let co = i / p.in_c;
    let c = p.out_c;
    let scale = f32(bn[co]) / sqrt(f32(bn[3u * c + co]) + p.eps);
    out[i] = T(f32(x[i]) * scale);
    if (i % p.in_c == 0u) {
        out_bias[co] = T(f32(bn[c + co]) + (f32(bn[4u * c + co]) - f32(bn[2u * c + co])) * scale);
    }
}

// A rectangle of x [1, H, W, 3 or 4] (values on 0..255) to RGBA8 packed in u32 (little-endian: R in
// the low byte), rounded to nearest and clamped, alpha 255 when x has 3 channels, written into a
// rectangle of an image of row stride c_offset pixels. Rectangle: out_h × out_w pixels from
// (pad_top, pad_left) of x (rows of in_w) to (k_h, k_w) of the image. Thread per pixel.
@group(0) @binding(5) var<storage, read_write> rgba: array<u32>;

@compute @workgroup_size(256, 1, 1)
fn to_rgba8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let ry = i / p.out_w;
    let rx = i % p.out_w;
    let base = p.x_offset + ((p.pad_top + ry) * p.in_w + p.pad_left + rx) * p.in_c;
    var a = 255.0;
    if (p.in_c == 4u) {
        a = f32(x[base + 3u]);
    }
    let v = clamp(round(vec4<f32>(f32(x[base]), f32(x[base + 1u]), f32(x[base + 2u]), a)), vec4<f32>(0.0), vec4<f32>(255.0));
    let u = vec4<u32>(v);
    rgba[p.out_offset + (p.k_h + ry) * p.c_offset + p.k_w + rx] = u.x | (u.y << 8u) | (u.z << 16u) | (u.w << 24u);
}

// im2col for a dense convolution: out [N·OH·OW, C·KH·KW] (row: output pixel; column: c·KH·KW + ky·KW
// + kx, the order of a PyTorch [C_out, C, KH, KW] weight flattened), zeros in the padding, so the
// convolution becomes a matrix product with the tiled matmul. Thread per element of out.
@compute @workgroup_size(256, 1, 1)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let khw = p.k_h * p.k_w;
    let cols = p.in_c * khw;
    let col = i % cols;
    let pixel = i / cols;
    let c = col / khw;
    let ky = (col % khw) / p.k_w;
    let kx = col % p.k_w;
    let ox = pixel % p.out_w;
    let oy = (pixel / p.out_w) % p.out_h;
    let n = pixel / (p.out_w * p.out_h);
    let iy = i32(oy * p.stride_h + ky) - i32(p.pad_top);
    let ix = i32(ox * p.stride_w + kx) - i32(p.pad_left);
    var v = T(0.0);
    if (iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w)) {
        v = x[p.x_offset + ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_c + c];
    }
    out[p.out_offset + i] = v;
}
