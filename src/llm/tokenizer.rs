//! The model's tokenizer behind one trait, [`TextTokenizer`]: the vocabulary a GGUF file carries
//! in its metadata ([`super::vocab::Vocab`], what llama.cpp uses with the same file), or a
//! Hugging Face `tokenizer.json` (safetensors checkpoints, and GGUF files whose tokenizer
//! lsmtune cannot rebuild). Encoding, decoding, and the byte string of every token that
//! constrained decoding builds its token trie from all go through it, so the grammar always
//! works on the tokenizer that actually runs.
//!
//! [`ControlTexts`] keeps the text of chat messages apart from the chat template's markers: a
//! message that spells `<|im_end|>` is tokenized as that text, never as the control token, so
//! text from a file (a workload's name) cannot forge a chat turn.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use tokenizers::Tokenizer;

use super::files::ModelFiles;
use super::vocab::{END_OF_TURN_TEXTS, Vocab, byte_level_decode};

/// Encode and decode text for one model.
pub trait TextTokenizer: Send + Sync {
    /// Token ids of `text`. With `parse_special`, special tokens written in the text (a chat
    /// template's `<|im_start|>`) become their ids; without, they are tokenized as plain text
    /// where the tokenizer allows it. Never adds BOS.
    fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>>;
    /// The text of `ids`, special tokens left out.
    fn decode(&self, ids: &[u32]) -> Result<String>;
    /// For ids `0..n_ids()`: the bytes a text token stands for; any other token (special,
    /// control, unused, an id the tokenizer lacks) starts with `marker` so a grammar never
    /// produces it as text.
    fn token_bytes(&self, marker: u8) -> Vec<Vec<u8>>;
    /// One past the largest token id.
    fn n_ids(&self) -> usize;
    /// The id of a token written as stored in the vocabulary.
    fn id(&self, text: &str) -> Option<u32>;
    /// Where this tokenizer came from, for messages.
    fn describe(&self) -> String;
    /// The texts that [`encode`](Self::encode) turns into control tokens only when it parses
    /// special tokens (`<|im_start|>`, `<|eot_id|>`, ...).
    fn control_texts(&self) -> Vec<String>;
}

impl TextTokenizer for Vocab {
    fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        Ok(Vocab::encode(self, text, parse_special))
    }
    fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(Vocab::decode(self, ids))
    }
    fn token_bytes(&self, marker: u8) -> Vec<Vec<u8>> {
        Vocab::token_bytes(self, marker)
    }
    fn n_ids(&self) -> usize {
        self.len()
    }
    fn id(&self, text: &str) -> Option<u32> {
        Vocab::id(self, text)
    }
    fn control_texts(&self) -> Vec<String> {
        Vocab::control_texts(self)
    }
    fn describe(&self) -> String {
        let model = match self.model() {
            super::vocab::Model::Bpe { .. } => format!("byte-level BPE, pre `{}`", self.pre_name),
            super::vocab::Model::Spm => "SentencePiece".to_string(),
        };
        format!("GGUF metadata ({model}, {} tokens)", self.len())
    }
}

/// A Hugging Face `tokenizer.json`.
pub struct HfTokenizer {
    inner: Tokenizer,
    /// The same tokenizer encoding special tokens as plain text (for `parse_special = false`).
    plain: Tokenizer,
    /// Where it was read from.
    pub path: String,
}

impl HfTokenizer {
    pub fn from_file(path: &std::path::Path) -> Result<HfTokenizer> {
        let inner =
            Tokenizer::from_file(path).map_err(|e| anyhow!("loading {}: {e}", path.display()))?;
        let mut plain = inner.clone();
        plain.set_encode_special_tokens(true);
        Ok(HfTokenizer {
            inner,
            plain,
            path: path.display().to_string(),
        })
    }

    /// The wrapped tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Whether tokens are spelled byte-level (GPT-2 alphabet) rather than SentencePiece-style.
    fn byte_level(&self) -> bool {
        let decoder = serde_json::to_string(&self.inner.get_decoder()).unwrap_or_default();
        decoder.contains("\"ByteLevel\"")
    }

