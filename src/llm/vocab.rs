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
//! Unicode tables of `regex-syntax`.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};
use candle_core::quantized::gguf_file::Value;

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

/// Which regex family splits text into words before BPE (llama.cpp's pre-tokenizer types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// `'s|'t|... ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (gpt-2, phi-2).
    Gpt2,
    /// Each number character alone, then GPT-2's regex (smollm, starcoder).
    Smollm,
    /// Llama 3's regex: case-insensitive contractions, numbers in groups of up to three
    /// (llama3, llama-bpe, llama-v3).
    Llama3,
    /// Llama 3's regex with single-digit numbers (qwen2, deepseek-r1-qwen).
    Qwen2,
    /// llama.cpp's default: punctuation runs, GPT-2's regex, number runs, digit triples.
    Default,
}

impl PreTokenizer {
    /// The pre-tokenizer `tokenizer.ggml.pre` names, and whether whole words found in the
    /// vocabulary skip merging (`ignore_merges`).
    pub fn from_name(pre: &str) -> Option<(PreTokenizer, bool)> {
        Some(match pre {
            "" | "default" => (PreTokenizer::Default, false),
            "gpt-2" | "phi-2" => (PreTokenizer::Gpt2, false),
            "smollm" | "starcoder" => (PreTokenizer::Smollm, false),
            "llama3" | "llama-bpe" | "llama-v3" => (PreTokenizer::Llama3, true),
            "qwen2" | "deepseek-r1-qwen" => (PreTokenizer::Qwen2, false),
            _ => return None,
        })
    }

    /// The names this module understands, for error messages.
    pub const KNOWN: &'static str = "qwen2, deepseek-r1-qwen, llama3, llama-bpe, llama-v3, smollm, starcoder, gpt-2, phi-2, default";
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
        let content = candle_core::quantized::gguf_file::Content::read(&mut file)
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

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// The id of a token text as stored.
    pub fn id(&self, text: &str) -> Option<u32> {
        self.to_id.get(text).copied()
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

    /// Byte-level BPE of one pre-tokenized word (already in the byte-level alphabet).
    fn bpe(&self, word: &str, ignore_merges: bool, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if ignore_merges && let Some(&id) = self.to_id.get(word) {
            out.push(id);
            return;
        }
        // Symbols: byte ranges of `word`, linked; merged pairs are popped lowest rank first
        // (leftmost on ties) and dropped when stale.
        let bounds: Vec<usize> = word
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(word.len()))
            .collect();
        let n = bounds.len() - 1;
        let start = &bounds[..n];
        let mut len: Vec<usize> = (0..n).map(|i| bounds[i + 1] - bounds[i]).collect();
        let mut prev: Vec<isize> = (0..n as isize).map(|i| i - 1).collect();
        let mut next: Vec<isize> = (0..n as isize)
            .map(|i| if i + 1 < n as isize { i + 1 } else { -1 })
            .collect();
        let mut heap: BinaryHeap<Bigram> = BinaryHeap::new();
        let mut key = String::new();
        let rank_of = |l: usize, r: usize, len: &[usize], key: &mut String| {
            key.clear();
            key.push_str(&word[start[l]..start[l] + len[l]]);
            key.push(' ');
            key.push_str(&word[start[r]..start[r] + len[r]]);
            self.merges.get(key.as_str()).copied()
        };
        for i in 1..n {
            if let Some(rank) = rank_of(i - 1, i, &len, &mut key) {
                heap.push(Bigram {
                    order: -(rank as f64),
                    left: i - 1,
                    right: i,
                    size: len[i - 1] + len[i],
                });
            }
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (b.left, b.right);
            if len[l] == 0 || len[r] == 0 || next[l] != r as isize || len[l] + len[r] != b.size {
                continue;
            }
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if next[r] >= 0 {
                prev[next[r] as usize] = l as isize;
            }
            for (a, c) in [(prev[l], l as isize), (l as isize, next[l])] {
                if a >= 0
                    && c >= 0
                    && let Some(rank) = rank_of(a as usize, c as usize, &len, &mut key)
                {
                    heap.push(Bigram {
                        order: -(rank as f64),
                        left: a as usize,
                        right: c as usize,
                        size: len[a as usize] + len[c as usize],
                    });
                }
            }
        }
        let mut i = 0isize;
        while i >= 0 {
            let s = &word[start[i as usize]..start[i as usize] + len[i as usize]];
            match self.to_id.get(s) {
                Some(&id) => out.push(id),
                None => {
                    // Not in the vocabulary: each byte as its own token where one exists.
                    for b in s.bytes() {
                        if b.is_ascii()
                            && let Some(&id) = self.to_id.get(&(b as char).to_string())
                        {
                            out.push(id);
                        }
                    }
                }
            }
            i = next[i as usize];
        }
    }

