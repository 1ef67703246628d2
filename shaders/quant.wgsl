// Kernels over GGML block-quantized matrices (the formats and their decoding: shaders/quant_blocks.wgsl,
// which src/kernels/quant.rs puts in front of this file): dequantizing GEMVs (decoding, short prompts),
// the fused SwiGLU and QKV + RoPE GEMVs, and dequantization of whole rows. The wrappers here read the
// raw words from each weight binding (WGSL cannot pass a storage array to a function).

override QTYPE: u32 = 1u;
// gemv_qkv: the value weight's type (Q4_K_M files give v more bits than q and k in some layers).
override QTYPE_V: u32 = 1u;
override HAS_RESIDUAL: bool = false;
// gemv_qkv and gemv_swiglu (one row of x): RMSNorm folded in, x / sqrt(mean(x²) + eps) · norm_w,
// the mean of squares summed by each output row's lanes for themselves (shaders/norm.wgsl's MODE 1,
// summed in another order), the scale applied to the row's sum.
override NORM: bool = false;
// gemv_qkv: RoPE frequencies divided by per-pair factors (Llama 3's scaling, `rope_freqs.weight`).
override HAS_FACTORS: bool = false;
// gemv_qkv: q and k rows in rotate-half ("NEOX") RoPE layout, pairs (i, i + head_dim / 2) of each head
// (transformers' own, and llama.cpp's for every architecture but `llama`); off: GGML's interleaved
// pairs (2i, 2i + 1).
override NEOX: bool = false;

// The gated GEMVs' activation of the gate: SiLU (SwiGLU) or, with GELU, GELU-tanh (GeGLU: Gemma).
override GELU: bool = false;

fn gate_act(g: f32) -> f32 {
    if (GELU) {
        // transformers' gelu_pytorch_tanh; tanh's argument clamped (some tanh overflow past ~44).
        let u = 0.7978845608028654 * (g + 0.044715 * g * g * g);
        return 0.5 * g * (1.0 + tanh(clamp(u, -15.0, 15.0)));
    }
    return g / (1.0 + exp(-g));
}

fn gate_act4(g: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(gate_act(g.x), gate_act(g.y), gate_act(g.z), gate_act(g.w));
}

