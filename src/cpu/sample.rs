//! Next-token choice on the CPU, the rule `shaders/sample.wgsl` follows on the GPU: masked tokens
//! count as the lowest value, transformers' repetition penalty, argmax (first index of the maximum)
//! when greedy, else temperature, top-k and top-p thresholds found by the same bisections and a
//! draw from the same PCG hash of (seed, step), walked in index order. The same seed and step give
//! the same token as the GPU up to float rounding at a threshold.

use crate::kernels::sample::Sampling;

const LOWEST: f32 = f32::MIN;

/// What the choice reads besides the logits.
#[derive(Default)]
pub struct Choose<'a> {
    /// The step number (with the seed, fixes the draw).
    pub step: u32,
    /// transformers' `repetition_penalty` over the tokens set in this bitset (`ceil(vocab / 32)`
    /// words); the chosen token is set in it.
    pub penalty: Option<(&'a mut [u32], f32)>,
    /// Only the tokens set in this bitset may be chosen (a grammar's mask).
    pub allowed: Option<&'a [u32]>,
}

fn bit(bits: &[u32], i: usize) -> bool {
    bits.get(i / 32).is_some_and(|w| w & (1 << (i % 32)) != 0)
}

/// The GPU sampler's hash (PCG's output function).
fn pcg(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The next token from one row of logits.
pub fn choose(logits: &[f32], s: &Sampling, c: Choose<'_>) -> u32 {
    let Choose {
        step,
        penalty,
        allowed,
    } = c;
    let values: Vec<f32> = logits
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if allowed.is_some_and(|a| !bit(a, i)) {
                return LOWEST;
            }
            match &penalty {
                Some((seen, p)) if bit(seen, i) => {
                    if v < 0.0 {
                        v * p
                    } else {
                        v / p
                    }
                }
                _ => v,
            }
        })
        .collect();
    let id = pick(&values, s, step);
    if let Some((seen, _)) = penalty
        && let Some(w) = seen.get_mut(id as usize / 32)
    {
        *w |= 1 << (id % 32);
    }
    id
}

fn pick(values: &[f32], s: &Sampling, step: u32) -> u32 {
    let (mut best, mut max) = (0usize, LOWEST);
    for (i, &v) in values.iter().enumerate() {
        if v > max {
            (best, max) = (i, v);
        }
    }
    if s.temperature <= 0.0 {
        return best as u32;
    }
    let z: Vec<f32> = values.iter().map(|&v| (v - max) / s.temperature).collect();
    // Lowest scaled logit still worth keeping: exp(-88) underflows f32.
    let mut keep = -88.0f32;
    let vocab = values.len() as u32;
    if s.top_k > 0 && s.top_k < vocab {
        // The largest threshold with at least top_k values at or above it.
        let (mut a, mut b) = (keep, 0.0f32);
        for _ in 0..32 {
            let mid = 0.5 * (a + b);
            let count = z.iter().filter(|&&x| x >= mid).count();
            if count as f32 >= s.top_k as f32 {
                a = mid;
            } else {
                b = mid;
            }
        }
        keep = a;
    }
    let mass = |t: f32| z.iter().filter(|&&x| x >= t).map(|&x| x.exp()).sum::<f32>();
    let total = mass(keep);
    if s.top_p < 1.0 {
        // The largest threshold whose kept mass is still at least top_p of the total.
        let (mut a, mut b) = (keep, 0.0f32);
        for _ in 0..32 {
            let mid = 0.5 * (a + b);
            if mass(mid) >= s.top_p * total {
                a = mid;
            } else {
                b = mid;
            }
        }
        keep = keep.max(a);
    }
    let kept_total = mass(keep);
    let h = pcg(s.seed ^ pcg(step.wrapping_mul(0x9e37_79b9)));
    let u = (h >> 8) as f32 / 16_777_216.0 * kept_total;
    let mut acc = 0.0f32;
    let mut last = None;
    for (i, &x) in z.iter().enumerate() {
        if x >= keep {
            acc += x.exp();
            last = Some(i);
            if u < acc {
                return i as u32;
            }
        }
    }
    // Rounding can leave u just past the last kept value: take that one.
    last.unwrap_or(best) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f32, top_k: u32, top_p: f32, seed: u32) -> Sampling {
        Sampling {
            temperature,
            top_k,
            top_p,
            seed,
        }
    }

    #[test]
    fn greedy_masks_and_penalty() {
        let logits = [1.0, 5.0, 5.0, -3.0, 4.0];
        let greedy = Sampling::default();
        // The first index of the maximum.
        assert_eq!(choose(&logits, &greedy, Choose::default()), 1);
        // Masked out: token 1 and 2 not allowed.
        let allowed = [0b11001u32];
        let c = Choose {
            allowed: Some(&allowed),
            ..Default::default()
        };
        assert_eq!(choose(&logits, &greedy, c), 4);
        // Penalty 2 on tokens 1 and 2 (5 → 2.5): token 4 wins, and is marked seen.
        let mut seen = [0b110u32];
        let c = Choose {
            penalty: Some((&mut seen, 2.0)),
            ..Default::default()
        };
        assert_eq!(choose(&logits, &greedy, c), 4);
        assert_eq!(seen[0], 0b10110);
        // A negative logit is multiplied: -3 · 2 = -6 stays below everything.
        let neg = [-3.0, -5.0];
        let mut seen = [0b1u32];
        let c = Choose {
            penalty: Some((&mut seen, 2.0)),
            ..Default::default()
        };
        assert_eq!(choose(&neg, &greedy, c), 1);
    }

    /// Draws over many steps against the filtered softmax (top-k 3 of 6, then top-p): frequencies
    /// within 4 standard errors; tokens outside the filter never drawn.
    #[test]
    fn draws_follow_the_filtered_softmax() {
        let logits = [2.0f32, 1.0, 0.5, 0.0, -1.0, 3.0];
        for (s, keep) in [
            (sampling(1.0, 3, 1.0, 7), vec![5usize, 0, 1]),
            (sampling(0.7, 0, 0.8, 9), vec![5, 0]),
        ] {
            let weights: Vec<f64> = (0..6)
                .map(|i| {
                    if keep.contains(&i) {
                        (f64::from(logits[i]) / f64::from(s.temperature)).exp()
                    } else {
                        0.0
                    }
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let n = 20_000;
            let mut counts = [0usize; 6];
            for step in 0..n {
                let c = Choose {
                    step,
                    ..Default::default()
                };
                counts[choose(&logits, &s, c) as usize] += 1;
            }
            for i in 0..6 {
                let p = weights[i] / total;
                let f = counts[i] as f64 / f64::from(n);
                let se = (p * (1.0 - p) / f64::from(n)).sqrt();
                assert!(
                    (f - p).abs() <= 4.0 * se + 1e-9,
                    "{s:?} token {i}: {f} vs {p}"
                );
            }
        }
    }
}
