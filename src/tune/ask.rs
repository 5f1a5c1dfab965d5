//! One proposal from a language model: the conversation goes in, the reply comes out under the
//! proposal grammar when one is given (local models), and is parsed into raw entries for the
//! calibrator. Records what the grammar cost (mask time per token) and saved (forced tokens).

use anyhow::Result;
use serde::Serialize;

use crate::bench::stats::quantile;
use crate::grammar::Grammar;
use crate::llm::{Completion, GenParams, Llm, Message};
use crate::options::proposal::{self, RawProposal};

/// What constrained decoding cost for one reply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MaskStats {
    /// Masks computed (one per sampled token).
    pub masks: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Tokens the grammar forced, taken without sampling.
    pub forced_tokens: usize,
}

/// A model's reply and what it says.
#[derive(Debug, Clone)]
pub struct ModelProposal {
    pub completion: Completion,
    pub raw: RawProposal,
    pub mask: Option<MaskStats>,
}

/// Ask `llm` for a proposal: under `grammar` when given, else free text.
pub fn ask(
    llm: &mut dyn Llm,
    grammar: Option<&Grammar>,
    messages: &[Message],
    params: &GenParams,
    on_text: &mut dyn FnMut(&str),
) -> Result<ModelProposal> {
    let (completion, mask) = match grammar {
        Some(g) => {
            let mut c = g.constraint();
            let completion = llm.chat(messages, Some(&mut c), params, on_text)?;
            let stats = MaskStats {
                masks: c.mask_seconds.len(),
                p50_us: quantile(&c.mask_seconds, 0.5) * 1e6,
                p99_us: quantile(&c.mask_seconds, 0.99) * 1e6,
                forced_tokens: c.forced,
            };
            (completion, Some(stats))
        }
        None => (llm.chat(messages, None, params, on_text)?, None),
    };
    let raw = proposal::parse(&completion.text);
    Ok(ModelProposal {
        completion,
        raw,
        mask,
    })
}
