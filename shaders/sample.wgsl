// Next-token choice on the GPU, one workgroup a row of logits [rows, vocab], so that decoding reads
// back 4 bytes a token instead of the logits.
//   argmax: the first index of the maximum (as torch.argmax).
//   sample: temperature, then top-k, then top-p (the order of transformers' logits warpers), then a
//           draw from the remaining softmax mass with a seeded counter-based generator: the same
//           (seed, step, row) always gives the same token.
// top-k and top-p thresholds are found by bisection on the value (32 rounds, each a count or sum over
// the row): no sort. Values tied with a threshold are all kept.
// With PENALTY, the logits of tokens marked in `seen` (a bitset a row: the prompt and every token
// chosen so far) first get transformers' repetition penalty (divided by it when positive, multiplied
// when negative), and the chosen token is marked, so the next step sees it without a CPU round trip.
// With MASK, only tokens whose bit is set in `allowed` (a bitset a row: a grammar's choices for this
// step) can be chosen: the others count as the lowest value, below sampling's cut-off.

override PENALTY: bool = false;
override MASK: bool = false;

struct Params {
    rows: u32,
    vocab: u32,
    top_k: u32,        // 0: off
    seed: u32,
    temperature: f32,  // ≤ 0: argmax
    top_p: f32,        // ≥ 1: off
    step: u32,
    penalty: f32,      // > 1 penalizes (with PENALTY)
}

@group(0) @binding(0) var<storage, read> logits: array<T>;
@group(0) @binding(1) var<storage, read_write> ids: array<i32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> seen: array<u32>;
@group(0) @binding(4) var<storage, read> allowed: array<u32>;

const WG: u32 = 256u;
const LOWEST: f32 = -3.4028234663852886e38;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> sums: array<f32, WG>;

fn seen_word(row: u32, i: u32) -> u32 {
    return row * ((p.vocab + 31u) / 32u) + i / 32u;
}

fn row_value(row: u32, i: u32) -> f32 {
    if (MASK && (allowed[seen_word(row, i)] & (1u << (i % 32u))) == 0u) {
        return LOWEST;
    }
    let v = f32(logits[row * p.vocab + i]);
    if (PENALTY && (seen[seen_word(row, i)] & (1u << (i % 32u))) != 0u) {
        return select(v / p.penalty, v * p.penalty, v < 0.0);
    }
    return v;
}

// The row's choice (one thread calls this per row).
fn emit(row: u32, id: i32) {
    ids[row] = id;
    if (PENALTY && id >= 0) {
        let i = u32(id);
        seen[seen_word(row, i)] |= 1u << (i % 32u);
    }
}

// Keeps (v, i) as the running (best, best_i) where it is larger, or the first value seen.
fn keep_max(best: ptr<function, f32>, best_i: ptr<function, u32>, v: f32, i: u32) {
    if (v > *best || *best_i == 0xffffffffu) {
        *best = v;
        *best_i = i;
    }
}

// Loads a thread has in flight in argmax_row: 8, or 16 with ARGMAX_WIDE (the logits were just
// written and sit in L2, and one workgroup reads a whole row, so the time is latency: 24 round trips
// for 49 152 logits at 8, 12 at 16). A pipeline constant (natively `WEBGPU_INFER_ARGMAX_LOADS=16`)
// for A/B runs on GPUs.
override ARGMAX_WIDE: bool = false;

// Eight values of the row, WG apart from i (independent loads; constant indices only).
fn load8(row: u32, i: u32) -> array<f32, 8> {
    return array<f32, 8>(row_value(row, i), row_value(row, i + WG), row_value(row, i + 2u * WG),
        row_value(row, i + 3u * WG), row_value(row, i + 4u * WG), row_value(row, i + 5u * WG),
        row_value(row, i + 6u * WG), row_value(row, i + 7u * WG));
}

