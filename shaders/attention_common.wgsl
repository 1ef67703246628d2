// What every attention kernel shares (prepended to shaders/attention.wgsl, attention_tiled.wgsl and
// attention_coop.wgsl by src/kernels/attention.rs): the parameters, the index of a query or key row,
// and which keys a query sees. The bindings are attention_bindings.wgsl's (elements of T), or the
// kernel's own (attention_coop.wgsl reads eight halves at a time), under the same names.

struct Params {
    batch: u32,
    q_len: u32,
    kv_len: u32,
    kv_cap: u32,
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    causal: u32,
    has_mask: u32,
    scale: f32,
    n_splits: u32, // decode_split / decode_combine: key ranges of SPLIT_KEYS a row
    window: u32,   // > 0: query at position t sees only keys > t - window (sliding window)
    softcap: f32,  // > 0: scores become softcap · tanh(score / softcap) (Gemma 2)
    _pad2: u32,
    _pad3: u32,
    _pad4: u32,
}

const LOWEST: f32 = -3.4028234663852886e38;

fn q_index(b: u32, i: u32, h: u32) -> u32 {
    return ((b * p.q_len + i) * p.n_heads + h) * p.head_dim;
}

fn kv_index(b: u32, j: u32, kvh: u32) -> u32 {
    return ((b * p.kv_cap + j) * p.n_kv_heads + kvh) * p.head_dim;
}

// Whether query row i (of q_len) may attend key j.
fn visible(b: u32, i: u32, j: u32) -> bool {
    let pos = p.kv_len - p.q_len + i;
    if (p.causal == 1u && j > pos) {
        return false;
    }
    if (p.window > 0u && j + p.window <= pos) {
        return false;
    }
    return p.has_mask == 0u || mask[b * p.kv_cap + j] != 0;
}

// A (scaled) score after the soft cap, when there is one. tanh's argument is clamped: some tanh
// implementations overflow past |x| ≈ 44, and tanh(±15) is ±1 in f32.
fn capped(s: f32) -> f32 {
    if (p.softcap > 0.0) {
        return p.softcap * tanh(clamp(s / p.softcap, -15.0, 15.0));
    }
    return s;
}
