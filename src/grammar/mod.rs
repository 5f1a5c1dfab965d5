//! Grammar-constrained decoding of proposals. [`schema`] generates the proposal's JSON Schema
//! from the option catalog; this module compiles it with llguidance against the model's own
//! tokenizer and hands the sampler a [`TokenConstraint`]: at every step the set of tokens that
//! keep the output a valid prefix of some schema-valid JSON, end-of-turn only once the JSON is
//! complete, and the tokens the grammar forces taken without sampling.
//!
//! The output is compact JSON with `", "` and `": "` separators and no other whitespace, so a
//! model cannot pad its answer with blanks.
//!
//! A vocabulary comes from a model file and may be crafted: the text the grammar forces is
//! tokenized with the model's tokenizer only when that yields text tokens spelling exactly that
//! text (else greedily on the token trie), and every error of the grammar engine is one line
//! ([`one_line`]), never the engine's state dump.

pub mod schema;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value as J;
use toktrie::{InferenceCapabilities, TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::llm::TokenConstraint;
use crate::llm::tokenizer::TextTokenizer;

/// The model's tokenizer as llguidance sees it: the bytes of every token, and tokenization of
/// forced text with the real tokenizer.
struct ModelTokEnv {
    trie: TokTrie,
    tokenizer: Arc<dyn TextTokenizer>,
    /// Forced text comes from a small set (keys, separators): tokenize each once.
    memo: std::sync::Mutex<HashMap<Vec<u8>, Vec<TokenId>>>,
}

impl TokenizerEnv for ModelTokEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        if let Some(t) = self.memo.lock().ok().and_then(|m| m.get(s).cloned()) {
            return t;
        }
        let t = self.trie.tokenize_with_greedy_fallback(s, |text| {
            self.tokenizer.encode(text, false).unwrap_or_default()
        });
        // A crafted vocabulary may tokenize forced text into tokens the grammar never allows
        // (a user-defined `{"`): then spell it with text tokens only.
        let spelled: Vec<u8> = t
            .iter()
            .flat_map(|&id| self.trie.token(id).iter().copied())
            .collect();
        let t = if spelled == s {
            t
        } else {
            self.trie.greedy_tokenize(s)
        };
        if let Ok(mut m) = self.memo.lock()
            && m.len() < 100_000
        {
            m.insert(s.to_vec(), t.clone());
        }
        t
    }
}

/// A compiled grammar for one tokenizer: make a fresh [`GrammarConstraint`] per generation.
pub struct Grammar {
    factory: Arc<ParserFactory>,
    /// A matcher at the start of the grammar, cloned for each generation.
    start: Matcher,
    n_vocab: usize,
    /// The `maxLength` of a leading `reasoning` string, enforced here instead of by the
    /// grammar (see [`StringBound`]).
    bound: Option<Arc<StringBound>>,
}

/// A leading string property's length limit, enforced outside llguidance. A bounded string
/// (`maxLength`) compiles to one lexer state per character, which keeps llguidance's sliced
/// fast path from applying and makes each mask inside the string cost a walk of the whole
/// token trie near the limit. The grammar gets the string unbounded; this counts the
/// characters written (each escape character counts, so the decoded text is never longer) and,
/// in the last stretch before the limit, drops tokens that would run past it.
struct StringBound {
    /// Bytes before the string's content: `{"reasoning": "`.
    prefix: Vec<u8>,
    limit: usize,
    /// Per token: characters it adds to the string before its first unescaped `"` (or in all,
    /// when it has none), capped at 255.
    reach: Arc<Vec<u8>>,
    /// Text token ids, longest reach first: near the limit only a prefix needs blocking.
    by_reach: Arc<Vec<u32>>,
    words: Arc<Vec<Vec<u8>>>,
}

/// Where a constraint is with respect to the bounded string.
#[derive(Debug, Clone, Copy, PartialEq)]
enum InString {
    /// Still writing the prefix (bytes matched so far).
    Before(usize),
    /// Inside: characters written, and whether the last byte was an unescaped backslash.
    Inside(usize, bool),
    After,
}

fn token_reach(word: &[u8]) -> u8 {
    if word.first() == Some(&TokTrie::SPECIAL_TOKEN_MARKER) {
        return u8::MAX;
    }
    let mut chars = 0usize;
    let mut escaped = false;
    for &b in word {
        if b == b'"' && !escaped {
            return chars.min(255) as u8;
        }
        escaped = b == b'\\' && !escaped;
        if b & 0xC0 != 0x80 {
            chars += 1;
        }
    }
    // A token ending in a lone backslash must leave room for the escape it starts (\uXXXX).
    if escaped {
        chars += 5;
    }
    chars.min(255) as u8
}

