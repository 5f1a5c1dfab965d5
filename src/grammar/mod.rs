//! Grammar-constrained decoding of proposals. [`schema`] generates the proposal's JSON Schema
//! from the option catalog; this module compiles it with llguidance against the model's own
//! tokenizer and hands the sampler a [`TokenConstraint`]: at every step the set of tokens that
//! keep the output a valid prefix of some schema-valid JSON, end-of-turn only once the JSON is
//! complete, and the tokens the grammar forces taken without sampling.
//!
//! The output is compact JSON with `", "` and `": "` separators and no other whitespace, so a
//! model cannot pad its answer with blanks.

pub mod schema;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value as J;
use tokenizers::Tokenizer;
use toktrie::{InferenceCapabilities, TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::llm::TokenConstraint;

/// The model's tokenizer as llguidance sees it: the bytes of every token, and tokenization of
/// forced text with the real tokenizer.
struct HfTokEnv {
    trie: TokTrie,
    tokenizer: Tokenizer,
}

impl TokenizerEnv for HfTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default()
        })
    }
}

/// GPT-2's byte-level alphabet: printable bytes stand for themselves, the other bytes for
/// code points from U+0100 on, in byte order. Returns char -> byte.
fn byte_level_alphabet() -> HashMap<char, u8> {
    let mut map = HashMap::with_capacity(256);
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        let c = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\u{FFFD}');
            next += 1;
            c
        };
        map.insert(c, b);
    }
    map
}

/// How the vocabulary spells bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spelling {
    /// GPT-2 style byte-level BPE (Qwen, Llama 3).
    ByteLevel,
    /// SentencePiece style: `▁` for a space, `<0xNN>` for raw bytes (Llama 2, Mistral, Phi-3).
    Metaspace,
}

fn spelling(tokenizer: &Tokenizer) -> Spelling {
    let decoder = serde_json::to_string(&tokenizer.get_decoder()).unwrap_or_default();
    if decoder.contains("\"ByteLevel\"") {
        Spelling::ByteLevel
    } else {
        Spelling::Metaspace
    }
}

/// The byte string of every token id below `n_vocab`. Special tokens, and ids the tokenizer
/// does not have (models often pad their vocabulary), get toktrie's special marker so the
/// grammar never produces them as text.
fn token_bytes(tokenizer: &Tokenizer, n_vocab: usize) -> Vec<Vec<u8>> {
    let alphabet = byte_level_alphabet();
    let how = spelling(tokenizer);
    let special: HashMap<u32, String> = tokenizer
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special || (t.content.starts_with('<') && t.content.ends_with('>')))
        .map(|(id, t)| (id, t.content))
        .collect();
    let marked = |name: &str| {
        let mut v = vec![TokTrie::SPECIAL_TOKEN_MARKER];
        v.extend_from_slice(name.as_bytes());
        v
    };
    (0..n_vocab as u32)
        .map(|id| {
            if let Some(name) = special.get(&id) {
                return marked(name);
            }
            let Some(tok) = tokenizer.id_to_token(id) else {
                return marked(&format!("<[{id}]>"));
            };
            match how {
                Spelling::ByteLevel => {
                    let bytes: Option<Vec<u8>> =
                        tok.chars().map(|c| alphabet.get(&c).copied()).collect();
                    // Added (non-special) tokens are plain text, not byte-level spelled.
                    bytes.unwrap_or_else(|| tok.as_bytes().to_vec())
                }
                Spelling::Metaspace => {
                    if tok.len() == 6
                        && tok.starts_with("<0x")
                        && tok.ends_with('>')
                        && let Ok(b) = u8::from_str_radix(&tok[3..5], 16)
                    {
                        vec![b]
                    } else {
                        tok.replace('\u{2581}', " ").into_bytes()
                    }
                }
            }
        })
        .collect()
}

/// Size of the id space: one past the largest id the tokenizer knows.
fn id_space(tokenizer: &Tokenizer) -> usize {
    let vocab = tokenizer.get_vocab(true);
    vocab
        .values()
        .copied()
        .max()
        .map(|m| m as usize + 1)
        .unwrap_or(0)
}

/// A compiled grammar for one tokenizer: make a fresh [`GrammarConstraint`] per generation.
pub struct Grammar {
    factory: Arc<ParserFactory>,
    /// A matcher at the start of the grammar, cloned for each generation.
    start: Matcher,
    n_vocab: usize,
}

/// The JSON layout the grammar enforces: compact, single spaces after `,` and `:`.
fn layout(schema: &J) -> J {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "x-guidance".into(),
            serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
            }),
        );
    }
    schema
}