struct Params {
    m: u32,              // rows of x (tokens)
    n: u32,              // rows of the weight (outputs)
    k: u32,              // columns of the weight (inputs), a multiple of the block size
    x_offset: u32,       // in elements
    out_offset: u32,     // in elements
    res_offset: u32,     // in elements
    ids_offset: u32,     // in elements (gather)
    n_kv: u32,           // gemv_qkv: rows of the key and of the value weight
    k_offset: u32,       // gemv_qkv: where the key row goes (a KV cache's next row), in elements
    v_offset: u32,       // gemv_qkv: where the value row goes
    pos: u32,            // gemv_qkv: the token's position, for RoPE
    theta: f32,          // gemv_qkv: RoPE base
    head_dim: u32,       // gemv_qkv: RoPE's head size (0: no RoPE); gemv_merged: the attention's
    eps: f32,            // NORM: RMSNorm's epsilon
    norm_offset: u32,    // NORM: the norm weight's offset, in elements
    factor_offset: u32,  // gemv_qkv, HAS_FACTORS: rope_factors' first element
    splits: u32,         // gemv_merged: ranges of keys a head in `part`
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;

// The little-endian u32 at byte `b` (b even).
fn word_at(b: u32) -> u32 {
    let i = b / 4u;
    if ((b & 3u) == 0u) {
        return w[i];
    }
    return (w[i] >> 16u) | (w[i + 1u] << 16u);
}

fn f16_at(b: u32) -> f32 {
    let word = w[b / 4u];
    return unpack2x16float(select(word, word >> 16u, (b & 3u) != 0u)).x;
}

fn block_head(blk: u32) -> BlockHead {
    let a = head_at(QTYPE, blk);
    var m = 0.0;
    if (has_min(QTYPE)) {
        m = f16_at(a.d + 2u);
    }
    var s = vec3<u32>(0u);
    if (head_words(QTYPE) > 0u) {
        s.x = word_at(a.s);
    }
    if (head_words(QTYPE) > 1u) {
        s.y = word_at(a.s + 4u);
        s.z = word_at(a.s + 8u);
    }
    return head_of(QTYPE, a, f16_at(a.d), m, s);
}

fn quad(h: BlockHead, i: u32) -> vec4<f32> {
    var hw = 0u;
    if (has_high_words(QTYPE)) {
        hw = word_at(h.qh + 4u * i);
    }
    return quad_of(QTYPE, h, word_at(quad_word(QTYPE, h, i)), hw, i);
}

// ---- GEMV: out[r, j] = Σ_k x[r, k] · W[j, k] (+ residual[r, j]) --------------------------------------
// 256 threads: 8 weight rows a workgroup, 32 threads a row. A row is walked in quads (4 elements of
// a 32-element block): lane l takes quad l % 8 of blocks l / 8, l / 8 + 4, ..., so at each step the
// 32 lanes read four whole neighbouring blocks and 128 consecutive elements of x (contiguous memory,
// every lane busy even when a row has fewer blocks than lanes), UNROLL steps at a time in flight.

const ROWS: u32 = 8u;
const LANES: u32 = 32u;
// Quads a lane has in flight at once (a pipeline constant so that GPU runs can A/B it natively:
// WEBGPU_INFER_GEMV_UNROLL, src/kernels/quant.rs).
override UNROLL: u32 = 4u;

@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> residual: array<T>;

var<workgroup> partial: array<f32, 256>;

fn x4(r: u32, k: u32) -> vec4<f32> {
    if (MERGED) {
        return vec4<f32>(f32(xs[k]), f32(xs[k + 1u]), f32(xs[k + 2u]), f32(xs[k + 3u]));
    }
    let i = p.x_offset + r * p.k + k;
    return vec4<f32>(f32(x[i]), f32(x[i + 1u]), f32(x[i + 2u]), f32(x[i + 3u]));
}

fn row_dot(r: u32, row: u32, lane: u32) -> f32 {
    let blocks = p.k / 32u;
    let quads = blocks * 8u;
    let i = lane % 8u;
    var acc = 0.0;
    for (var u0 = lane; u0 < quads; u0 += UNROLL * LANES) {
        for (var j = 0u; j < UNROLL; j++) {
            let u = u0 + j * LANES;
            if (u < quads) {
                let b = u / 8u;
                acc += dot(quad(block_head(row * blocks + b), i), x4(r, 4u * u));
            }
        }
    }
    return acc;
}

@group(0) @binding(10) var<storage, read> norm_w: array<T>;

// NORM: x[0]'s elements k .. k + 3 times the norm's weights; the row's dot product with these is
// scaled by 1/sqrt(mean(x[0]²) + eps) at the end (`rms_scale`), the mean of squares summed by the
// row's own lanes as they walk x (each row's 32 lanes together read all of x once): no pass over x
// and no workgroup-wide sum before the weights' loads start. Else x's elements as they are.
fn xin(v: vec4<f32>, k: u32) -> vec4<f32> {
    if (NORM) {
        let i = p.norm_offset + k;
        let w = vec4<f32>(f32(norm_w[i]), f32(norm_w[i + 1u]), f32(norm_w[i + 2u]), f32(norm_w[i + 3u]));
        return v * w;
    }
    return v;
}

// NORM: the row's scale from its lanes' summed squares (1 otherwise).
fn rms_scale(ss: f32) -> f32 {
    if (NORM) {
        return inverseSqrt(ss / f32(p.k) + p.eps);
    }
    return 1.0;
}

// One workgroup's 8 outputs of row r = wg.y of x.
fn gemv_rows8(wg: vec3<u32>, lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let r = wg.y;
    var acc = 0.0;
    // The residual is read first, its latency hidden behind the weights' loads.
    var res = 0.0;
    if (HAS_RESIDUAL && row < p.n && lid % LANES == 0u) {
        res = f32(residual[p.res_offset + r * p.n + row]);
    }
    if (row < p.n) {
        acc = row_dot(r, row, lid % LANES);
    }
    let total = row_sum(acc, lid);
    if (row < p.n && lid % LANES == 0u) {
        out[p.out_offset + r * p.n + row] = T(total + res);
    }
}

@compute @workgroup_size(256, 1, 1)
fn gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    gemv_rows8(wg, lid);
}