// keep_max over load8's values, in index order.
fn keep8(best: ptr<function, f32>, best_i: ptr<function, u32>, v: array<f32, 8>, i: u32) {
    keep_max(best, best_i, v[0], i);
    keep_max(best, best_i, v[1], i + WG);
    keep_max(best, best_i, v[2], i + 2u * WG);
    keep_max(best, best_i, v[3], i + 3u * WG);
    keep_max(best, best_i, v[4], i + 4u * WG);
    keep_max(best, best_i, v[5], i + 5u * WG);
    keep_max(best, best_i, v[6], i + 6u * WG);
    keep_max(best, best_i, v[7], i + 7u * WG);
}

// (max, first index of max) over the row; every thread gets it.
fn argmax_row(t: u32, row: u32) -> vec2<f32> {
    var best = LOWEST;
    var best_i = 0xffffffffu;
    // 8 (16) independent loads in flight, then compared in index order (the first maximum stays).
    var i = t;
    if (ARGMAX_WIDE) {
        for (; i + 15u * WG < p.vocab; i += 16u * WG) {
            let a = load8(row, i);
            let b = load8(row, i + 8u * WG);
            keep8(&best, &best_i, a, i);
            keep8(&best, &best_i, b, i + 8u * WG);
        }
    }
    for (; i + 7u * WG < p.vocab; i += 8u * WG) {
        keep8(&best, &best_i, load8(row, i), i);
    }
    for (; i < p.vocab; i += WG) {
        keep_max(&best, &best_i, row_value(row, i), i);
    }
    return wg_max(t, best, best_i);
}

// (max, first index of max) of the threads' (best, best_i), every thread gets it (ties: the smaller
// index; best_i 0xffffffff: none).
fn wg_max(t: u32, best: f32, best_i: u32) -> vec2<f32> {
    red_v[t] = best;
    red_i[t] = best_i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (t < s) {
            let v = red_v[t + s];
            let j = red_i[t + s];
            if (j != 0xffffffffu && (v > red_v[t] || (v == red_v[t] && j < red_i[t]) || red_i[t] == 0xffffffffu)) {
                red_v[t] = v;
                red_i[t] = j;
            }
        }
        workgroupBarrier();
    }
    let r = vec2<f32>(red_v[0], bitcast<f32>(red_i[0]));
    workgroupBarrier();
    return r;
}

// ---- argmax_parts: the first maximum of (value as f32 bits, index) pairs written in index order
// (shaders/quant_norm.wgsl's gemv_norm_argmax: a workgroup's 8 rows each), for one row; p.vocab is
// the number of pairs. As argmax_row with the pairs in place of the values.

@group(0) @binding(5) var<storage, read> parts: array<vec2<u32>>;

fn keep_part(best: ptr<function, f32>, best_i: ptr<function, u32>, q: vec2<u32>) {
    let v = bitcast<f32>(q.x);
    if (q.y != 0xffffffffu && (v > *best || *best_i == 0xffffffffu)) {
        *best = v;
        *best_i = q.y;
    }
}

@compute @workgroup_size(256, 1, 1)
fn argmax_parts(@builtin(local_invocation_index) t: u32) {
    var best = LOWEST;
    var best_i = 0xffffffffu;
    var i = t;
    // 8 independent loads in flight, then compared in order.
    for (; i + 7u * WG < p.vocab; i += 8u * WG) {
        let a = parts[i];
        let b = parts[i + WG];
        let c = parts[i + 2u * WG];
        let d = parts[i + 3u * WG];
        let e = parts[i + 4u * WG];
        let f = parts[i + 5u * WG];
        let g = parts[i + 6u * WG];
        let h = parts[i + 7u * WG];
        keep_part(&best, &best_i, a);
        keep_part(&best, &best_i, b);
        keep_part(&best, &best_i, c);
        keep_part(&best, &best_i, d);
        keep_part(&best, &best_i, e);
        keep_part(&best, &best_i, f);
        keep_part(&best, &best_i, g);
        keep_part(&best, &best_i, h);
    }
    for (; i < p.vocab; i += WG) {
        keep_part(&best, &best_i, parts[i]);
    }
    let m = wg_max(t, best, best_i);
    if (t == 0u) {
        ids[0] = i32(bitcast<u32>(m.y));
    }
}