    /// The token's stored text.
    pub fn text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

impl TextTokenizer for HfTokenizer {
    fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let t = if parse_special {
            &self.inner
        } else {
            &self.plain
        };
        Ok(t.encode(text, false)
            .map_err(|e| anyhow!("tokenizing: {e}"))?
            .get_ids()
            .to_vec())
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| anyhow!("decoding: {e}"))
    }

    fn token_bytes(&self, marker: u8) -> Vec<Vec<u8>> {
        let n = self.n_ids();
        let byte_level = self.byte_level();
        // Special added tokens, and added tokens that look like markup (`<|...|>`), are never text.
        let special: HashMap<u32, String> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special || (t.content.starts_with('<') && t.content.ends_with('>')))
            .map(|(id, t)| (id, t.content))
            .collect();
        let marked = |name: &str| {
            let mut v = vec![marker];
            v.extend_from_slice(name.as_bytes());
            v
        };
        let added: HashMap<u32, String> = self
            .inner
            .get_added_tokens_decoder()
            .into_iter()
            .map(|(id, t)| (id, t.content))
            .collect();
        (0..n as u32)
            .map(|id| {
                if let Some(name) = special.get(&id) {
                    return marked(name);
                }
                if let Some(text) = added.get(&id) {
                    // Added (non-special) tokens are plain text, not spelled.
                    return text.as_bytes().to_vec();
                }
                let Some(tok) = self.inner.id_to_token(id) else {
                    return marked(&format!("<[{id}]>"));
                };
                if byte_level {
                    byte_level_decode(&tok)
                } else if tok.len() == 6
                    && tok.starts_with("<0x")
                    && tok.ends_with('>')
                    && let Ok(b) = u8::from_str_radix(&tok[3..5], 16)
                {
                    vec![b]
                } else {
                    // SentencePiece spelling: `▁` is a space. No prefix space is added here:
                    // a token's bytes are what it adds to the text.
                    tok.replace('\u{2581}', " ").into_bytes()
                }
            })
            .collect()
    }

    fn n_ids(&self) -> usize {
        self.inner
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .map(|m| m as usize + 1)
            .unwrap_or(0)
    }

    fn id(&self, text: &str) -> Option<u32> {
        self.inner.token_to_id(text)
    }

    fn describe(&self) -> String {
        format!("{} ({} tokens)", self.path, self.n_ids())
    }

    fn control_texts(&self) -> Vec<String> {
        self.inner
            .get_added_tokens_decoder()
            .into_values()
            .filter(|t| t.special)
            .map(|t| t.content)
            .collect()
    }
}

/// Compare a tokenizer.json with the GGUF vocabulary id by id. `Ok(n)` when all `n` ids agree;
/// otherwise a sentence naming the first difference.
pub fn cross_check(gguf: &Vocab, hf: &HfTokenizer) -> std::result::Result<usize, String> {
    let n = gguf.len();
    let hf_n = hf.n_ids();
    for id in 0..n.min(hf_n) as u32 {
        let a = gguf.text(id).unwrap_or_default();
        match hf.text(id) {
            Some(b) if b == a => {}
            Some(b) => {
                return Err(format!(
                    "id {id} is `{a}` in the GGUF but `{b}` in tokenizer.json"
                ));
            }
            None => return Err(format!("id {id} (`{a}`) is missing from tokenizer.json")),
        }
    }
    if hf_n != n {
        return Err(format!("the GGUF has {n} tokens, tokenizer.json {hf_n}"));
    }
    Ok(n)
}

/// End-of-turn tokens of the families we know, as spelled in their vocabularies.
const EOS_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "</s>",
];

/// The tokenizer a model runs with, with its end-of-turn tokens, BOS to add, the template's
/// bos/eos texts, and a note saying which was chosen.
pub struct Chosen {
    pub tokenizer: Arc<dyn TextTokenizer>,
    pub eos: Vec<u32>,
    pub bos: Option<u32>,
    pub bos_text: String,
    pub eos_text: String,
    pub note: String,
}

