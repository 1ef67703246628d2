// An image (an RGBA8 texture: what copyExternalImageToTexture or write_texture filled) to a model input
// [1, out_h, out_w, 3] (NHWC): crop to a rectangle, resize, then (value - mean) / std per channel,
// values on 0..1. One thread an output pixel. The resize is PyTorch's F.interpolate(size=...,
// align_corners=False) in float:
//   MODE 0 bilinear, MODE 1 bicubic (Keys, a = -0.75, the 4 taps' indices clamped to the image),
//   MODE 2 nearest (source index floor(o · in / out)), each without antialiasing; or, with ANTIALIAS
//   (bilinear and bicubic), F.interpolate(antialias=True), which is Pillow's resampling: a triangle or
//   Keys a = -0.5 filter stretched by the downscaling factor, weights normalised to sum to 1, applied
//   along x then along y.

override MODE: u32 = 0u;
override ANTIALIAS: bool = false;
// The model takes its channels as blue, green, red (OpenCV- and Caffe-trained models): mean and std
// are then given in that order too.
override BGR: bool = false;

struct Params {
    out_h: u32,
    out_w: u32,
    out_offset: u32,
    _pad: u32,
    crop: vec4<u32>,     // x, y, width, height, in texels
    mean: vec4<f32>,
    inv_std: vec4<f32>,
}

@group(0) @binding(0) var src: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> p: Params;

// Source index pair and weight of the second along one axis (PyTorch's area_pixel_compute_source_index
// for linear modes: negative coordinates clamp to 0).
fn source(o: u32, out_len: u32, in_len: u32) -> vec3<f32> {
    let scale = f32(in_len) / f32(out_len);
    let s = max((f32(o) + 0.5) * scale - 0.5, 0.0);
    let i0 = min(u32(s), in_len - 1u);
    let i1 = min(i0 + 1u, in_len - 1u);
    return vec3<f32>(f32(i0), f32(i1), s - f32(i0));
}

fn texel(x: f32, y: f32) -> vec3<f32> {
    return textureLoad(src, vec2<u32>(p.crop.x + u32(x), p.crop.y + u32(y)), 0).rgb;
}

fn texel_i(x: i32, y: i32) -> vec3<f32> {
    let cx = u32(clamp(x, 0, i32(p.crop.z) - 1));
    let cy = u32(clamp(y, 0, i32(p.crop.w) - 1));
    return textureLoad(src, vec2<u32>(p.crop.x + cx, p.crop.y + cy), 0).rgb;
}

// Keys' cubic convolution kernel with parameter a.
fn cubic(x: f32, a: f32) -> f32 {
    let t = abs(x);
    if (t < 1.0) {
        return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    }
    if (t < 2.0) {
        return ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a;
    }
    return 0.0;
}

fn bilinear(o: vec2<u32>) -> vec3<f32> {
    let sx = source(o.x, p.out_w, p.crop.z);
    let sy = source(o.y, p.out_h, p.crop.w);
    let top = mix(texel(sx.x, sy.x), texel(sx.y, sy.x), sx.z);
    let bottom = mix(texel(sx.x, sy.y), texel(sx.y, sy.y), sx.z);
    return mix(top, bottom, sy.z);
}

// The 4 weights of upsample_bicubic2d for fraction t: taps at floor(s) - 1 .. floor(s) + 2.
fn cubic4(t: f32) -> vec4<f32> {
    let a = -0.75;
    return vec4<f32>(cubic(t + 1.0, a), cubic(t, a), cubic(1.0 - t, a), cubic(2.0 - t, a));
}