fn wg_sum(t: u32, x: f32) -> f32 {
    sums[t] = x;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (t < s) {
            sums[t] += sums[t + s];
        }
        workgroupBarrier();
    }
    let r = sums[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(256, 1, 1)
fn argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wid.x + wid.y * groups.x;
    if (row >= p.rows) {
        return;
    }
    let m = argmax_row(t, row);
    if (t == 0u) {
        emit(row, i32(bitcast<u32>(m.y)));
    }
}

fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Scaled logit of element i: (x - max) / temperature, ≤ 0.
fn z(row: u32, i: u32, max_v: f32) -> f32 {
    return (row_value(row, i) - max_v) / p.temperature;
}

@compute @workgroup_size(256, 1, 1)
fn sample(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let row = wid.x + wid.y * groups.x;
    if (row >= p.rows) {
        return;
    }
    let m = argmax_row(t, row);
    let max_v = m.x;
    let best = i32(bitcast<u32>(m.y));
    if (p.temperature <= 0.0) {
        if (t == 0u) {
            emit(row, best);
        }
        return;
    }
    // Lowest scaled logit still worth keeping; exp(-88) underflows f32, so nothing below matters.
    var lo = -88.0;
    var keep = lo;
    if (p.top_k > 0u && p.top_k < p.vocab) {
        // Largest threshold with at least top_k values at or above it.
        var a = lo;
        var b = 0.0;
        for (var it = 0u; it < 32u; it++) {
            let mid = 0.5 * (a + b);
            var c = 0.0;
            for (var i = t; i < p.vocab; i += WG) {
                c += select(0.0, 1.0, z(row, i, max_v) >= mid);
            }
            if (wg_sum(t, c) >= f32(p.top_k)) {
                a = mid;
            } else {
                b = mid;
            }
        }
        keep = a;
    }
    var mass = 0.0;
    for (var i = t; i < p.vocab; i += WG) {
        let zi = z(row, i, max_v);
        mass += select(0.0, exp(zi), zi >= keep);
    }
    let total = wg_sum(t, mass);
    if (p.top_p < 1.0) {
        // Largest threshold whose kept mass is still at least top_p of the total.
        var a = keep;
        var b = 0.0;
        for (var it = 0u; it < 32u; it++) {
            let mid = 0.5 * (a + b);
            var s = 0.0;
            for (var i = t; i < p.vocab; i += WG) {
                let zi = z(row, i, max_v);
                s += select(0.0, exp(zi), zi >= mid);
            }
            if (wg_sum(t, s) >= p.top_p * total) {
                a = mid;
            } else {
                b = mid;
            }
        }
        keep = max(keep, a);
    }
    // The draw: thread t owns the contiguous chunk [t·chunk, (t+1)·chunk) of the row.
    let chunk = (p.vocab + WG - 1u) / WG;
    let begin = min(t * chunk, p.vocab);
    let end = min(begin + chunk, p.vocab);
    var own = 0.0;
    for (var i = begin; i < end; i++) {
        let zi = z(row, i, max_v);
        own += select(0.0, exp(zi), zi >= keep);
    }
    sums[t] = own;
    workgroupBarrier();
    // Inclusive scan of the chunk masses (Hillis-Steele).
    for (var s = 1u; s < WG; s *= 2u) {
        var add = 0.0;
        if (t >= s) {
            add = sums[t - s];
        }
        workgroupBarrier();
        sums[t] += add;
        workgroupBarrier();
    }
    let kept_total = sums[WG - 1u];
    let h = pcg(p.seed ^ pcg(p.step * 0x9e3779b9u + row));
    let u = f32(h >> 8u) / 16777216.0 * kept_total;
    let before = sums[t] - own;
    if (u >= before && u < sums[t] && own > 0.0) {
        var acc = before;
        var pick = -1;
        var last = -1;
        for (var i = begin; i < end; i++) {
            let zi = z(row, i, max_v);
            if (zi >= keep) {
                acc += exp(zi);
                last = i32(i);
                if (pick < 0 && u < acc) {
                    pick = i32(i);
                }
            }
        }
        // Rounding can leave u just past the chunk's last kept value: take that one.
        emit(row, select(pick, last, pick < 0));
    } else if (t == WG - 1u && u >= kept_total) {
        emit(row, best);
    }
}