// ---- SwiGLU GEMV: out[r, j] = silu(Wg[j]·x[r]) · (Wu[j]·x[r]) (GELU: GeGLU), both weights of one type

@group(0) @binding(5) var<storage, read> w_up: array<u32>;

var<workgroup> partial_up: array<f32, 256>;

fn up_f16_at(b: u32) -> f32 {
    let word = w_up[b / 4u];
    return unpack2x16float(select(word, word >> 16u, (b & 3u) != 0u)).x;
}

fn up_word_at(b: u32) -> u32 {
    let i = b / 4u;
    if ((b & 3u) == 0u) {
        return w_up[i];
    }
    return (w_up[i] >> 16u) | (w_up[i + 1u] << 16u);
}

// block_head and quad for w_up (WGSL cannot pass a storage array to a function): the same reads.
fn block_head_up(blk: u32) -> BlockHead {
    let a = head_at(QTYPE, blk);
    var m = 0.0;
    if (has_min(QTYPE)) {
        m = up_f16_at(a.d + 2u);
    }
    var s = vec3<u32>(0u);
    if (head_words(QTYPE) > 0u) {
        s.x = up_word_at(a.s);
    }
    if (head_words(QTYPE) > 1u) {
        s.y = up_word_at(a.s + 4u);
        s.z = up_word_at(a.s + 8u);
    }
    return head_of(QTYPE, a, up_f16_at(a.d), m, s);
}

fn quad_up(h: BlockHead, i: u32) -> vec4<f32> {
    var hw = 0u;
    if (has_high_words(QTYPE)) {
        hw = up_word_at(h.qh + 4u * i);
    }
    return quad_of(QTYPE, h, up_word_at(quad_word(QTYPE, h, i)), hw, i);
}

@compute @workgroup_size(256, 1, 1)
fn gemv_swiglu(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let r = wg.y;
    let lane = lid % LANES;
    var gate = 0.0;
    var up = 0.0;
    var ss = 0.0;
    if (row < p.n) {
        let blocks = p.k / 32u;
        let quads = blocks * 8u;
        let i = lane % 8u;
        for (var u0 = lane; u0 < quads; u0 += UNROLL * LANES) {
            for (var j = 0u; j < UNROLL; j++) {
                let u = u0 + j * LANES;
                if (u < quads) {
                    let blk = row * blocks + u / 8u;
                    let xr = x4(r, 4u * u);
                    let xv = xin(xr, 4u * u);
                    ss += dot(xr, xr);
                    gate += dot(quad(block_head(blk), i), xv);
                    up += dot(quad_up(block_head_up(blk), i), xv);
                }
            }
        }
    }
    let total = row_sum4(vec4<f32>(gate, up, ss, 0.0), lid);
    if (row < p.n && lane == 0u) {
        let scale = rms_scale(total.z);
        out[p.out_offset + r * p.n + row] = T(gate_act(total.x * scale) * (total.y * scale));
    }
}

// ---- GEMV over 4 rows of x at once (short prompts): each weight quad is dequantized once and dotted
// with 4 rows of x, so the weights are read m/4 times rather than m. Rows past p.m read row p.m − 1 and
// are not written. Accumulators are named vectors (component j: row 4·wg.y + j), not arrays. -----------