/// Choose the tokenizer of a model: a GGUF's own vocabulary (`vocab`, read from its metadata)
/// when it has a usable one (checked against a tokenizer.json beside it), else tokenizer.json.
pub fn choose(files: &ModelFiles, vocab: Option<Result<Vocab>>) -> Result<Chosen> {
    let weights = files.weights.display();
    let hf = files.tokenizer.as_deref().map(HfTokenizer::from_file);
    match (vocab, hf) {
        (Some(Ok(v)), hf) => {
            let note = match &hf {
                None => format!("tokenizer: {}", TextTokenizer::describe(&v)),
                Some(Err(e)) => format!(
                    "tokenizer: {}; tokenizer.json beside it cannot be read and is not used: {e}",
                    TextTokenizer::describe(&v)
                ),
                Some(Ok(h)) => match cross_check(&v, h) {
                    Ok(n) => format!(
                        "tokenizer: {} (tokenizer.json beside it agrees on all {n} ids)",
                        TextTokenizer::describe(&v)
                    ),
                    Err(diff) => format!(
                        "tokenizer: {}; tokenizer.json beside it is not used: {diff}",
                        TextTokenizer::describe(&v)
                    ),
                },
            };
            if v.end_of_generation.is_empty() {
                bail!("{weights}: the GGUF vocabulary has no end-of-turn token (no eos id, none of {})", END_OF_TURN_TEXTS.join(", "));
            }
            let text = |id: Option<u32>| {
                id.and_then(|i| v.text(i))
                    .map(str::to_string)
                    .unwrap_or_default()
            };
            let (bos_text, eos_text) = (text(v.bos), text(v.eos));
            Ok(Chosen {
                eos: v.end_of_generation.clone(),
                bos: v.bos.filter(|_| v.add_bos),
                bos_text,
                eos_text,
                note,
                tokenizer: Arc::new(v),
            })
        }
        (vocab, Some(h)) => {
            let h = h?;
            let note = match vocab {
                Some(Err(e)) => format!(
                    "tokenizer: {} (the GGUF's own vocabulary cannot be used: {e})",
                    h.describe()
                ),
                _ => format!("tokenizer: {}", h.describe()),
            };
            let eos: Vec<u32> = EOS_TOKENS.iter().filter_map(|t| h.id(t)).collect();
            if eos.is_empty() {
                bail!(
                    "{} has no end-of-turn token ({})",
                    h.path,
                    EOS_TOKENS.join(", ")
                );
            }
            Ok(Chosen {
                tokenizer: Arc::new(h),
                eos,
                bos: None,
                bos_text: String::new(),
                eos_text: String::new(),
                note,
            })
        }
        (Some(Err(e)), None) => Err(e.context(format!(
            "{weights}: its tokenizer metadata cannot be used (put the model's tokenizer.json beside it to use that instead)"
        ))),
        (None, None) => bail!(
            "{weights} carries no tokenizer in its metadata and has no tokenizer.json beside it"
        ),
    }
}

/// The characters standing in for control-token texts inside message contents: the private
/// use areas of planes 15 and 16, which no tokenizer gives a meaning.
const STAND_INS: [std::ops::RangeInclusive<u32>; 2] = [0xF0000..=0xFFFFD, 0x100000..=0x10FFFD];

/// The stand-in character of the `k`-th control text, if there is one.
fn stand_in(k: usize) -> Option<char> {
    let first = STAND_INS[0].clone().count();
    let code = if k < first {
        STAND_INS[0].start() + k as u32
    } else {
        STAND_INS[1].start() + (k - first) as u32
    };
    char::from_u32(code).filter(|&c| is_stand_in(c))
}

fn is_stand_in(c: char) -> bool {
    STAND_INS.iter().any(|r| r.contains(&(c as u32)))
}