fn bicubic(o: vec2<u32>) -> vec3<f32> {
    // area_pixel_compute_source_index with cubic: no clamp at 0.
    let sx = (f32(o.x) + 0.5) * (f32(p.crop.z) / f32(p.out_w)) - 0.5;
    let sy = (f32(o.y) + 0.5) * (f32(p.crop.w) / f32(p.out_h)) - 0.5;
    let fx = floor(sx);
    let fy = floor(sy);
    let wx = cubic4(sx - fx);
    let wy = cubic4(sy - fy);
    let x0 = i32(fx) - 1;
    let y0 = i32(fy) - 1;
    var acc = vec3<f32>(0.0);
    for (var j = 0; j < 4; j++) {
        let y = y0 + j;
        let row = wx.x * texel_i(x0, y) + wx.y * texel_i(x0 + 1, y) + wx.z * texel_i(x0 + 2, y)
            + wx.w * texel_i(x0 + 3, y);
        acc += wy[j] * row;
    }
    return acc;
}

fn nearest(o: vec2<u32>) -> vec3<f32> {
    let x = min(u32(floor(f32(o.x) * (f32(p.crop.z) / f32(p.out_w)))), p.crop.z - 1u);
    let y = min(u32(floor(f32(o.y) * (f32(p.crop.w) / f32(p.out_h)))), p.crop.w - 1u);
    return textureLoad(src, vec2<u32>(p.crop.x + x, p.crop.y + y), 0).rgb;
}

// ---- antialiased (PyTorch's _upsample_*_aa, Pillow's algorithm) -----------------------------------

fn aa_filter(x: f32) -> f32 {
    if (MODE == 1u) {
        return cubic(x, -0.5);
    }
    return max(1.0 - abs(x), 0.0);
}

// One axis' window: first source index, tap count, centre, filter scale, and 1 / the weights' sum.
struct Window {
    lo: i32,
    n: i32,
    center: f32,
    inv: f32,
    norm: f32,
}

fn window(o: u32, out_len: u32, in_len: u32) -> Window {
    let scale = f32(in_len) / f32(out_len);
    var support = select(1.0, 2.0, MODE == 1u); // half the filter's size
    var inv = 1.0;
    if (scale >= 1.0) {
        support *= scale;
        inv = 1.0 / scale;
    }
    let center = scale * (f32(o) + 0.5);
    let lo = max(i32(center - support + 0.5), 0);
    let n = max(min(i32(center + support + 0.5), i32(in_len)) - lo, 0);
    var total = 0.0;
    for (var j = 0; j < n; j++) {
        total += aa_filter((f32(j + lo) - center + 0.5) * inv);
    }
    return Window(lo, n, center, inv, select(0.0, 1.0 / total, total != 0.0));
}

fn weight(w: Window, j: i32) -> f32 {
    return aa_filter((f32(j + w.lo) - w.center + 0.5) * w.inv) * w.norm;
}

fn antialiased(o: vec2<u32>) -> vec3<f32> {
    let wx = window(o.x, p.out_w, p.crop.z);
    let wy = window(o.y, p.out_h, p.crop.w);
    var acc = vec3<f32>(0.0);
    for (var j = 0; j < wy.n; j++) {
        var row = vec3<f32>(0.0);
        for (var i = 0; i < wx.n; i++) {
            row += weight(wx, i) * texel_i(wx.lo + i, wy.lo + j);
        }
        acc += weight(wy, j) * row;
    }
    return acc;
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.out_w || gid.y >= p.out_h) {
        return;
    }
    var v: vec3<f32>;
    if (ANTIALIAS && MODE != 2u) {
        v = antialiased(gid.xy);
    } else if (MODE == 1u) {
        v = bicubic(gid.xy);
    } else if (MODE == 2u) {
        v = nearest(gid.xy);
    } else {
        v = bilinear(gid.xy);
    }
    var c = v;
    if (BGR) {
        c = v.bgr;
    }
    let rgb = (c - p.mean.rgb) * p.inv_std.rgb;
    let o = p.out_offset + (gid.y * p.out_w + gid.x) * 3u;
    out[o] = T(rgb.r);
    out[o + 1u] = T(rgb.g);
    out[o + 2u] = T(rgb.b);
}
