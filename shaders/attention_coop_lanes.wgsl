// The lanes' side of the tensor-core attention (prepended to attention_coop.wgsl after
// attention_common.wgsl): each subgroup's f32 scratch and f16 P tile, and the online softmax. A lane (r, h) = (lane % 16, lane / 16) of a
// subgroup takes row r of its 16 query rows and 32 of a tile's 64 keys (and output columns), those of
// half h, rotated by the row (`col`) so that the 32 lanes hit 32 different banks.

const BC: u32 = 64u;    // keys a tile
// head_dim: 64, or 32: a lane then holds 16 of its row's outputs.
override HD: u32 = 64u;
const SS: u32 = 68u;    // row stride of a subgroup's f32 scratch (16 rows)
const PS: u32 = 72u;    // row stride of a subgroup's P tile (16 rows of f16)

var<workgroup> s_s: array<f32, 4352>;   // 4 subgroups × 16 × SS
var<workgroup> p_s: array<f16, 4608>;   // 4 subgroups × 16 × PS

// The column of a lane's c-th element (c < 32) in row r, half h of a 16 × 64 tile: rotated so that
// the 32 lanes' addresses fall in 32 different banks of the f32 scratch (bank 5r + 16h + c mod 32).
fn col(r: u32, h: u32, c: u32) -> u32 {
    return h * 32u + (c + r + 16u * h) % 32u;
}

// Scores c = 4g..4g+4 of this lane (row r, half h) from the scratch, for keys jb + column: scaled,
// capped, and LOWEST where the row is past the queries, the key below `lo` or from `end` on, or not
// visible to the row (none of which is looked at where `all` says the row sees every key).
fn scores4(base: u32, r: u32, h: u32, g: u32, b: u32, i: u32, jb: u32, lo: u32, end: u32,
           all: bool) -> vec4<f32> {
    var x: vec4<f32>;
    for (var e = 0u; e < 4u; e++) {
        let cc = col(r, h, g * 4u + e);
        let j = jb + cc;
        var s = capped(s_s[base + r * SS + cc] * p.scale);
        if (!all && (i >= p.q_len || j < lo || j >= end || !visible(b, i, j))) {
            s = LOWEST;
        }
        x[e] = s;
    }
    return x;
}

// exp(x − mx) for four scores (0 where masked), written to this lane's places in its P tile.
fn probs4(base: u32, r: u32, h: u32, g: u32, x: vec4<f32>, mx: f32) -> vec4<f32> {
    let pr = select(vec4<f32>(0.0), exp(x - vec4<f32>(mx)), x > vec4<f32>(LOWEST));
    for (var e = 0u; e < 4u; e++) {
        p_s[base + r * PS + col(r, h, g * 4u + e)] = f16(pr[e]);
    }
    return pr;
}

fn max4(x: vec4<f32>) -> f32 {
    return max(max(x.x, x.y), max(x.z, x.w));
}

// The online softmax of one key tile over this lane's 32 scores in the scratch at `sb` (see
// scores4 for jb, lo, end): P = exp(S − the row's new maximum) to the P tile at `pb` (m: the old
// maximum). Returns the row's new maximum, the factor that rescales what was summed before, and the
// sum of this lane's new probabilities.
fn softmax_tile(sb: u32, pb: u32, r: u32, h: u32, b: u32, i: u32, jb: u32, lo: u32, end: u32,
                m: f32) -> vec3<f32> {
    // Whether row i sees all 64 keys of the tile (most tiles of a long range): no mask, no key
    // outside [lo, end), none past the row's position (causal) or before its window.
    let pos = p.kv_len - p.q_len + i;
    let all = i < p.q_len && p.has_mask == 0u && lo <= jb && jb + BC <= end
        && (p.causal == 0u || jb + BC - 1u <= pos) && (p.window == 0u || jb + p.window > pos);
    let x0 = scores4(sb, r, h, 0u, b, i, jb, lo, end, all);
    let x1 = scores4(sb, r, h, 1u, b, i, jb, lo, end, all);
    let x2 = scores4(sb, r, h, 2u, b, i, jb, lo, end, all);
    let x3 = scores4(sb, r, h, 3u, b, i, jb, lo, end, all);
    let x4 = scores4(sb, r, h, 4u, b, i, jb, lo, end, all);
    let x5 = scores4(sb, r, h, 5u, b, i, jb, lo, end, all);
    let x6 = scores4(sb, r, h, 6u, b, i, jb, lo, end, all);
    let x7 = scores4(sb, r, h, 7u, b, i, jb, lo, end, all);
    var mx = max(max(max4(max(x0, x1)), max4(max(x2, x3))),
                 max(max4(max(x4, x5)), max4(max(x6, x7))));
    mx = max(mx, subgroupShuffleXor(mx, 16u));
    mx = max(mx, m);
    var sum4 = probs4(pb, r, h, 0u, x0, mx) + probs4(pb, r, h, 1u, x1, mx);
    sum4 += probs4(pb, r, h, 2u, x2, mx) + probs4(pb, r, h, 3u, x3, mx);
    sum4 += probs4(pb, r, h, 4u, x4, mx) + probs4(pb, r, h, 5u, x5, mx);
    sum4 += probs4(pb, r, h, 6u, x6, mx) + probs4(pb, r, h, 7u, x7, mx);
    return vec3<f32>(mx, exp(m - mx), dot(sum4, vec4<f32>(1.0)));
}

// The column of a lane's c-th output (c < HD / 2) in row r, half h: `col` for head_dim 64; for 32,
// half h's 16 columns rotated by the row.
fn ocol(r: u32, h: u32, c: u32) -> u32 {
    if (HD == 64u) {
        return col(r, h, c);
    }
    return h * 16u + (c + r) % 16u;
}

// Four of this lane's outputs (c = 4g..4g+4) from the scratch.
fn read4(base: u32, r: u32, h: u32, g: u32) -> vec4<f32> {
    let at = base + r * SS;
    return vec4<f32>(s_s[at + ocol(r, h, g * 4u)], s_s[at + ocol(r, h, g * 4u + 1u)],
                     s_s[at + ocol(r, h, g * 4u + 2u)], s_s[at + ocol(r, h, g * 4u + 3u)]);
}

// The subgroup's P tile's 16 keys from j0 as an A fragment (rows × keys).
fn p_frag(base: u32, j0: u32) -> coop_mat16x16<f16, A> {
    return coopLoadT<coop_mat16x16<f16, A>>(&p_s[base + j0], PS);
}

// Four outputs of this lane (c = 4g..4g+4) of the row whose first element is `base`.
fn store4(base: u32, r: u32, h: u32, g: u32, val: vec4<f32>) {
    for (var e = 0u; e < 4u; e++) {
        out[base + ocol(r, h, g * 4u + e)] = T(val[e]);
    }
}
