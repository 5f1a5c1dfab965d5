//! A model's tokenizer rebuilt from its GGUF metadata alone (`tokenizer.ggml.*`), so a GGUF file
//! runs with nothing beside it, and tokenizes exactly as llama.cpp does with the same file:
//!
//! - `gpt2` vocabularies: byte-level BPE with the merge ranks of `tokenizer.ggml.merges`, after
//!   the pre-tokenizer that `tokenizer.ggml.pre` names (qwen2 and deepseek-r1-qwen, llama3 /
//!   llama-bpe / llama-v3 with whole-word lookup before merging, smollm / starcoder, gpt-2 /
//!   phi-2, default). An unknown `pre` is an error that names it: a guessed pre-tokenizer
//!   silently changes every prompt.
//! - `llama` vocabularies (SentencePiece: Llama 2, Mistral, Phi-3, Gemma): spaces written as
//!   `▁`, a prefix space when `add_space_prefix`, pieces merged by score, `<0xNN>` byte fallback.
//! - Token types: control, user-defined and unknown tokens are matched in the raw text before
//!   anything else (control ones only in prompts, where special tokens are parsed); control,
//!   unknown and unused tokens decode to nothing, and [`Vocab::token_bytes`] marks every
//!   non-text token special so constrained decoding can never produce one as text.
//! - End of generation: the file's eos, eot and eom ids plus the usual end-of-turn texts found
//!   in the vocabulary (`<|im_end|>`, `<|eot_id|>`, `<|end|>`, `<end_of_turn>`, ...).
//!
//! The algorithms follow llama.cpp's llama-vocab.cpp and unicode.cpp (the reference for the
//! token-id fixtures under tests/fixtures/llamacpp); the character classes come from the
//! Unicode tables of `regex-syntax`. This module reads the vocabulary and splits text around
//! special tokens; the merging (BPE ranks, SentencePiece scores) is in `merge`, the
//! pre-tokenizers and the byte-level alphabet in `pretok`.

use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use candle_core::quantized::gguf_file::Value;

mod merge;
mod pretok;

pub use pretok::{PreTokenizer, byte_level_decode};
use pretok::{byte_level_encode, split_words};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
    Undefined,
}

impl TokenType {
    fn from_gguf(t: i64) -> TokenType {
        match t {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// Matched in raw text before tokenizing (control and unknown only when parsing specials).
    fn is_partitioned(self) -> bool {
        matches!(
            self,
            TokenType::Control | TokenType::UserDefined | TokenType::Unknown
        )
    }
}

/// The two vocabulary models lsmtune runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Byte-level BPE (`tokenizer.ggml.model = gpt2`).
    Bpe {
        pre: PreTokenizer,
        ignore_merges: bool,
    },
    /// SentencePiece (`tokenizer.ggml.model = llama`).
    Spm,
}

/// A vocabulary read from GGUF metadata.
pub struct Vocab {
    model: Model,
    /// `tokenizer.ggml.pre` as written, for messages.
    pub pre_name: String,
    texts: Vec<String>,
    types: Vec<TokenType>,
    scores: Vec<f32>,
    to_id: HashMap<String, u32>,
    /// `"left right"` (a merge line) -> rank.
    merges: HashMap<String, u32>,
    /// Control, user-defined and unknown tokens, longest text first.
    specials: Vec<u32>,
    /// Special tokens that swallow the whitespace after them (llama.cpp's Phi-3 rule).
    rstrip: Vec<bool>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Whether prompts start with BOS (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    add_space_prefix: bool,
    /// Tokens that end generation.
    pub end_of_generation: Vec<u32>,
}

/// Texts that end generation when a vocabulary has them, as llama.cpp lists them; such a token is
/// treated as a control token whatever its stored type (so `</s>` in Qwen's vocabulary is one).
pub const END_OF_TURN_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

fn meta<'a>(m: &'a HashMap<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key)
}

fn meta_str(m: &HashMap<String, Value>, key: &str) -> Result<Option<String>> {
    match meta(m, key) {
        None => Ok(None),
        Some(v) => v
            .to_string()
            .map(|s| Some(s.clone()))
            .map_err(|_| anyhow!("{key} is not a string")),
    }
}

