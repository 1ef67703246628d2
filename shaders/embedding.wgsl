// Embedding gather: out[t, :] = word[ids[t]] (+ token_type[type_ids[t]]) (+ position[pos0 + t mod seq]),
// summed in that order in f32 as BERT's embeddings module does. One thread an output element.
// Ids outside the table are clamped (the caller validates ids it uploads; this keeps a bad id from
// reading another tensor). Absent tables are bound to a placeholder and switched off by a flag.

struct Params {
    total: u32,      // tokens · hidden
    hidden: u32,
    vocab: u32,
    seq: u32,        // tokens per sequence: position = pos0 + (t mod seq)
    pos0: u32,
    n_positions: u32, // 0: no position table
    n_types: u32,     // 0: no token-type table
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<i32>;
@group(0) @binding(1) var<storage, read> word: array<T>;
@group(0) @binding(2) var<storage, read> position: array<T>;
@group(0) @binding(3) var<storage, read> type_ids: array<i32>;
@group(0) @binding(4) var<storage, read> token_type: array<T>;
@group(0) @binding(5) var<storage, read_write> out: array<T>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = gid.x + gid.y * groups.x * 256u;
    if (e >= p.total) {
        return;
    }
    let t = e / p.hidden;
    let j = e % p.hidden;
    let id = u32(clamp(ids[t], 0, i32(p.vocab) - 1));
    var v = f32(word[id * p.hidden + j]);
    if (p.n_types > 0u) {
        let ty = u32(clamp(type_ids[t], 0, i32(p.n_types) - 1));
        v += f32(token_type[ty * p.hidden + j]);
    }
    if (p.n_positions > 0u) {
        let pos = min(p.pos0 + t % p.seq, p.n_positions - 1u);
        v += f32(position[pos * p.hidden + j]);
    }
    out[e] = T(v);
}
