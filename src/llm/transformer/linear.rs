//! The weight matrices of the own forward pass: [`Linear`] multiplies on the repacked kernels
//! of [`crate::llm::kernels`] when the type and the CPU allow it, else through candle's
//! `QMatMul`; the token [`Embedding`] shares its packed table with a tied output layer. Also the
//! loaders of GGUF tensors as matrices and vectors.

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{Device, Module, Tensor};

use crate::llm::kernels::{self, Kind, PackedMatrix, QuantRows};

/// A weight matrix `n × k` and the way it is multiplied.
pub(super) enum Linear {
    /// Repacked for the own kernels.
    Packed(PackedMatrix),
    /// Anything else, through candle.
    Candle { mm: QMatMul, n: usize, k: usize },
}

impl Linear {
    pub(super) fn from_qtensor(q: QTensor, name: &str) -> Result<Linear> {
        let (n, k) = q
            .shape()
            .dims2()
            .map_err(|e| anyhow!("{name} is not a matrix: {e}"))?;
        if let Some(kind) = Kind::of(q.dtype())
            && kernels::simd_available()
            && k.is_multiple_of(kind.granule())
        {
            let raw = q.data()?;
            return Ok(Linear::Packed(
                PackedMatrix::pack(kind, &raw, n, k).with_context(|| name.to_string())?,
            ));
        }
        Ok(Linear::Candle {
            mm: QMatMul::from_qtensor(q)?,
            n,
            k,
        })
    }

    pub(super) fn rows(&self) -> usize {
        match self {
            Linear::Packed(p) => p.rows(),
            Linear::Candle { n, .. } => *n,
        }
    }

    pub(super) fn cols(&self) -> usize {
        match self {
            Linear::Packed(p) => p.cols(),
            Linear::Candle { k, .. } => *k,
        }
    }

    /// `out = x · Wᵀ` for `m` rows of `x`; `xq` is `x` already quantized.
    pub(super) fn forward(
        &self,
        x: &[f32],
        xq: &QuantRows,
        m: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        out.resize(m * self.rows(), 0.0);
        match self {
            Linear::Packed(p) => kernels::matmul(p, x, xq, out),
            Linear::Candle { mm, k, .. } => {
                let t = Tensor::from_slice(x, (m, *k), &Device::Cpu)?;
                let y = mm.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
                out.copy_from_slice(&y);
            }
        }
        Ok(())
    }
}

/// The token embedding table.
pub(super) enum Embedding {
    /// Shares the packed matrix with the output layer, or is packed on its own.
    Packed(PackedMatrix),
    Dense {
        table: Vec<f32>,
        width: usize,
    },
}

impl Embedding {
    pub(super) fn row(&self, token: usize, out: &mut [f32]) -> Result<()> {
        match self {
            Embedding::Packed(p) => {
                if token >= p.rows() {
                    bail!("token {token} is outside the {}-token vocabulary", p.rows());
                }
                p.dequantize_row(token, out);
            }
            Embedding::Dense { table, width } => {
                let row = table
                    .get(token * width..(token + 1) * width)
                    .ok_or_else(|| anyhow!("token {token} is outside the vocabulary"))?;
                out.copy_from_slice(row);
            }
        }
        Ok(())
    }
}

/// A vector (norm weights, biases, rotary factors) dequantized to f32.
pub(super) fn vector(
    ct: &gguf_file::Content,
    file: &mut std::fs::File,
    name: &str,
) -> Result<Vec<f32>> {
    Ok(ct
        .tensor(file, name, &Device::Cpu)
        .map_err(|e| anyhow!("{name}: {e}"))?
        .dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// A weight matrix.
pub(super) fn linear(
    ct: &gguf_file::Content,
    file: &mut std::fs::File,
    name: &str,
) -> Result<Linear> {
    let q = ct
        .tensor(file, name, &Device::Cpu)
        .map_err(|e| anyhow!("{name}: {e}"))?;
    Linear::from_qtensor(q, name)
}

/// The token embedding table and the output layer (`None`: the packed table itself, tied).
pub(super) fn embedding_and_output(
    ct: &gguf_file::Content,
    file: &mut std::fs::File,
    hidden: usize,
) -> Result<(Embedding, Option<Linear>)> {
    let embd = ct
        .tensor(file, "token_embd.weight", &Device::Cpu)
        .map_err(|e| anyhow!("token_embd.weight: {e}"))?;
    let tied = !ct.tensor_infos.contains_key("output.weight");
    let packable = Kind::of(embd.dtype()).is_some_and(|k| hidden.is_multiple_of(k.granule()))
        && kernels::simd_available();
    Ok(if packable {
        let Linear::Packed(p) = Linear::from_qtensor(embd, "token_embd.weight")? else {
            unreachable!("a packable table is packed")
        };
        let output = if tied {
            None
        } else {
            Some(linear(ct, file, "output.weight")?)
        };
        (Embedding::Packed(p), output)
    } else {
        let table = embd
            .dequantize(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let output = if tied {
            Linear::from_qtensor(embd, "token_embd.weight")?
        } else {
            linear(ct, file, "output.weight")?
        };
        (
            Embedding::Dense {
                table,
                width: hidden,
            },
            Some(output),
        )
    })
}
