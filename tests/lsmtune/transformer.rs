//! lsmtune's own forward pass (`llm::transformer`, with the repacked kernels of every type) against
//! candle-transformers' models on the same GGUF files: every test architecture, quantized and
//! not, tied and separate output layers; logits compared after a batched prefill, after single
//! decode steps, and after the cache is cut back and refilled.

use std::path::Path;

use crate::common::testmodel::{Arch, Quant, Shape, write_gguf};
use candle_core::quantized::{GgmlDType, gguf_file};
use candle_core::{Device, Tensor};
use candle_transformers::models::{
    quantized_llama, quantized_phi3, quantized_qwen2, quantized_qwen3,
};
use lsmtune::llm::transformer::Transformer;

enum Reference {
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Llama(quantized_llama::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
}

impl Reference {
    fn load(arch: Arch, path: &Path) -> Reference {
        let mut f = std::fs::File::open(path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let d = &Device::Cpu;
        match arch {
            Arch::Qwen2 => {
                Reference::Qwen2(quantized_qwen2::ModelWeights::from_gguf(ct, &mut f, d).unwrap())
            }
            Arch::Qwen3 => {
                Reference::Qwen3(quantized_qwen3::ModelWeights::from_gguf(ct, &mut f, d).unwrap())
            }
            Arch::Llama => {
                Reference::Llama(quantized_llama::ModelWeights::from_gguf(ct, &mut f, d).unwrap())
            }
            Arch::Phi3 => Reference::Phi3(
                quantized_phi3::ModelWeights::from_gguf(false, ct, &mut f, d).unwrap(),
            ),
            Arch::Mistral | Arch::Gemma3 => unreachable!("no test model of {arch}"),
        }
    }

    fn forward(&mut self, tokens: &[u32], pos: usize) -> Vec<f32> {
        let x = Tensor::new(tokens, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let y = match self {
            Reference::Qwen2(m) => m.forward(&x, pos),
            Reference::Qwen3(m) => m.forward(&x, pos),
            Reference::Llama(m) => m.forward(&x, pos),
            Reference::Phi3(m) => m.forward(&x, pos),
        };
        y.unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }
}

fn own(arch: Arch, path: &Path) -> Transformer {
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    Transformer::load(arch, &ct, &mut f).unwrap()
}

/// Largest difference relative to the reference's largest logit.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}

fn compare(arch: Arch, shape: Shape, dtype: impl Into<Quant>) {
    let dtype: Quant = dtype.into();
    let dir = tempfile::tempdir().unwrap();
    let path = write_gguf(&dir.path().join("m"), arch, shape, 5, dtype).unwrap();
    // The same random weights unquantized: the exact answer both runtimes approximate.
    let exact_path = write_gguf(&dir.path().join("f32"), arch, shape, 5, GgmlDType::F32).unwrap();
    let mut reference = Reference::load(arch, &path);
    let mut exact = Reference::load(arch, &exact_path);
    let mut ours = own(arch, &path);
    let label = format!("{} {dtype:?} tied={}", arch.name(), shape.tie_embeddings);
    let prompt: Vec<u32> = (0..23u32).map(|i| (i * 37 + 11) % 900 + 20).collect();
    let mut steps: Vec<(Vec<u32>, usize)> = vec![(prompt.clone(), 0)];
    for step in 0..4u32 {
        steps.push((vec![100 + step * 7], prompt.len() + step as usize));
    }
    let (mut err_ours, mut err_candle) = (0f32, 0f32);
    for (i, (tokens, pos)) in steps.iter().enumerate() {
        let a = ours.forward(tokens, *pos).unwrap();
        let b = reference.forward(tokens, *pos);
        let e = exact.forward(tokens, *pos);
        let float = [GgmlDType::F32, GgmlDType::F16, GgmlDType::BF16]
            .into_iter()
            .any(|d| dtype == Quant::Uniform(d));
        if float {
            // Both compute exact f32 products of the same weights: equal up to summation order.
            assert!(
                rel_diff(&a, &b) < 1e-3,
                "{label} step {i}: {}",
                rel_diff(&a, &b)
            );
            assert_eq!(argmax(&a), argmax(&b), "{label} step {i}: greedy choice");
        } else {
            // The two runtimes quantize the activations differently (32-value blocks here,
            // 256-value blocks in candle's K-quant kernels): through 8 random layers that alone
            // moves the logits by up to ~15%; the check that matters is the distance from the
            // exact logits below.
            assert!(
                rel_diff(&a, &b) < 0.2,
                "{label} step {i}: {}",
                rel_diff(&a, &b)
            );
        }
        err_ours += rel_diff(&a, &e);
        err_candle += rel_diff(&b, &e);
    }
    eprintln!("{label}: error vs exact {err_ours} (own) vs {err_candle} (candle)");
    // Quantized: no farther from the exact logits than candle's kernels are.
    assert!(
        err_ours <= 1.25 * err_candle + 1e-3,
        "{label}: error vs exact {err_ours} (own) vs {err_candle} (candle)"
    );
    let pos = prompt.len() + 4;
    assert_eq!(ours.cached(), pos);
    // Cut the cache back to the prompt and decode from there again: same logits as the first
    // time (the reference from scratch).
    let t = [100u32];
    let again = ours.forward(&t, prompt.len()).unwrap();
    let mut fresh = own(arch, &path);
    fresh.forward(&prompt, 0).unwrap();
    let first = fresh.forward(&t, prompt.len()).unwrap();
    assert!(rel_diff(&again, &first) < 1e-5, "{label} after truncation");
    // A batched continuation equals single steps.
    let more = [300u32, 301, 302];
    let batched = ours.forward(&more, prompt.len() + 1).unwrap();
    for (i, &t) in more.iter().enumerate() {
        let single = fresh.forward(&[t], prompt.len() + 1 + i).unwrap();
        if i == more.len() - 1 {
            assert!(
                rel_diff(&batched, &single) < 1e-4,
                "{label} batched vs single"
            );
        }
    }
}

#[test]
fn own_forward_matches_candle_for_every_architecture_and_weight_type() {
    for arch in [Arch::Qwen2, Arch::Llama, Arch::Qwen3, Arch::Phi3] {
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
            GgmlDType::F16,
            GgmlDType::BF16,
            GgmlDType::F32,
        ] {
            compare(arch, Shape::TINY, dtype);
        }
    }
}

#[test]
fn tied_output_layers_and_k_quant_mixes_match_candle() {
    let tied = Shape {
        tie_embeddings: true,
        hidden: 256,
        intermediate: 512,
        layers: 8,
        ..Shape::TINY
    };
    // The K-quants at hidden 256 run on the own K-quant kernels; llama.cpp's Q4_K_M recipe
    // mixes Q4_K and Q6_K (and Q5_0/Q8_0 where rows do not fit 256).
    for q in [
        Quant::Uniform(GgmlDType::F32),
        Quant::Uniform(GgmlDType::Q8_0),
        Quant::Uniform(GgmlDType::Q2K),
        Quant::Uniform(GgmlDType::Q3K),
        Quant::Uniform(GgmlDType::Q4K),
        Quant::Uniform(GgmlDType::Q5K),
        Quant::Uniform(GgmlDType::Q6K),
        Quant::Q4KM,
    ] {
        compare(Arch::Qwen2, tied, q);
        compare(
            Arch::Qwen2,
            Shape {
                tie_embeddings: false,
                ..tied
            },
            q,
        );
    }
    compare(Arch::Llama, Shape::TINY, Quant::Q4KM);
}

#[test]
fn position_past_the_cache_and_out_of_vocabulary_tokens_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_gguf(
        &dir.path().join("m"),
        Arch::Qwen2,
        Shape::TINY,
        5,
        GgmlDType::Q8_0,
    )
    .unwrap();
    let mut m = own(Arch::Qwen2, &path);
    assert!(m.forward(&[1], 3).is_err());
    assert!(m.forward(&[], 0).is_err());
    let err = m.forward(&[1_000_000], 0).unwrap_err().to_string();
    assert!(err.contains("vocabulary"), "{err}");
}

#[test]
fn long_prompts_span_attention_blocks_and_cache_growth() {
    // 300 positions: more than one 128-row attention block and more than the initial
    // 256-position cache; F32 weights so candle's answer is exact up to summation order.
    let dir = tempfile::tempdir().unwrap();
    let path = write_gguf(
        &dir.path().join("m"),
        Arch::Llama,
        Shape::TINY,
        9,
        GgmlDType::F32,
    )
    .unwrap();
    let prompt: Vec<u32> = (0..300u32).map(|i| (i * 53 + 7) % 900 + 20).collect();
    let mut reference = Reference::load(Arch::Llama, &path);
    let want = reference.forward(&prompt, 0);
    let mut whole = own(Arch::Llama, &path);
    let got = whole.forward(&prompt, 0).unwrap();
    assert!(
        rel_diff(&got, &want) < 1e-3,
        "one batch: {}",
        rel_diff(&got, &want)
    );
    // The same prompt in pieces: a batch, a smaller batch (per-row path), then single tokens.
    let mut pieces = own(Arch::Llama, &path);
    pieces.forward(&prompt[..200], 0).unwrap();
    pieces.forward(&prompt[200..290], 200).unwrap();
    pieces.forward(&prompt[290..295], 290).unwrap();
    let mut last = Vec::new();
    for (i, t) in prompt[295..].iter().enumerate() {
        last = pieces.forward(&[*t], 295 + i).unwrap();
    }
    assert!(
        rel_diff(&last, &got) < 1e-4,
        "in pieces: {}",
        rel_diff(&last, &got)
    );
}

/// Copy a GGUF, adding tensors and metadata.
fn with_extras(
    src: &Path,
    dst: &Path,
    tensors: Vec<(&str, candle_core::quantized::QTensor)>,
    metadata: Vec<(&str, gguf_file::Value)>,
) {
    let mut f = std::fs::File::open(src).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut all: Vec<(String, candle_core::quantized::QTensor)> = ct
        .tensor_infos
        .keys()
        .map(|n| (n.clone(), ct.tensor(&mut f, n, &Device::Cpu).unwrap()))
        .collect();
    all.extend(tensors.into_iter().map(|(n, t)| (n.to_string(), t)));
    let mut md: Vec<(String, gguf_file::Value)> = ct.metadata.into_iter().collect();
    md.extend(metadata.into_iter().map(|(k, v)| (k.to_string(), v)));
    let mut out = std::fs::File::create(dst).unwrap();
    let md_refs: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &candle_core::quantized::QTensor)> =
        all.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut out, &md_refs, &t_refs).unwrap();
}

