// Element-wise activations, out = act(x) (shaders/activation_fns.wgsl, prepended), computed in f32 and rounded
// once to T.

struct Params {
    len: u32,
    x_offset: u32,
    out_offset: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.len) {
        return;
    }
    out[p.out_offset + i] = T(act(f32(x[p.x_offset + i])));
}