fn meta_int(m: &HashMap<String, Value>, key: &str) -> Option<i64> {
    let v = meta(m, key)?;
    match v {
        Value::U8(x) => Some(*x as i64),
        Value::I8(x) => Some(*x as i64),
        Value::U16(x) => Some(*x as i64),
        Value::I16(x) => Some(*x as i64),
        Value::U32(x) => Some(*x as i64),
        Value::I32(x) => Some(*x as i64),
        Value::U64(x) => i64::try_from(*x).ok(),
        Value::I64(x) => Some(*x),
        _ => None,
    }
}

fn meta_bool(m: &HashMap<String, Value>, key: &str) -> Option<bool> {
    match meta(m, key)? {
        Value::Bool(b) => Some(*b),
        _ => meta_int(m, key).map(|x| x != 0),
    }
}

fn meta_array<'a>(m: &'a HashMap<String, Value>, key: &str) -> Result<Option<&'a Vec<Value>>> {
    match meta(m, key) {
        None => Ok(None),
        Some(v) => v
            .to_vec()
            .map(Some)
            .map_err(|_| anyhow!("{key} is not an array")),
    }
}

impl Vocab {
    /// Whether the metadata carries a tokenizer at all.
    pub fn present(m: &HashMap<String, Value>) -> bool {
        m.contains_key("tokenizer.ggml.model") && m.contains_key("tokenizer.ggml.tokens")
    }