var<workgroup> partial4: array<vec4<f32>, 256>;
var<workgroup> partial4_up: array<vec4<f32>, 256>;

// Rows 4·g .. 4·g + 3 of x, clamped to the last.
fn x_rows(g: u32) -> vec4<u32> {
    let last = p.m - 1u;
    let r = 4u * g;
    return vec4<u32>(min(r, last), min(r + 1u, last), min(r + 2u, last), min(r + 3u, last));
}

// quad q times the 4 rows' elements k .. k + 3.
fn dot4(q: vec4<f32>, rs: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(dot(q, x4(rs.x, k)), dot(q, x4(rs.y, k)), dot(q, x4(rs.z, k)), dot(q, x4(rs.w, k)));
}

// Both sums of the gated 4-row GEMV.
struct Sum4 {
    a: vec4<f32>,
    b: vec4<f32>,
}

// Writes y[j] to row 4·g + j of the output, column `row`, for the rows that exist.
fn store4(g: u32, row: u32, y: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        let r = 4u * g + j;
        if (r < p.m) {
            out[p.out_offset + r * p.n + row] = T(y[j]);
        }
    }
}

@compute @workgroup_size(256, 1, 1)
fn gemv4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let rs = x_rows(wg.y);
    var acc = vec4<f32>(0.0);
    if (row < p.n) {
        let blocks = p.k / 32u;
        let quads = blocks * 8u;
        let lane = lid % LANES;
        let i = lane % 8u;
        for (var u0 = lane; u0 < quads; u0 += UNROLL * LANES) {
            for (var j = 0u; j < UNROLL; j++) {
                let u = u0 + j * LANES;
                if (u < quads) {
                    acc += dot4(quad(block_head(row * blocks + u / 8u), i), rs, 4u * u);
                }
            }
        }
    }
    let total = row_sum4(acc, lid);
    if (row < p.n && lid % LANES == 0u) {
        var y = total;
        if (HAS_RESIDUAL) {
            let i = p.res_offset + row;
            y += vec4<f32>(f32(residual[i + rs.x * p.n]), f32(residual[i + rs.y * p.n]),
                f32(residual[i + rs.z * p.n]), f32(residual[i + rs.w * p.n]));
        }
        store4(wg.y, row, y);
    }
}

@compute @workgroup_size(256, 1, 1)
fn gemv_swiglu4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x * ROWS + lid / LANES;
    let rs = x_rows(wg.y);
    var gate = vec4<f32>(0.0);
    var up = vec4<f32>(0.0);
    if (row < p.n) {
        let blocks = p.k / 32u;
        let quads = blocks * 8u;
        let lane = lid % LANES;
        let i = lane % 8u;
        for (var u0 = lane; u0 < quads; u0 += UNROLL * LANES) {
            for (var j = 0u; j < UNROLL; j++) {
                let u = u0 + j * LANES;
                if (u < quads) {
                    let blk = row * blocks + u / 8u;
                    gate += dot4(quad(block_head(blk), i), rs, 4u * u);
                    up += dot4(quad_up(block_head_up(blk), i), rs, 4u * u);
                }
            }
        }
    }
    let total = row_sum4x2(gate, up, lid);
    if (row < p.n && lid % LANES == 0u) {
        store4(wg.y, row, gate_act4(total.a) * total.b);
    }
}

// ---- Decoding's attention input in one dispatch: q = Wq·x, k = Wk·x, v = Wv·x for one token (three
// weights of one type), RoPE applied to q and k in GGML's interleaved layout (pairs of adjacent rows,
// which sit in one workgroup), k and v written straight into the KV cache's next rows. The weights'
// rows are laid end to end, q's then k's then v's; each workgroup's 8 rows lie in one of them (row
// counts are multiples of 8). The angle is computed as shaders/rope.wgsl does. ----------------------

@group(0) @binding(7) var<storage, read> w_v: array<u32>;
@group(0) @binding(8) var<storage, read_write> out_k: array<T>;
@group(0) @binding(9) var<storage, read_write> out_v: array<T>;