impl Grammar {
    /// Compile `schema` (a JSON Schema) for `tokenizer`. `eos` are the model's end-of-turn
    /// tokens (the first is the grammar's end token).
    pub fn json_schema(tokenizer: &Tokenizer, eos: &[u32], schema: &J) -> Result<Grammar> {
        let n_vocab = id_space(tokenizer);
        let Some(&first_eos) = eos.first() else {
            bail!("the tokenizer has no end-of-turn token");
        };
        let info = TokRxInfo {
            vocab_size: n_vocab as u32,
            tok_eos: first_eos,
            tok_bos: None,
            tok_pad: None,
            tok_unk: None,
            tok_end_of_turn: None,
        };
        let words = token_bytes(tokenizer, n_vocab);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(eos);
        let env: TokEnv = Arc::new(HfTokEnv {
            trie,
            tokenizer: tokenizer.clone(),
        });
        let caps = InferenceCapabilities {
            ff_tokens: true,
            ..InferenceCapabilities::default()
        };
        let mut factory = ParserFactory::new(
            &env,
            caps,
            &llguidance::earley::SlicedBiasComputer::general_slices(),
        )
        .map_err(|e| anyhow!("preparing the grammar engine: {e}"))?;
        factory.quiet();
        let factory = Arc::new(factory);
        let parser = factory
            .create_parser(TopLevelGrammar::from_json_schema(layout(schema)))
            .map_err(|e| anyhow!("compiling the proposal schema: {e}"))?;
        let start = Matcher::new(Ok(parser));
        if let Some(e) = start.get_error() {
            bail!("compiling the proposal schema: {e}");
        }
        Ok(Grammar {
            factory,
            start,
            n_vocab,
        })
    }

    /// A constraint at the start of the grammar.
    pub fn constraint(&self) -> GrammarConstraint {
        GrammarConstraint {
            matcher: self.start.deep_clone(),
            n_vocab: self.n_vocab,
            mask_seconds: Vec::new(),
            forced: 0,
            take_forced: true,
            _factory: self.factory.clone(),
        }
    }
}

/// llguidance's matcher behind the sampler's [`TokenConstraint`] seam.
pub struct GrammarConstraint {
    matcher: Matcher,
    n_vocab: usize,
    /// Time of each mask computation, for benchmarks.
    pub mask_seconds: Vec<f64>,
    /// Tokens taken without sampling because the grammar forced them.
    pub forced: usize,
    /// Offer forced tokens to the sampler (off: every token is sampled under its mask, which
    /// isolates the cost of masking in benchmarks).
    pub take_forced: bool,
    _factory: Arc<ParserFactory>,
}

impl GrammarConstraint {
    fn check(&self) -> Result<()> {
        match self.matcher.get_error() {
            Some(e) => bail!("grammar: {e}"),
            None => Ok(()),
        }
    }
}

impl TokenConstraint for GrammarConstraint {
    fn restrict(&mut self, logits: &mut [f32]) -> Result<bool> {
        let t = Instant::now();
        let mask = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| anyhow!("grammar: {e}"))?;
        self.mask_seconds.push(t.elapsed().as_secs_f64());
        let words = mask.as_slice();
        let mut any = false;
        for (w, chunk) in logits.chunks_mut(32).enumerate() {
            let bits = words.get(w).copied().unwrap_or(0);
            if bits == u32::MAX && chunk.len() == 32 {
                any = true;
                continue;
            }
            if bits == 0 {
                chunk.fill(f32::NEG_INFINITY);
                continue;
            }
            for (i, l) in chunk.iter_mut().enumerate() {
                if bits & (1 << i) == 0 || w * 32 + i >= self.n_vocab {
                    *l = f32::NEG_INFINITY;
                } else {
                    any = true;
                }
            }
        }
        Ok(any)
    }

    fn forced(&mut self) -> Result<Vec<u32>> {
        if !self.take_forced {
            return Ok(Vec::new());
        }
        let t = self.matcher.compute_ff_tokens();
        self.check()?;
        self.forced += t.len();
        Ok(t)
    }

    fn consume(&mut self, token: u32) -> Result<()> {
        self.matcher
            .consume_token(token)
            .map_err(|e| anyhow!("grammar refused token {token}: {e}"))
    }

    fn is_complete(&mut self) -> bool {
        // A matcher stops when the JSON is complete and nothing may follow.
        (self.matcher.is_stopped() && !self.matcher.is_error())
            || self.matcher.is_accepting().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bytes_match_what_the_tokenizer_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::llm::testmodel::write_tokenizer(dir.path(), 600).unwrap();
        let tok = Tokenizer::from_file(path).unwrap();
        let n = id_space(&tok);
        let words = token_bytes(&tok, n + 5);
        assert_eq!(words.len(), n + 5);
        let mut plain = 0;
        for (id, w) in words.iter().enumerate().take(n) {
            if w.first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER) {
                continue;
            }
            let decoded = tok.decode(&[id as u32], false).unwrap();
            // Single tokens that are part of a multi-byte character decode to U+FFFD.
            if std::str::from_utf8(w).is_ok() {
                assert_eq!(decoded.as_bytes(), w.as_slice(), "token {id}");
                plain += 1;
            }
        }
        assert!(plain > 300, "{plain}");
        // Padding ids past the tokenizer are marked special, never text.
        assert!(
            words[n..]
                .iter()
                .all(|w| w[0] == TokTrie::SPECIAL_TOKEN_MARKER)
        );
        // The special tokens of the test tokenizer are marked.
        let im_end = tok.token_to_id("<|im_end|>").unwrap() as usize;
        assert_eq!(&words[im_end][1..], b"<|im_end|>");
    }

    #[test]
    fn the_gpt2_alphabet_is_a_bijection() {
        let a = byte_level_alphabet();
        assert_eq!(a.len(), 256);
        let mut bytes: Vec<u8> = a.values().copied().collect();
        bytes.sort();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        assert_eq!(a[&'\u{120}'], b' ');
        assert_eq!(a[&'A'], b'A');
    }
}
