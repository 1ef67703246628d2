// A plain copy, four 32-bit words a thread: the bandwidth a kernel can reach on this adapter, the
// yardstick for memory-bound kernels (GEMV, decode attention).

struct Params {
    words4: u32, // number of vec4<u32> to copy
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i < p.words4) {
        dst[i] = src[i];
    }
}