    /// SentencePiece: merge adjacent pieces whose join is a token, highest score first
    /// (leftmost on ties); a piece left that is no token (a character outside the vocabulary)
    /// falls back to byte tokens.
    fn spm(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect();
        let n = bounds.len() - 1;
        let start = &bounds[..n];
        let mut len: Vec<usize> = (0..n).map(|i| bounds[i + 1] - bounds[i]).collect();
        let mut prev: Vec<isize> = (0..n as isize).map(|i| i - 1).collect();
        let mut next: Vec<isize> = (0..n as isize)
            .map(|i| if i + 1 < n as isize { i + 1 } else { -1 })
            .collect();
        let mut heap: BinaryHeap<Bigram> = BinaryHeap::new();
        let candidate = |l: isize, r: isize, len: &[usize]| -> Option<Bigram> {
            if l < 0 || r < 0 {
                return None;
            }
            let (l, r) = (l as usize, r as usize);
            let joined = &text[start[l]..start[l] + len[l] + len[r]];
            let id = *self.to_id.get(joined)?;
            Some(Bigram {
                order: self.scores[id as usize] as f64,
                left: l,
                right: r,
                size: joined.len(),
            })
        };
        heap.extend((1..n as isize).filter_map(|i| candidate(i - 1, i, &len)));
        while let Some(b) = heap.pop() {
            let (l, r) = (b.left, b.right);
            if len[l] == 0 || len[r] == 0 || len[l] + len[r] != b.size {
                continue;
            }
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if next[r] >= 0 {
                prev[next[r] as usize] = l as isize;
            }
            heap.extend(candidate(prev[l], l as isize, &len));
            heap.extend(candidate(l as isize, next[l], &len));
        }
        let mut i = 0isize;
        while i >= 0 {
            let piece = &text[start[i as usize]..start[i as usize] + len[i as usize]];
            match self.to_id.get(piece) {
                Some(&id) => out.push(id),
                None => out.extend(piece.bytes().filter_map(|b| self.byte_token(b))),
            }
            i = next[i as usize];
        }
    }

