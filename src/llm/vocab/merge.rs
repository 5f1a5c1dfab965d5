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
        // Merged pairs are popped lowest rank first (leftmost on ties) and dropped when stale.
        let mut sym = Symbols::of(word);
        let mut heap: BinaryHeap<Bigram> = BinaryHeap::new();
        let mut key = String::new();
        let rank_of = |l: usize, r: usize, sym: &Symbols, key: &mut String| {
            key.clear();
            key.push_str(sym.text(word, l));
            key.push(' ');
            key.push_str(sym.text(word, r));
            self.merges.get(key.as_str()).copied()
        };
        for i in 1..sym.count() {
            if let Some(rank) = rank_of(i - 1, i, &sym, &mut key) {
                heap.push(Bigram {
                    order: -(rank as f64),
                    left: i - 1,
                    right: i,
                    size: sym.len[i - 1] + sym.len[i],
                });
            }
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (b.left, b.right);
            if !sym.still(&b) || sym.next[l] != r as isize {
                continue;
            }
            sym.merge(l, r);
            for (a, c) in [(sym.prev[l], l as isize), (l as isize, sym.next[l])] {
                if a >= 0
                    && c >= 0
                    && let Some(rank) = rank_of(a as usize, c as usize, &sym, &mut key)
                {
                    heap.push(Bigram {
                        order: -(rank as f64),
                        left: a as usize,
                        right: c as usize,
                        size: sym.len[a as usize] + sym.len[c as usize],
                    });
                }
            }
        }
        for i in sym.live() {
            let s = sym.text(word, i);
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
        }
    }

    /// SentencePiece: merge adjacent pieces whose join is a token, highest score first
    /// (leftmost on ties); a piece left that is no token (a character outside the vocabulary)
    /// falls back to byte tokens.
    pub(super) fn spm(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let mut sym = Symbols::of(text);
        let mut heap: BinaryHeap<Bigram> = BinaryHeap::new();
        let candidate = |l: isize, r: isize, sym: &Symbols| -> Option<Bigram> {
            if l < 0 || r < 0 {
                return None;
            }
            let (l, r) = (l as usize, r as usize);
            let joined = &text[sym.start[l]..sym.start[l] + sym.len[l] + sym.len[r]];
            let id = *self.to_id.get(joined)?;
            Some(Bigram {
                order: self.scores[id as usize] as f64,
                left: l,
                right: r,
                size: joined.len(),
            })
        };
        heap.extend((1..sym.count() as isize).filter_map(|i| candidate(i - 1, i, &sym)));
        while let Some(b) = heap.pop() {
            if !sym.still(&b) {
                continue;
            }
            let l = b.left;
            sym.merge(l, b.right);
            heap.extend(candidate(sym.prev[l], l as isize, &sym));
            heap.extend(candidate(l as isize, sym.next[l], &sym));
        }
        for i in sym.live() {
            let piece = sym.text(text, i);
            match self.to_id.get(piece) {
                Some(&id) => out.push(id),
                None => out.extend(piece.bytes().filter_map(|b| self.byte_token(b))),
            }
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
/// The symbols of a text being merged, one per character to begin with: byte ranges linked
/// left to right; a symbol merged into its left neighbour keeps length 0.
struct Symbols {
    start: Vec<usize>,
    len: Vec<usize>,
    prev: Vec<isize>,
    next: Vec<isize>,
}

impl Symbols {
    fn of(text: &str) -> Symbols {
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect();
        let n = bounds.len() - 1;
        Symbols {
            start: bounds[..n].to_vec(),
            len: (0..n).map(|i| bounds[i + 1] - bounds[i]).collect(),
            prev: (0..n as isize).map(|i| i - 1).collect(),
            next: (0..n as isize)
                .map(|i| if i + 1 < n as isize { i + 1 } else { -1 })
                .collect(),
        }
    }

    /// How many symbols there were to begin with.
    fn count(&self) -> usize {
        self.start.len()
    }

    /// Symbol `i` as text.
    fn text<'t>(&self, text: &'t str, i: usize) -> &'t str {
        &text[self.start[i]..self.start[i] + self.len[i]]
    }

    /// Whether a candidate pair is still as it was queued: both sides alive, same total size.
    fn still(&self, b: &Bigram) -> bool {
        let (l, r) = (self.len[b.left], self.len[b.right]);
        l != 0 && r != 0 && l + r == b.size
    }

    /// Merge symbol `r` into its left neighbour `l`.
    fn merge(&mut self, l: usize, r: usize) {
        self.len[l] += self.len[r];
        self.len[r] = 0;
        self.next[l] = self.next[r];
        if self.next[r] >= 0 {
            self.prev[self.next[r] as usize] = l as isize;
        }
    }

    /// The symbols left, in order.
    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors((self.count() > 0).then_some(0usize), |&i| {
            usize::try_from(self.next[i]).ok()
        })
    }
}

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
