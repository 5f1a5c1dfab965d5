//! The two merging algorithms of a [`Vocab`]: byte-level BPE (pairs merged by rank, lowest
//! first) and SentencePiece (pieces merged by score, highest first, with `<0xNN>` byte
//! fallback), both as llama.cpp's llama-vocab.cpp runs them, on a heap of candidate pairs.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::pretok::byte_level_char;
use super::{Model, Vocab};

impl Vocab {
    /// Byte-level BPE of one pre-tokenized word (already in the byte-level alphabet).
    pub(super) fn bpe(&self, word: &str, ignore_merges: bool, out: &mut Vec<u32>) {
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
    pub(super) fn spm(&self, text: &str, out: &mut Vec<u32>) {
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
