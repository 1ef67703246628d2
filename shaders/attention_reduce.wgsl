// The decode kernels' workgroup reductions, portable version: trees over `reduce_buf` (declared in
// shaders/attention.wgsl), every thread gets the result. Called by all DWG threads (barriers inside);
// the first barrier also publishes what the workgroup wrote to workgroup memory before the call.
// shaders/attention_reduce_sg.wgsl replaces this file where subgroups are 32 lanes wide.

fn reduce_max(t: u32, x: f32) -> f32 {
    reduce_buf[t] = x;
    workgroupBarrier();
    for (var s = DWG / 2u; s > 0u; s /= 2u) {
        if (t < s) {
            reduce_buf[t] = max(reduce_buf[t], reduce_buf[t + s]);
        }
        workgroupBarrier();
    }
    let r = reduce_buf[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(t: u32, x: f32) -> f32 {
    reduce_buf[t] = x;
    workgroupBarrier();
    for (var s = DWG / 2u; s > 0u; s /= 2u) {
        if (t < s) {
            reduce_buf[t] += reduce_buf[t + s];
        }
        workgroupBarrier();
    }
    let r = reduce_buf[0];
    workgroupBarrier();
    return r;
}
