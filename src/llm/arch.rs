//! The model architectures lsmtune runs, as one type. A GGUF's `general.architecture` or a
//! safetensors `config.json`'s `model_type` is parsed into an [`Arch`] once, where the file is
//! read; an architecture outside this list is an error naming it (never read as Llama), and
//! every per-architecture choice (rotary pairing, chat template, which candle model loads it,
//! which test models can be generated) is a `match` the compiler checks for completeness.

use std::fmt;
use std::str::FromStr;

/// A transformer architecture lsmtune's runtimes run (llama.cpp's `llm_arch` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// Qwen2 and Qwen2.5: q/k/v biases, NEOX rope, ChatML.
    Qwen2,
    /// Qwen3: no biases, per-head RMS norms of q and k, ChatML.
    Qwen3,
    /// Llama 2/3 and SmolLM: no biases, interleaved rope, Llama 3 chat headers.
    Llama,
    /// Mistral: Llama-shaped.
    Mistral,
    /// Phi-3: fused qkv and gate/up projections, Phi-3 chat tags.
    Phi3,
    /// Gemma 3: GELU, scaled embeddings, pre- and post-norms, local and global attention.
    Gemma3,
}

impl Arch {
    /// Every architecture, in the order errors list them.
    pub const ALL: [Arch; 6] = [
        Arch::Qwen2,
        Arch::Qwen3,
        Arch::Llama,
        Arch::Mistral,
        Arch::Phi3,
        Arch::Gemma3,
    ];

    /// The name GGUF metadata and `config.json` use.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Llama => "llama",
            Arch::Mistral => "mistral",
            Arch::Phi3 => "phi3",
            Arch::Gemma3 => "gemma3",
        }
    }

    /// Rotary embedding on NEOX pairs (dimension i with i + d/2) rather than interleaved ones.
    pub fn rope_neox(self) -> bool {
        match self {
            Arch::Qwen2 | Arch::Qwen3 | Arch::Phi3 | Arch::Gemma3 => true,
            Arch::Llama | Arch::Mistral => false,
        }
    }

    /// Whether candle-transformers loads a safetensors checkpoint of it (GGUF runs them all).
    pub fn safetensors_supported(self) -> bool {
        match self {
            Arch::Qwen2 | Arch::Llama | Arch::Mistral => true,
            Arch::Qwen3 | Arch::Phi3 | Arch::Gemma3 => false,
        }
    }

    /// The names of [`Arch::ALL`], comma-separated (for errors).
    pub fn list() -> String {
        Arch::ALL.map(Arch::name).join(", ")
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                format!(
                    "architecture `{}` is not supported (supported: {})",
                    crate::input::clip(s),
                    Arch::list()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::Arch;

    #[test]
    fn names_round_trip_and_an_unknown_one_is_an_error_not_llama() {
        for a in Arch::ALL {
            assert_eq!(a.name().parse::<Arch>(), Ok(a));
        }
        let e = "falcon".parse::<Arch>().unwrap_err();
        assert!(
            e.contains("`falcon` is not supported") && e.contains("gemma3"),
            "{e}"
        );
        assert!("".parse::<Arch>().is_err());
    }
}
