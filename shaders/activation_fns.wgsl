// The activations shared by the element-wise kernel and the fused epilogues (matmul, conv), selected by
// the override ACT (Activation::code): 0 none, 1 GELU (erf form), 2 SiLU/Swish, 3 ReLU, 4 ReLU6,
// 5 sigmoid. WGSL has no erf: Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7, so GELU is within
// 1.5e-7·|x|/2.

override ACT: u32 = 0u;

fn act_erf(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(v) * (1.0 - poly * exp(-a * a));
}

fn act(v: f32) -> f32 {
    switch ACT {
        case 1u: { return 0.5 * v * (1.0 + act_erf(v * 0.70710678118654752)); }
        case 2u: { return v / (1.0 + exp(-v)); }
        case 3u: { return max(v, 0.0); }
        case 4u: { return clamp(v, 0.0, 6.0); }
        case 5u: { return 1.0 / (1.0 + exp(-v)); }
        default: { return v; }
    }
}