fn v_f16_at(b: u32) -> f32 {
    let word = w_v[b / 4u];
    return unpack2x16float(select(word, word >> 16u, (b & 3u) != 0u)).x;
}

fn v_word_at(b: u32) -> u32 {
    let i = b / 4u;
    if ((b & 3u) == 0u) {
        return w_v[i];
    }
    return (w_v[i] >> 16u) | (w_v[i + 1u] << 16u);
}

fn block_head_v(blk: u32) -> BlockHead {
    let a = head_at(QTYPE_V, blk);
    var m = 0.0;
    if (has_min(QTYPE_V)) {
        m = v_f16_at(a.d + 2u);
    }
    var s = vec3<u32>(0u);
    if (head_words(QTYPE_V) > 0u) {
        s.x = v_word_at(a.s);
    }
    if (head_words(QTYPE_V) > 1u) {
        s.y = v_word_at(a.s + 4u);
        s.z = v_word_at(a.s + 8u);
    }
    return head_of(QTYPE_V, a, v_f16_at(a.d), m, s);
}

fn quad_v(h: BlockHead, i: u32) -> vec4<f32> {
    var hw = 0u;
    if (has_high_words(QTYPE_V)) {
        hw = v_word_at(h.qh + 4u * i);
    }
    return quad_of(QTYPE_V, h, v_word_at(quad_word(QTYPE_V, h, i)), hw, i);
}

const QKV_TWO_PI: f32 = 6.283185307179586;

@group(0) @binding(11) var<storage, read> rope_factors: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn gemv_qkv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row_all = wg.x * ROWS + lid / LANES;
    let lane = lid % LANES;
    let blocks = p.k / 32u;
    // Which weight this workgroup reads (uniform across it): 0 q, 1 k, 2 v.
    let first = wg.x * ROWS;
    var which = 0u;
    var row = row_all;
    if (first >= p.n + p.n_kv) {
        which = 2u;
        row = row_all - p.n - p.n_kv;
    } else if (first >= p.n) {
        which = 1u;
        row = row_all - p.n;
    }
    // Rows come in RoPE pairs, each pair in two neighbouring slots (32 lanes apart). Rotate-half pairs
    // are half a head apart: slot 2i + s of a head computes row i + s · head_dim / 2 of that head.
    let slot = row;
    if (NEOX && which < 2u && p.head_dim > 0u) {
        let j = slot % p.head_dim;
        row = slot - j + j / 2u + (j & 1u) * (p.head_dim / 2u);
    }
    var acc = 0.0;
    var ss = 0.0;
    let quads = blocks * 8u;
    let i = lane % 8u;
    for (var u0 = lane; u0 < quads; u0 += UNROLL * LANES) {
        for (var j = 0u; j < UNROLL; j++) {
            let u = u0 + j * LANES;
            if (u < quads) {
                let blk = row * blocks + u / 8u;
                let xr = x4(0u, 4u * u);
                let xv = xin(xr, 4u * u);
                ss += dot(xr, xr);
                if (which == 0u) {
                    acc += dot(quad(block_head(blk), i), xv);
                } else if (which == 1u) {
                    acc += dot(quad_up(block_head_up(blk), i), xv);
                } else {
                    acc += dot(quad_v(block_head_v(blk), i), xv);
                }
            }
        }
    }
    // Each row's total, then in workgroup memory for the RoPE partner (the row 32 lanes away).
    let sums = row_sum2(acc, ss, lid);
    var y = sums.x * rms_scale(sums.y);
    partial[lid] = y;
    workgroupBarrier();
    if (lane != 0u) {
        return;
    }
    if (which < 2u && p.head_dim > 0u) {
        // The partner of slot 2i is 2i + 1 and back: the row next to this one, 32 lanes away.
        let other = partial[lid ^ LANES];
        let i = (slot % p.head_dim) / 2u;
        var inv_freq = 1.0 / pow(p.theta, f32(2u * i) / f32(p.head_dim));
        if (HAS_FACTORS) {
            inv_freq = inv_freq / rope_factors[p.factor_offset + i];
        }
        let angle = f32(p.pos) * inv_freq;
        let reduced = angle - QKV_TWO_PI * round(angle / QKV_TWO_PI);
        let c = cos(reduced);
        let sn = sin(reduced);
        if ((slot & 1u) == 0u) {
            y = y * c - other * sn;
        } else {
            y = y * c + other * sn;
        }
    }
    switch which {
        case 0u: { out[p.out_offset + row] = T(y); }
        case 1u: { out_k[p.k_offset + row] = T(y); }
        default: { out_v[p.v_offset + row] = T(y); }
    }
}