    /// Build the vocabulary from a GGUF file's metadata. Errors name the key at fault.
    pub fn from_gguf(m: &HashMap<String, Value>) -> Result<Vocab> {
        let model_name = meta_str(m, "tokenizer.ggml.model")?.ok_or_else(|| {
            anyhow!("the file has no tokenizer (tokenizer.ggml.model is missing)")
        })?;
        let pre_name = meta_str(m, "tokenizer.ggml.pre")?.unwrap_or_default();
        let model = match model_name.as_str() {
            "gpt2" => {
                let (pre, ignore_merges) = PreTokenizer::from_name(&pre_name).ok_or_else(|| {
                    anyhow!(
                        "tokenizer.ggml.pre = `{pre_name}` is a pre-tokenizer lsmtune does not know (known: {}); put the model's tokenizer.json beside the file to use it instead",
                        PreTokenizer::KNOWN
                    )
                })?;
                Model::Bpe { pre, ignore_merges }
            }
            "llama" => Model::Spm,
            other => bail!(
                "tokenizer.ggml.model = `{other}` is not supported (supported: gpt2 byte-level BPE, llama SentencePiece); put the model's tokenizer.json beside the file to use it instead"
            ),
        };
        let tokens = meta_array(m, "tokenizer.ggml.tokens")?
            .ok_or_else(|| anyhow!("tokenizer.ggml.tokens is missing"))?;
        if tokens.is_empty() {
            bail!("tokenizer.ggml.tokens is empty");
        }
        let n = tokens.len();
        let mut texts = Vec::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            let s = t
                .to_string()
                .map_err(|_| anyhow!("tokenizer.ggml.tokens[{i}] is not a string"))?;
            texts.push(if s.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                s.clone()
            });
        }
        let mut types = vec![TokenType::Normal; n];
        if let Some(tt) = meta_array(m, "tokenizer.ggml.token_type")? {
            if tt.len() < n {
                bail!(
                    "tokenizer.ggml.token_type has {} entries for {n} tokens",
                    tt.len()
                );
            }
            for (i, t) in tt.iter().take(n).enumerate() {
                let v = match t {
                    Value::I32(x) => *x as i64,
                    Value::U32(x) => *x as i64,
                    _ => bail!("tokenizer.ggml.token_type[{i}] is not an integer"),
                };
                types[i] = TokenType::from_gguf(v);
            }
        }
        let mut scores = vec![0f32; n];
        if let Some(sc) = meta_array(m, "tokenizer.ggml.scores")? {
            if sc.len() < n {
                bail!(
                    "tokenizer.ggml.scores has {} entries for {n} tokens",
                    sc.len()
                );
            }
            for (i, s) in sc.iter().take(n).enumerate() {
                scores[i] = match s {
                    Value::F32(x) => *x,
                    Value::I32(x) => *x as f32,
                    _ => bail!("tokenizer.ggml.scores[{i}] is not a number"),
                };
            }
        }
        let mut to_id = HashMap::with_capacity(n);
        for (i, t) in texts.iter().enumerate() {
            // A repeated text maps to its last id, as in llama.cpp.
            to_id.insert(t.clone(), i as u32);
        }
        let mut merges = HashMap::new();
        if let Model::Bpe { .. } = model {
            let list = meta_array(m, "tokenizer.ggml.merges")?.ok_or_else(|| {
                anyhow!("tokenizer.ggml.merges is missing (a gpt2 vocabulary needs its merges)")
            })?;
            merges.reserve(list.len());
            for (rank, line) in list.iter().enumerate() {
                let line = line
                    .to_string()
                    .map_err(|_| anyhow!("tokenizer.ggml.merges[{rank}] is not a string"))?;
                // A merge is "left right", split at the first space after the first byte.
                let key = match line.bytes().skip(1).position(|b| b == b' ') {
                    Some(_) => line.clone(),
                    None => String::new(),
                };
                merges.entry(key).or_insert(rank as u32);
            }
        }
        let (add_bos_default, add_space_default) = match model {
            Model::Spm => (true, true),
            Model::Bpe { .. } => (false, false),
        };
        let id = |key: &str, default: Option<u32>| -> Option<u32> {
            match meta_int(m, key) {
                Some(v) if v >= 0 && (v as usize) < n => Some(v as u32),
                _ => default.filter(|&d| (d as usize) < n),
            }
        };
        let (bos_default, eos_default) = match model {
            Model::Spm => (Some(1), Some(2)),
            Model::Bpe { .. } => (Some(11), Some(11)),
        };
        let bos = id("tokenizer.ggml.bos_token_id", bos_default);
        let eos = id("tokenizer.ggml.eos_token_id", eos_default);
        let eot = id("tokenizer.ggml.eot_token_id", None);
        let eom = id("tokenizer.ggml.eom_token_id", None);
        let add_bos = meta_bool(m, "tokenizer.ggml.add_bos_token").unwrap_or(add_bos_default);
        let add_space_prefix =
            meta_bool(m, "tokenizer.ggml.add_space_prefix").unwrap_or(add_space_default);

        // End-of-turn texts are control tokens whatever the file says (llama.cpp adds its control
        // flag, which wins over user-defined).
        let mut end_of_generation: Vec<u32> = Vec::new();
        for text in END_OF_TURN_TEXTS {
            if let Some(&i) = to_id.get(*text) {
                types[i as usize] = TokenType::Control;
                end_of_generation.push(i);
            }
        }
        for i in [eos, eot, eom].into_iter().flatten() {
            if !end_of_generation.contains(&i) {
                end_of_generation.push(i);
            }
        }
        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&i| types[i as usize].is_partitioned())
            .collect();
        specials.sort_by_key(|&i| std::cmp::Reverse(texts[i as usize].len()));
        let mut rstrip = vec![false; n];
        let general_name = meta_str(m, "general.name")?
            .unwrap_or_default()
            .to_lowercase();
        if general_name.contains("phi-3") || general_name.contains("phi3") {
            for &i in &specials {
                rstrip[i as usize] = true;
            }
            if let Some(&i) = to_id.get("</s>") {
                rstrip[i as usize] = true;
            }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(&i) = to_id.get(t) {
                    rstrip[i as usize] = false;
                }
            }
        }
        Ok(Vocab {
            model,
            pre_name,
            texts,
            types,
            scores,
            to_id,
            merges,
            specials,
            rstrip,
            bos,
            eos,
            add_bos,
            add_space_prefix,
            end_of_generation,
        })
    }

    /// The vocabulary of a GGUF file, reading only its metadata (no weights).
    pub fn from_file(path: &std::path::Path) -> Result<Vocab> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| anyhow!("cannot open {}: {e}", path.display()))?;
        let content = crate::llm::files::read_gguf(&mut file)
            .map_err(|e| anyhow!("{} is not a GGUF file: {e}", path.display()))?;
        Vocab::from_gguf(&content.metadata)
            .map_err(|e| e.context(format!("{}: tokenizer metadata", path.display())))
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether the vocabulary is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    pub fn model(&self) -> Model {
        self.model
    }

    /// The token's text as stored (byte-level or `▁` spelling).
    pub fn text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(String::as_str)
    }

    /// The id of a token text as stored.
    pub fn id(&self, text: &str) -> Option<u32> {
        self.to_id.get(text).copied()
    }

    /// The texts of the tokens [`Vocab::encode`] matches only when it parses special tokens
    /// (control and unknown tokens).
    pub fn control_texts(&self) -> Vec<String> {
        self.specials
            .iter()
            .filter(|&&id| {
                matches!(
                    self.types[id as usize],
                    TokenType::Control | TokenType::Unknown
                )
            })
            .map(|&id| self.texts[id as usize].clone())
            .collect()
    }

    /// Tokenize `text`. With `parse_special`, control tokens written in the text (the chat
    /// template's `<|im_start|>`) become their ids; user-defined tokens always do. No BOS is
    /// added here (the caller decides, see [`Vocab::add_bos`]).
    pub fn encode(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        let mut prev_special = true;
        for frag in self.partition(text, parse_special) {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(s) => {
                    match self.model {
                        Model::Spm => {
                            let mut t = String::with_capacity(s.len() + 3);
                            if self.add_space_prefix && prev_special {
                                t.push(' ');
                            }
                            t.push_str(s);
                            self.spm(&t.replace(' ', "\u{2581}"), &mut out);
                        }
                        Model::Bpe { pre, ignore_merges } => {
                            for word in split_words(s, pre) {
                                self.bpe(&byte_level_encode(word), ignore_merges, &mut out);
                            }
                        }
                    }
                    prev_special = false;
                }
            }
        }
        out
    }

    /// Split raw text around special tokens, longest tokens first, as llama.cpp does.
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut frags = vec![Fragment::Text(text)];
        for &id in &self.specials {
            let ty = self.types[id as usize];
            if !parse_special && matches!(ty, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let tok = self.texts[id as usize].as_str();
            if !frags
                .iter()
                .any(|f| matches!(f, Fragment::Text(s) if s.contains(tok)))
            {
                continue;
            }
            let rstrip = self.rstrip[id as usize];
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                let Fragment::Text(mut s) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(at) = s.find(tok) {
                    if at > 0 {
                        next.push(Fragment::Text(&s[..at]));
                    }
                    next.push(Fragment::Token(id));
                    s = &s[at + tok.len()..];
                    if rstrip {
                        s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
                    }
                }
                if !s.is_empty() {
                    next.push(Fragment::Text(s));
                }
            }
            frags = next;
        }
        frags
    }

    /// The bytes a token stands for as text; control, unknown, unused and undefined tokens
    /// have none (`None`), user-defined ones their text.
    pub fn piece(&self, id: u32) -> Option<Vec<u8>> {
        let i = id as usize;
        let text = self.texts.get(i)?;
        match self.types[i] {
            TokenType::Normal => Some(match self.model {
                Model::Spm => text.replace('\u{2581}', " ").into_bytes(),
                Model::Bpe { .. } => byte_level_decode(text),
            }),
            TokenType::Byte => {
                let hex = text.strip_prefix("<0x").and_then(|t| t.strip_suffix('>'));
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => Some(vec![b]),
                    None => Some(byte_level_decode(text)),
                }
            }
            TokenType::UserDefined => Some(text.clone().into_bytes()),
            _ => None,
        }
    }

    /// Text of a token sequence, special tokens left out; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if let Some(p) = self.piece(id) {
                bytes.extend_from_slice(&p);
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// What constrained decoding sees of each token: the bytes of a text token (normal and
    /// byte tokens); everything else is marked special with `marker` + its text, so a grammar
    /// can never produce it as text.
    pub fn token_bytes(&self, marker: u8) -> Vec<Vec<u8>> {
        (0..self.texts.len() as u32)
            .map(|id| match self.types[id as usize] {
                TokenType::Normal | TokenType::Byte => self.piece(id).unwrap_or_default(),
                _ => {
                    let mut v = vec![marker];
                    v.extend_from_slice(self.texts[id as usize].as_bytes());
                    v
                }
            })
            .collect()
    }
}

enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}