#[test]
fn rope_frequency_factors_and_attention_factor_are_applied() {
    use candle_core::quantized::QTensor;
    let dir = tempfile::tempdir().unwrap();
    let path = write_gguf(
        &dir.path().join("m"),
        Arch::Phi3,
        Shape::TINY,
        4,
        GgmlDType::F32,
    )
    .unwrap();
    let half = Shape::TINY.hidden / Shape::TINY.heads / 2;
    let factors = |v: f32| {
        QTensor::quantize(
            &Tensor::full(v, half, &Device::Cpu).unwrap(),
            GgmlDType::F32,
        )
        .unwrap()
    };
    let prompt: Vec<u32> = (0..20u32).map(|i| i * 13 + 40).collect();
    let plain = own(Arch::Phi3, &path).forward(&prompt, 0).unwrap();
    // Factors of 1 and an attention factor of 1 change nothing.
    let ones = dir.path().join("ones.gguf");
    with_extras(
        &path,
        &ones,
        vec![("rope_factors_short.weight", factors(1.0))],
        vec![("phi3.rope.scaling.attn_factor", gguf_file::Value::F32(1.0))],
    );
    let same = own(Arch::Phi3, &ones).forward(&prompt, 0).unwrap();
    assert!(
        rel_diff(&same, &plain) < 1e-6,
        "{}",
        rel_diff(&same, &plain)
    );
    // Other values are read and change the result.
    for (f, a) in [(4.0, 1.0), (1.0, 1.19)] {
        let p = dir.path().join(format!("x{f}-{a}.gguf"));
        with_extras(
            &path,
            &p,
            vec![("rope_factors_short.weight", factors(f))],
            vec![("phi3.rope.scaling.attn_factor", gguf_file::Value::F32(a))],
        );
        let other = own(Arch::Phi3, &p).forward(&prompt, 0).unwrap();
        assert!(rel_diff(&other, &plain) > 1e-3, "factor {f}, attn {a}");
    }
}