    /// The token of one raw byte: `<0xNN>` (SentencePiece), else the byte as a text.
    fn byte_token(&self, b: u8) -> Option<u32> {
        match self.model {
            Model::Spm => self
                .to_id
                .get(&format!("<0x{b:02X}>"))
                .copied()
                .or_else(|| {
                    b.is_ascii()
                        .then(|| self.to_id.get(&(b as char).to_string()).copied())
                        .flatten()
                }),
            Model::Bpe { .. } => self.to_id.get(&byte_level_char(b).to_string()).copied(),
        }
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

/// A candidate merge. `order` is what is maximized (SentencePiece: the joined token's score;
/// BPE: minus the merge rank); ties go to the leftmost pair.
struct Bigram {
    order: f64,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order
            .total_cmp(&other.order)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// GPT-2's byte-level alphabet: printable bytes stand for themselves, the others for code
/// points from U+0100 on, in byte order.
pub fn byte_level_char(b: u8) -> char {
    static TABLE: OnceLock<[char; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = ['\0'; 256];
        let mut next = 256u32;
        for b in 0..=255u8 {
            let printable = (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
            t[b as usize] = if printable {
                char::from(b)
            } else {
                let c = char::from_u32(next).unwrap_or('\u{FFFD}');
                next += 1;
                c
            };
        }
        t
    })[b as usize]
}

fn byte_level_encode(s: &str) -> String {
    s.bytes().map(byte_level_char).collect()
}

/// The bytes a byte-level spelling stands for; a character outside the alphabet stays as its
/// own UTF-8.
pub fn byte_level_decode(s: &str) -> Vec<u8> {
    static INVERSE: OnceLock<HashMap<char, u8>> = OnceLock::new();
    let inv = INVERSE.get_or_init(|| (0..=255u8).map(|b| (byte_level_char(b), b)).collect());
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match inv.get(&c) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Character classes and the pre-tokenizers' word splitting.

/// Sorted, inclusive code point ranges of a Unicode class.
fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    use regex_syntax::hir::{Class, HirKind};
    let hir = regex_syntax::parse(pattern).expect("a valid Unicode class");
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => Vec::new(),
    }
}

fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                Ordering::Less
            } else if lo > c {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    static L: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    in_ranges(L.get_or_init(|| class_ranges(r"\p{L}")), c)
}

fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    static N: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    in_ranges(N.get_or_init(|| class_ranges(r"\p{N}")), c)
}

fn is_punctuation(c: char) -> bool {
    static P: OnceLock<Vec<(u32, u32)>> = OnceLock::new();
    in_ranges(P.get_or_init(|| class_ranges(r"\p{P}")), c)
}

/// llama.cpp's `\s`: the Unicode White_Space property.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Class flags of the code point at `pos` of a piece `[.., end)`; `None` past the piece.
#[derive(Clone, Copy, Default)]
struct Flags {
    in_range: bool,
    letter: bool,
    number: bool,
    space: bool,
}

fn flags_at(cps: &[char], pos: usize, end: usize) -> Flags {
    if pos >= end {
        return Flags::default();
    }
    let c = cps[pos];
    Flags {
        in_range: true,
        letter: is_letter(c),
        number: is_number(c),
        space: is_space(c),
    }
}

/// Split `text` into the words BPE runs on.
fn split_words(text: &str, pre: PreTokenizer) -> Vec<&str> {
    let cps: Vec<char> = text.chars().collect();
    let mut pieces = vec![cps.len()];
    let stages: &[Stage] = match pre {
        PreTokenizer::Gpt2 => &[Stage::Gpt2],
        PreTokenizer::Smollm => &[Stage::EachOf(is_number), Stage::Gpt2],
        PreTokenizer::Llama3 => &[Stage::Llama3 { digits: 3 }],
        PreTokenizer::Qwen2 => &[Stage::Llama3 { digits: 1 }],
        PreTokenizer::Default => &[
            Stage::RunsOf(|c| is_punctuation(c) || "$+<=>^~|".contains(c)),
            Stage::Gpt2,
            Stage::RunsOf(is_number),
            Stage::DigitTriples,
        ],
    };
    for stage in stages {
        let mut out = Vec::with_capacity(pieces.len() * 2);
        let mut at = 0;
        for &len in &pieces {
            stage.split(&cps, at, at + len, &mut out);
            at += len;
        }
        pieces = out;
    }
    // Code point lengths back to byte slices of `text`.
    let mut words = Vec::with_capacity(pieces.len());
    let mut byte = 0;
    let mut cp = 0;
    let offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    for len in pieces {
        let end_cp = cp + len;
        let end_byte = offsets.get(end_cp).copied().unwrap_or(text.len());
        words.push(&text[byte..end_byte]);
        byte = end_byte;
        cp = end_cp;
    }
    words
}

enum Stage {
    /// GPT-2's regex.
    Gpt2,
    /// Llama 3's regex with numbers in groups of up to `digits`.
    Llama3 { digits: usize },
    /// Each code point of the class alone (`\p{N}`); the rest stays in runs.
    EachOf(fn(char) -> bool),
    /// Runs of the class isolated (`[...]+`).
    RunsOf(fn(char) -> bool),
    /// `[0-9][0-9][0-9]`, matched left to right.
    DigitTriples,
}