fn stand_in_index(c: char) -> Option<usize> {
    let code = c as u32;
    if STAND_INS[0].contains(&code) {
        Some((code - STAND_INS[0].start()) as usize)
    } else if STAND_INS[1].contains(&code) {
        Some(STAND_INS[0].clone().count() + (code - STAND_INS[1].start()) as usize)
    } else {
        None
    }
}

/// Message text kept apart from a chat template's markers. Before the template renders, every
/// control-token text in a message ([`TextTokenizer::control_texts`]) is replaced by a stand-in
/// character ([`ControlTexts::defuse`]); the rendered prompt is then encoded with special tokens
/// parsed everywhere but at the stand-ins, which become their text tokenized as plain text
/// ([`ControlTexts::encode`]). So only the template's own markers are control tokens, whatever
/// the template does with the message (trims, slices, upper-cases). Private-use characters of
/// planes 15 and 16 in a message become U+FFFD.
pub struct ControlTexts {
    /// Control texts by their first character, longest first, with their stand-ins.
    by_first: HashMap<char, Vec<(String, char)>>,
    /// Indexed by stand-in.
    texts: Vec<String>,
}

impl ControlTexts {
    /// The control texts of `tokenizer`; an error when it has more than stand-ins exist for.
    pub fn new(tokenizer: &dyn TextTokenizer) -> Result<ControlTexts> {
        let mut texts: Vec<String> = tokenizer
            .control_texts()
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect();
        texts.sort();
        texts.dedup();
        let mut by_first: HashMap<char, Vec<(String, char)>> = HashMap::new();
        for (k, t) in texts.iter().enumerate() {
            let Some(c) = stand_in(k) else {
                bail!(
                    "{} has {} control tokens, more than lsmtune can keep apart from message text",
                    tokenizer.describe(),
                    texts.len()
                );
            };
            let first = t.chars().next().unwrap_or_default();
            by_first.entry(first).or_default().push((t.clone(), c));
        }
        for v in by_first.values_mut() {
            v.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        }
        Ok(ControlTexts { by_first, texts })
    }

    /// A message's text with every control-token text in it replaced by its stand-in.
    pub fn defuse(&self, content: &str) -> String {
        let mut out = String::with_capacity(content.len());
        let mut rest = content;
        while let Some(c) = rest.chars().next() {
            if is_stand_in(c) {
                out.push('\u{FFFD}');
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let hit = self
                .by_first
                .get(&c)
                .and_then(|v| v.iter().find(|(t, _)| rest.starts_with(t.as_str())));
            match hit {
                Some((t, stand_in)) => {
                    out.push(*stand_in);
                    rest = &rest[t.len()..];
                }
                None => {
                    out.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        out
    }

    /// Tokens of a prompt rendered from defused messages: special tokens parsed in the
    /// template's text, each stand-in its control text tokenized as plain text.
    pub fn encode(&self, tokenizer: &dyn TextTokenizer, prompt: &str) -> Result<Vec<u32>> {
        let mut tokens = Vec::new();
        let mut start = 0;
        for (i, c) in prompt.char_indices() {
            let Some(text) = stand_in_index(c).and_then(|k| self.texts.get(k)) else {
                continue;
            };
            if start < i {
                tokens.extend(tokenizer.encode(&prompt[start..i], true)?);
            }
            tokens.extend(tokenizer.encode(text, false)?);
            start = i + c.len_utf8();
        }
        if start < prompt.len() {
            tokens.extend(tokenizer.encode(&prompt[start..], true)?);
        }
        Ok(tokens)
    }

    /// A prompt rendered from defused messages as text again (stand-ins back to their text).
    pub fn restore(&self, prompt: &str) -> String {
        let mut out = String::with_capacity(prompt.len());
        for c in prompt.chars() {
            match stand_in_index(c).and_then(|k| self.texts.get(k)) {
                Some(t) => out.push_str(t),
                None => out.push(c),
            }
        }
        out
    }
}