/// The first line of a grammar-engine error, at most 300 characters: llguidance appends its
/// parser state and grammar (dozens of lines) to an error, which says nothing to a user.
pub fn one_line(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out: String = first.chars().take(300).collect();
    if first.chars().nth(300).is_some() {
        out.push('…');
    }
    out
}

/// Take a top-level `reasoning.maxLength` out of the schema, for [`StringBound`].
fn split_reasoning_bound(schema: &J) -> (J, Option<usize>) {
    let mut schema = schema.clone();
    let limit = schema
        .pointer_mut("/properties/reasoning")
        .and_then(|r| r.as_object_mut())
        .and_then(|r| r.remove("maxLength"))
        .and_then(|m| m.as_u64())
        .map(|m| m as usize);
    (schema, limit)
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

/// A tokenizer prepared for grammars: its token trie and llguidance's parser factory, built
/// once (about half a second for a 150k-token vocabulary); [`GrammarEnv::compile`] then turns
/// each schema into a [`Grammar`] in milliseconds, so a tuner can narrow the schema every turn.
pub struct GrammarEnv {
    factory: Arc<ParserFactory>,
    n_vocab: usize,
    words: Arc<Vec<Vec<u8>>>,
    /// Per token, for [`StringBound`]: characters it adds to a string, and text tokens by it.
    reach: Arc<Vec<u8>>,
    by_reach: Arc<Vec<u32>>,
}

impl GrammarEnv {
    /// Prepare `tokenizer`; `eos` are the model's end-of-turn tokens (the first is the
    /// grammar's end token).
    pub fn new(tokenizer: &Arc<dyn TextTokenizer>, eos: &[u32]) -> Result<GrammarEnv> {
        let n_vocab = tokenizer.n_ids();
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
        let words = tokenizer.token_bytes(TokTrie::SPECIAL_TOKEN_MARKER);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(eos);
        let reach: Vec<u8> = words.iter().map(|w| token_reach(w)).collect();
        let mut by_reach: Vec<u32> = (0..words.len() as u32)
            .filter(|&i| words[i as usize].first() != Some(&TokTrie::SPECIAL_TOKEN_MARKER))
            .collect();
        by_reach.sort_by_key(|&i| std::cmp::Reverse(reach[i as usize]));
        let env: TokEnv = Arc::new(ModelTokEnv {
            trie,
            tokenizer: tokenizer.clone(),
            memo: std::sync::Mutex::new(HashMap::new()),
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
        .map_err(|e| anyhow!("preparing the grammar engine: {}", one_line(&e)))?;
        factory.quiet();
        // Errors say what went wrong in one line, not the parser's state and grammar.
        factory.limits_mut().verbose_errors = false;
        Ok(GrammarEnv {
            factory: Arc::new(factory),
            n_vocab,
            words: Arc::new(words),
            reach: Arc::new(reach),
            by_reach: Arc::new(by_reach),
        })
    }

    /// Compile `schema` (a JSON Schema).
    pub fn compile(&self, schema: &J) -> Result<Grammar> {
        let (schema, limit) = split_reasoning_bound(schema);
        let schema = &schema;
        let first_key_is_reasoning = schema
            .pointer("/required/0")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k == "reasoning");
        let bound = limit.filter(|_| first_key_is_reasoning).map(|limit| {
            Arc::new(StringBound {
                prefix: br#"{"reasoning": ""#.to_vec(),
                limit,
                reach: self.reach.clone(),
                by_reach: self.by_reach.clone(),
                words: self.words.clone(),
            })
        });
        let parser = self
            .factory
            .create_parser(TopLevelGrammar::from_json_schema(layout(schema)))
            .map_err(|e| anyhow!("compiling the proposal schema: {}", one_line(&e)))?;
        let start = Matcher::new(Ok(parser));
        if let Some(e) = start.get_error() {
            bail!("compiling the proposal schema: {}", one_line(&e));
        }
        Ok(Grammar {
            factory: self.factory.clone(),
            start,
            n_vocab: self.n_vocab,
            bound,
        })
    }
}

impl Grammar {
    /// Compile `schema` (a JSON Schema) for `tokenizer`. `eos` are the model's end-of-turn
    /// tokens (the first is the grammar's end token). To compile several schemas for one
    /// tokenizer, prepare a [`GrammarEnv`] once.
    pub fn json_schema(
        tokenizer: &Arc<dyn TextTokenizer>,
        eos: &[u32],
        schema: &J,
    ) -> Result<Grammar> {
        GrammarEnv::new(tokenizer, eos)?.compile(schema)
    }

    /// A constraint at the start of the grammar. The clone shares the lexer's state cache with
    /// every other constraint of this grammar, so lexer states derived in one generation are
    /// reused by the next (generations run one at a time).
    pub fn constraint(&self) -> GrammarConstraint {
        GrammarConstraint {
            matcher: self.start.clone(),
            n_vocab: self.n_vocab,
            mask_seconds: Vec::new(),
            forced: 0,
            take_forced: true,
            bound: self.bound.clone(),
            at: InString::Before(0),
            _factory: self.factory.clone(),
        }
    }
}

/// llguidance's matcher behind the sampler's [`TokenConstraint`] seam.
pub struct GrammarConstraint {
    matcher: Matcher,
    n_vocab: usize,
    /// Time of each `restrict` (llguidance's mask, applying it, the string bound), for
    /// benchmarks.
    pub mask_seconds: Vec<f64>,
    /// Tokens taken without sampling because the grammar forced them.
    pub forced: usize,
    /// Offer forced tokens to the sampler (off: every token is sampled under its mask, which
    /// isolates the cost of masking in benchmarks).
    pub take_forced: bool,
    bound: Option<Arc<StringBound>>,
    at: InString,
    _factory: Arc<ParserFactory>,
}

impl GrammarConstraint {
    fn check(&self) -> Result<()> {
        match self.matcher.get_error() {
            Some(e) => bail!("grammar: {}", one_line(&e)),
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
            .map_err(|e| anyhow!("grammar: {}", one_line(&e)))?;
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
        if let (Some(b), InString::Inside(chars, escaped)) = (&self.bound, self.at) {
            let room = b.limit.saturating_sub(chars);
            if escaped {
                // After a lone backslash the next byte is escaped: it cannot end the string,
                // and it adds a character. Rare: check every token.
                for (i, l) in logits.iter_mut().enumerate() {
                    let w = b.words.get(i).map(Vec::as_slice).unwrap_or_default();
                    let reach = usize::from(!w.is_empty())
                        + token_reach(w.get(1..).unwrap_or_default()) as usize;
                    if reach > room {
                        *l = f32::NEG_INFINITY;
                    }
                }
            } else {
                for &i in b
                    .by_reach
                    .iter()
                    .take_while(|&&i| b.reach[i as usize] as usize > room)
                {
                    if let Some(l) = logits.get_mut(i as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            // The closing quote (reach 0) is always still allowed inside the string.
        }
        self.mask_seconds.push(t.elapsed().as_secs_f64());
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
        if let Some(b) = &self.bound {
            for &byte in b
                .words
                .get(token as usize)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                self.at = match self.at {
                    InString::Before(n) if b.prefix.get(n) == Some(&byte) => {
                        if n + 1 == b.prefix.len() {
                            InString::Inside(0, false)
                        } else {
                            InString::Before(n + 1)
                        }
                    }
                    // Not the expected layout: stop bounding rather than bound the wrong text.
                    InString::Before(_) => InString::After,
                    InString::Inside(_, false) if byte == b'"' => InString::After,
                    InString::Inside(chars, escaped) => InString::Inside(
                        chars + usize::from(byte & 0xC0 != 0x80),
                        byte == b'\\' && !escaped,
                    ),
                    InString::After => InString::After,
                };
            }
        }
        self.matcher
            .consume_token(token)
            .map_err(|e| anyhow!("grammar refused token {token}: {}", one_line(&e)))
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
    fn string_reach_counts_characters_up_to_the_closing_quote() {
        assert_eq!(token_reach(b"abc"), 3);
        assert_eq!(token_reach("é\"x".as_bytes()), 1);
        assert_eq!(token_reach(b"\",\""), 0);
        assert_eq!(
            token_reach(b"a\\\"b"),
            4,
            "an escaped quote does not end the string"
        );
        assert_eq!(
            token_reach(b"ab\\"),
            3 + 5,
            "room is kept for the escape it starts"
        );
        assert_eq!(token_reach(&[TokTrie::SPECIAL_TOKEN_MARKER, b'x']), 255);
        let (s, limit) = split_reasoning_bound(&serde_json::json!(
            {"properties": {"reasoning": {"type": "string", "maxLength": 40}}}
        ));
        assert_eq!(limit, Some(40));
        assert!(s.pointer("/properties/reasoning/maxLength").is_none());
    }
}