impl Stage {
    /// Split `cps[ini..end]`, pushing piece lengths (in code points) to `out`.
    fn split(&self, cps: &[char], ini: usize, end: usize, out: &mut Vec<usize>) {
        let mut last = ini;
        let mut emit = |to: usize, out: &mut Vec<usize>| {
            if to > last {
                out.push(to - last);
            }
            last = to;
        };
        match self {
            Stage::EachOf(class) => {
                for (p, &c) in cps.iter().enumerate().take(end).skip(ini) {
                    if class(c) {
                        emit(p, out);
                        emit(p + 1, out);
                    }
                }
                emit(end, out);
            }
            Stage::RunsOf(class) => {
                let mut p = ini;
                while p < end {
                    if class(cps[p]) {
                        emit(p, out);
                        while p < end && class(cps[p]) {
                            p += 1;
                        }
                        emit(p, out);
                    } else {
                        p += 1;
                    }
                }
                emit(end, out);
            }
            Stage::DigitTriples => {
                let mut p = ini;
                while p + 3 <= end {
                    if cps[p..p + 3].iter().all(|c| c.is_ascii_digit()) {
                        emit(p, out);
                        emit(p + 3, out);
                        p += 3;
                    } else {
                        p += 1;
                    }
                }
                emit(end, out);
            }
            Stage::Gpt2 | Stage::Llama3 { .. } => {
                let llama = match self {
                    Stage::Llama3 { digits } => Some(*digits),
                    _ => None,
                };
                let cp = |p: usize| if p < end { Some(cps[p]) } else { None };
                let fl = |p: usize| flags_at(cps, p, end);
                let mut pos = ini;
                while pos < end {
                    let c = cps[pos];
                    let f = fl(pos);
                    // 's 't 're 've 'm 'll 'd (case-insensitive in Llama 3's regex)
                    if c == '\'' && pos + 1 < end {
                        let low = |x: Option<char>| {
                            x.map(|x| {
                                if llama.is_some() {
                                    x.to_ascii_lowercase()
                                } else {
                                    x
                                }
                            })
                        };
                        let n1 = low(cp(pos + 1));
                        if matches!(n1, Some('s' | 't' | 'm' | 'd')) {
                            pos += 2;
                            emit(pos, out);
                            continue;
                        }
                        if pos + 2 < end {
                            let n2 = low(cp(pos + 2));
                            if matches!(
                                (n1, n2),
                                (Some('r'), Some('e'))
                                    | (Some('v'), Some('e'))
                                    | (Some('l'), Some('l'))
                            ) {
                                pos += 3;
                                emit(pos, out);
                                continue;
                            }
                        }
                    }
                    if let Some(digits) = llama {
                        // [^\r\n\p{L}\p{N}]?\p{L}+
                        if !(c == '\r' || c == '\n' || f.number) && (f.letter || fl(pos + 1).letter)
                        {
                            pos += 1;
                            while fl(pos).letter {
                                pos += 1;
                            }
                            emit(pos, out);
                            continue;
                        }
                        // \p{N}{1,digits}
                        if f.number {
                            let mut group = pos;
                            while fl(pos).number {
                                pos += 1;
                                if pos - group >= digits {
                                    emit(pos, out);
                                    group = pos;
                                }
                            }
                            emit(pos, out);
                            continue;
                        }
                        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
                        let mut f2 = if c == ' ' { fl(pos + 1) } else { f };
                        if !(f2.space || f2.letter || f2.number) && f.in_range {
                            if c == ' ' {
                                pos += 1;
                            }
                            while !(f2.space || f2.letter || f2.number) && f2.in_range {
                                pos += 1;
                                f2 = fl(pos);
                            }
                            while matches!(cp(pos), Some('\r' | '\n')) {
                                pos += 1;
                            }
                            emit(pos, out);
                            continue;
                        }
                        // \s*[\r\n]+ | \s+(?!\S) | \s+
                        let mut n = 0;
                        let mut after_newline = 0;
                        while fl(pos + n).space {
                            if matches!(cp(pos + n), Some('\r' | '\n')) {
                                after_newline = pos + n + 1;
                            }
                            n += 1;
                        }
                        if after_newline > 0 {
                            pos = after_newline;
                            emit(pos, out);
                            continue;
                        }
                        if n > 1 && pos + n < end {
                            pos += n - 1;
                            emit(pos, out);
                            continue;
                        }
                        if n > 0 {
                            pos += n;
                            emit(pos, out);
                            continue;
                        }
                        pos += 1;
                        emit(pos, out);
                        continue;
                    }
                    // GPT-2: ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
                    let mut f2 = if c == ' ' { fl(pos + 1) } else { f };
                    let class: Option<fn(&Flags) -> bool> = if f2.letter {
                        Some(|f| f.letter)
                    } else if f2.number {
                        Some(|f| f.number)
                    } else if !(f2.space || f2.letter || f2.number) && f2.in_range {
                        Some(|f| !(f.space || f.letter || f.number) && f.in_range)
                    } else {
                        None
                    };
                    if let Some(class) = class {
                        if c == ' ' {
                            pos += 1;
                        }
                        while class(&f2) {
                            pos += 1;
                            f2 = fl(pos);
                        }
                        emit(pos, out);
                        continue;
                    }
                    // \s+(?!\S) | \s+
                    let mut n = 0;
                    while fl(pos + n).space {
                        n += 1;
                    }
                    if n > 1 && pos + n < end {
                        pos += n - 1;
                    } else if n > 0 {
                        pos += n;
                    } else {
                        pos += 1;
                    }
                    emit(pos, out);
                }
                emit(end, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, pre: PreTokenizer) -> Vec<&str> {
        split_words(text, pre)
    }

    #[test]
    fn gpt2_words() {
        assert_eq!(
            words("Hello world's  end\n\n 42x", PreTokenizer::Gpt2),
            ["Hello", " world", "'s", " ", " end", "\n\n", " 42", "x"]
        );
    }

    #[test]
    fn qwen2_and_llama3_numbers_and_newlines() {
        assert_eq!(
            words("abc 12345\n\n  x", PreTokenizer::Qwen2),
            ["abc", " ", "1", "2", "3", "4", "5", "\n\n", " ", " x"]
        );
        assert_eq!(
            words("abc 12345 I'M", PreTokenizer::Llama3),
            ["abc", " ", "123", "45", " I", "'M"]
        );
        assert_eq!(
            words("x = {a: 1};\n", PreTokenizer::Llama3),
            ["x", " =", " {", "a", ":", " ", "1", "};\n"]
        );
    }

    #[test]
    fn smollm_isolates_each_digit() {
        assert_eq!(
            words("v 2048ms", PreTokenizer::Smollm),
            ["v", " ", "2", "0", "4", "8", "ms"]
        );
    }

    #[test]
    fn default_splits_punctuation_and_digit_triples() {
        assert_eq!(
            words("a+b 1234567", PreTokenizer::Default),
            ["a", "+", "b", " ", "123", "456", "7"]
        );
    }

    #[test]
    fn byte_level_alphabet_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let s: String = all.iter().map(|&b| byte_level_char(b)).collect();
        assert_eq!(byte_level_decode(&s), all);
        assert_eq!(byte_level_char(b' '), 'Ġ');
        assert_eq!(byte_level_char(b'\n'), 'Ċ');
    }

    #[test]
    fn unicode_classes() {
        assert!(is_letter('é') && is_letter('中') && !is_letter('1') && !is_letter('😀'));
        assert!(is_number('٣') && is_number('½') && !is_number('a'));
        assert!(is_space('\u{3000}') && is_space('\u{85}') && !is_space('x'));
        assert!(is_punctuation('!') && is_punctuation('。') && !is_punctuation('$'));
    }
}