// ---- Dequantize rows: out[i, :] = W[row_i, :], row_i = i, or ids[i] (embedding gather) ---------------
// One thread a block. `p.m` is the number of output rows; `p.n` the weight's rows (ids past it give 0).

@group(0) @binding(6) var<storage, read> ids: array<i32>;

fn write_block(i: u32, src_row: u32, b: u32) {
    let blocks = p.k / 32u;
    let base = p.out_offset + i * p.k + b * 32u;
    if (src_row >= p.n) {
        for (var j = 0u; j < 32u; j++) {
            out[base + j] = T(0.0);
        }
        return;
    }
    let h = block_head(src_row * blocks + b);
    for (var j = 0u; j < 8u; j++) {
        let v = quad(h, j);
        out[base + 4u * j] = T(v.x);
        out[base + 4u * j + 1u] = T(v.y);
        out[base + 4u * j + 2u] = T(v.z);
        out[base + 4u * j + 3u] = T(v.w);
    }
}

@compute @workgroup_size(256, 1, 1)
fn dequant(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = gid.x + gid.y * groups.x * 256u;
    let blocks = p.k / 32u;
    if (t >= p.m * blocks) {
        return;
    }
    write_block(t / blocks, t / blocks, t % blocks);
}

@compute @workgroup_size(256, 1, 1)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let t = gid.x + gid.y * groups.x * 256u;
    let blocks = p.k / 32u;
    if (t >= p.m * blocks) {
        return;
    }
    let id = ids[p.ids_offset + t / blocks];
    write_block(t / blocks, select(u32(id), p.n, id < 0), t % blocks);
}

// ---- One thread an output: for CPU adapters (llvmpipe, SwiftShader), where workgroup barriers are
// expensive and memory coalescing does not matter. Same results as gemv / gemv_swiglu. --------------

@compute @workgroup_size(64, 1, 1)
fn gemv_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    let r = gid.y;
    if (row >= p.n) {
        return;
    }
    let blocks = p.k / 32u;
    var acc = 0.0;
    for (var b = 0u; b < blocks; b++) {
        let h = block_head(row * blocks + b);
        for (var i = 0u; i < 8u; i++) {
            acc += dot(quad(h, i), x4(r, b * 32u + 4u * i));
        }
    }
    if (HAS_RESIDUAL) {
        acc += f32(residual[p.res_offset + r * p.n + row]);
    }
    out[p.out_offset + r * p.n + row] = T(acc);
}

@compute @workgroup_size(64, 1, 1)
fn gemv_swiglu_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    let r = gid.y;
    if (row >= p.n) {
        return;
    }
    let blocks = p.k / 32u;
    var gate = 0.0;
    var up = 0.0;
    for (var b = 0u; b < blocks; b++) {
        let g = block_head(row * blocks + b);
        let u = block_head_up(row * blocks + b);
        for (var i = 0u; i < 8u; i++) {
            let xv = x4(r, b * 32u + 4u * i);
            gate += dot(quad(g, i), xv);
            up += dot(quad_up(u, i), xv);
        }
    }
    out[p.out_offset + r * p.n + row] = T(gate_act(gate) * up);
}
