// An image (an RGBA8 texture: what copyExternalImageToTexture or write_texture filled) to a model input
// [1, out_h, out_w, 3] (NHWC): crop to a rectangle, resize by bilinear interpolation with half-pixel
// centres and no antialiasing (PyTorch's F.interpolate(mode="bilinear", align_corners=False)), then
// (value - mean) / std per channel, values on 0..1. One thread an output pixel.

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

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.out_w || gid.y >= p.out_h) {
        return;
    }
    let sx = source(gid.x, p.out_w, p.crop.z);
    let sy = source(gid.y, p.out_h, p.crop.w);
    let top = mix(texel(sx.x, sy.x), texel(sx.y, sy.x), sx.z);
    let bottom = mix(texel(sx.x, sy.y), texel(sx.y, sy.y), sx.z);
    let rgb = (mix(top, bottom, sy.z) - p.mean.rgb) * p.inv_std.rgb;
    let o = p.out_offset + (gid.y * p.out_w + gid.x) * 3u;
    out[o] = T(rgb.r);
    out[o + 1u] = T(rgb.g);
    out[o + 2u] = T(rgb.b);
}
