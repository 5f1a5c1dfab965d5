//! Pre-tokenizers: how text is split into the words BPE runs on (the regex families
//! `tokenizer.ggml.pre` names, implemented by hand over Unicode character classes from
//! `regex-syntax`, as llama.cpp's unicode.cpp does), and GPT-2's byte-level alphabet.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::OnceLock;

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

pub(super) fn byte_level_encode(s: &str) -> String {
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
pub(super) fn split_words(text: &str, pre: PreTokenizer) -> Vec<&str> {
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
