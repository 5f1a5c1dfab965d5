//! The element-wise steps of the own forward pass: RMS norm, SiLU and GELU, bias rows, rotary
//! embeddings (their cos/sin tables and the rotation of one head), and a vectorizable `exp`
//! for the softmax. Small and called per row or head, so marked `#[inline]`.

use super::config::Config;

#[inline]
pub(super) fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

#[inline]
pub(super) fn add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

#[inline]
pub(super) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(w) {
        *o = v * r * w;
    }
}

#[inline]
pub(super) fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    for (v, w) in x.iter_mut().zip(w) {
        *v = *v * r * w;
    }
}

/// cos and sin (times `scale`) of every rotary pair with inverse frequencies `inv_freq` at
/// positions `pos..pos + m`, into `cos` and `sin`.
#[inline]
pub(super) fn rotary(
    inv_freq: &[f32],
    scale: f32,
    pos: usize,
    m: usize,
    cos: &mut Vec<f32>,
    sin: &mut Vec<f32>,
) {
    cos.clear();
    sin.clear();
    for p in pos..pos + m {
        for f in inv_freq {
            let a = p as f32 * f;
            cos.push(a.cos() * scale);
            sin.push(a.sin() * scale);
        }
    }
}

/// GELU, tanh approximation (as ggml computes it).
#[inline]
pub(super) fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

#[inline]
pub(super) fn rope(cfg: &Config, head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = cfg.rope_dim / 2;
    for i in 0..half {
        let (a, b) = if cfg.neox {
            (i, i + half)
        } else {
            (2 * i, 2 * i + 1)
        };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * cos[i] - x1 * sin[i];
        head[b] = x0 * sin[i] + x1 * cos[i];
    }
}

/// `e^x` for every value (all ≤ 0 here, after the max is subtracted), written so the compiler
/// vectorizes it: `x = n·ln 2 + y` with `n` an integer and `|y| ≤ ln 2 / 2`, `2^n` built in the
/// exponent bits and `e^y` from its Taylor series to degree 7 (relative error below 1e-6).
#[inline]
pub(super) fn exp_in_place(xs: &mut [f32]) {
    for out in xs.iter_mut() {
        let x = out.max(-87.0);
        let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
        // x - n·ln 2 with ln 2 split in two (Cody-Waite), so large |x| keeps its precision.
        let y = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
        let p = 1.0
            + y * (1.0
                + y * (0.5
                    + y * (1.0 / 6.0
                        + y * (1.0 / 24.0
                            + y * (1.0 / 120.0 + y * (1.0 / 720.0 + y * (1.0 / 5040.0)))))));
        *out = p * f32::from_bits(((n as i32 + 127) << 23) as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_1e6_of_libm() {
        let xs: Vec<f32> = (0..=100_000)
            .map(|i| -90.0 * i as f32 / 100_000.0)
            .collect();
        let mut ys = xs.clone();
        exp_in_place(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            let e = x.max(-87.0).exp();
            assert!((y - e).abs() <= 1e-6 * e, "exp({x}) = {y}, libm {e}");
        }
    }
}
