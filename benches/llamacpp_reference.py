#!/usr/bin/env python3
"""Regenerate the llama.cpp reference fixtures lsmtune's real-model tests compare against.

    /tmp/llamacpp-venv/bin/python benches/llamacpp_reference.py MODEL.gguf OUT.json [--name N]

For one GGUF file, with llama.cpp (llama-cpp-python, 2 threads) as the reference, writes:
- tokenization: the token ids of every string of a fixed corpus (tests/fixtures/llamacpp/
  corpus.json, written by this script: prose, code, RocksDB OPTIONS text and option names,
  long numbers, CJK, emoji, whitespace runs, CRLF, chat-template special tokens), parsed with
  special tokens (what a prompt gets) and, for strings that contain markup, without;
- the chat prompt: a fixed conversation rendered with the file's own chat template (and its
  bos/eos texts) where it has one, and its token ids;
- logits: a 256-token greedy continuation of that prompt, with the top-20 log-probabilities at
  every position (full-softmax values);
- perplexity of a fixed text (a few hundred tokens), with the text's token ids.

The Rust tests (tests/real_models.rs) replay the same tokens through lsmtune and compare. CI runs
them without llama.cpp: only this script needs it. Setup: see benches/llm_vs_llamacpp.sh.
"""
import argparse
import glob
import json
import math
import os
import sys

import numpy as np
from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")


def corpus():
    """At least 200 strings covering what a tuning conversation and its models meet."""
    prose = [
        "The quick brown fox jumps over the lazy dog.",
        "RocksDB is an embeddable persistent key-value store for fast storage.",
        "Write amplification is the ratio of bytes written to storage to bytes written by the application.",
        "When the memtable fills up, it is flushed to an SST file in level zero.",
        "Compaction merges sorted runs and discards overwritten or deleted keys.",
        "A bloom filter lets point lookups skip files that cannot contain the key.",
        "Increasing the block cache reduces reads from disk when the working set fits in memory.",
        "Hello, world!",
        "It was the best of times, it was the worst of times.",
        "She sells sea shells by the sea shore.",
        "Don't stop believing; hold on to that feeling.",
        "The results were significant (p < 0.05), with a 95% confidence interval of [1.2, 3.4].",
        "Mr. Smith went to Washington D.C. on Jan. 5th, 2024.",
        "e.g., i.e., etc., vs. - abbreviations everywhere.",
        "Well... that's unexpected!?",
        "\"Quoted text\" and 'single quotes' and `backticks`.",
        "Tuning RocksDB is hard: there are more than one hundred options.",
        "Throughput rose from 120,000 ops/s to 250,000 ops/s after the change.",
        "The p99 latency dropped by 38 percent.",
        "A write stall happens when L0 has too many files or pending compaction bytes are too high.",
        "Use level-style compaction for read-heavy workloads and universal for write-heavy ones.",
        "Direct I/O bypasses the page cache; buffered I/O does not.",
        "The WAL (write-ahead log) makes writes durable before the memtable is flushed.",
        "Smaller memtables flush more often but keep L0 small.",
        "Answer in JSON only.",
        "You are a helpful assistant.",
        "Please propose at most six option changes with a short reasoning.",
        "THE END",
        "ALL CAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS #@!",
        "lowercase sentence without punctuation",
    ]
    code = [
        "fn main() {\n    println!(\"Hello, world!\");\n}",
        "def f(x):\n    return x * 2\n",
        "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        "#include <rocksdb/db.h>\nrocksdb::Options options;\noptions.create_if_missing = true;",
        "import json\nprint(json.dumps({\"a\": 1}))",
        "SELECT key, value FROM kv WHERE key > 'a' ORDER BY key LIMIT 10;",
        "let x: Vec<u32> = (0..10).map(|i| i * i).collect();",
        "if (status.ok()) { db->Put(WriteOptions(), key, value); }",
        "{\"reasoning\": \"raise the cache\", \"changes\": [{\"table.block_cache_size\": 536870912}]}",
        "{\"write_buffer_size\": 67108864, \"max_write_buffer_number\": 4}",
        "[{\"key\": \"compression\", \"value\": \"kLZ4Compression\"}]",
        "key: value\nlist:\n  - one\n  - two\n",
        "<html><body><p>text</p></body></html>",
        "x += 1; y -= 2; z *= 3; w /= 4;",
        "a && b || !c",
        "std::unique_ptr<DB> db;",
        "#!/usr/bin/env bash\nset -euo pipefail\necho \"$HOME\"",
        "  indented = True\n\tTabbed = False",
        "// comment\n/* block comment */",
        "println!(\"{:?}\", map.get(&key));",
        "x = [1, 2, 3]\ny = {k: v for k, v in zip(a, b)}",
        "pub struct Options { pub write_buffer_size: usize }",
        "match x { Some(v) => v, None => 0 }",
        "cargo test --release -- --ignored",
        "git log --oneline | head -5",
        "$ db_bench --benchmarks=fillrandom,readrandom --num=1000000",
        "\\n \\t \\\\ escapes",
        "0b1010 0o17 0xFF 1_000_000",
        "arr[i][j] = arr[i-1][j] + arr[i][j-1];",
        "λx.x → (λy.y) ≡ id",
    ]
    options_text = []
    for path in sorted(glob.glob(os.path.join(FIXTURES, "options", "*"))):
        try:
            lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
        except OSError:
            continue
        keep = [l for l in lines if l.strip()][:80:8]
        options_text.extend(keep)
    options_text = options_text[:40]
    options_text.append("[CFOptions \"default\"]\n  write_buffer_size=67108864\n  max_write_buffer_number=2\n")
    options_text.append("[TableOptions/BlockBasedTable \"default\"]\r\n  block_size=4096\r\n")
    names = [
        "write_buffer_size", "max_write_buffer_number", "min_write_buffer_number_to_merge",
        "level0_file_num_compaction_trigger", "level0_slowdown_writes_trigger",
        "level0_stop_writes_trigger", "target_file_size_base", "max_bytes_for_level_base",
        "max_background_jobs", "max_subcompactions", "bytes_per_sync", "wal_bytes_per_sync",
        "compaction_readahead_size", "table.block_cache_size", "table.filter_bits_per_key",
        "table.block_size", "table.cache_index_and_filter_blocks", "compression",
        "bottommost_compression", "compaction_style", "kCompactionStyleLevel",
        "kLZ4Compression", "kZSTD", "enable_pipelined_write", "allow_concurrent_memtable_write",
        "soft_pending_compaction_bytes_limit", "hard_pending_compaction_bytes_limit",
        "optimize_filters_for_hits", "level_compaction_dynamic_level_bytes",
        "use_direct_io_for_flush_and_compaction",
    ]
    kv = [f"{n}={v}" for n, v in zip(names[:10], ["64MB", "4", "2", "8", "20", "36", "67108864", "268435456", "4", "2"])]
    numbers = [
        "1234567890123456789", "3.14159265358979323846", "-0.000001", "1e-9", "6.02214076e23",
        "2,147,483,647", "0x7fffffff", "12:30:45", "2026-11-30", "99.9%", "100000", "1000000000",
        "4096 bytes", "64 MiB", "1.5x", "+20%", "v11.8.1", "192.168.0.1", "0", "007",
    ]
    cjk = [
        "你好，世界！", "数据库性能调优", "这是一个测试句子。", "日本語のテキストです。",
        "東京は日本の首都です。", "カタカナとひらがな", "안녕하세요 세계", "데이터베이스 튜닝",
        "中文English混合text", "漢字かな交じり文", "全角ＡＢＣ１２３", "。、！？「」",
        "RocksDB是一个键值存储", "性能提升了20%", "第1章 はじめに",
    ]
    emoji = [
        "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇯🇵🇺🇸", "RocksDB 🚀 fast", "❤️", "🔥🔥🔥", "✅ done ❌ failed",
        "emoji at end 🎉", "🙂 leading", "⚡️⚙️", "😀😃😄😁", "🤖 + 🧠 = ?", "★☆", "→ ← ↑ ↓",
    ]
    spaces = [
        "a  b", "a   b", "    leading", "trailing    ", "\t\ttabs", "\n\n\n", "a \n b",
        " ", "  ", "  \n  ", "a\n\n\nb", "x \t y", " \u00a0 nbsp", "word\u3000ideographic",
        "end with newline\n", "\n starts with newline", "many      spaces      here",
        "  two leading", "line\n    indented", "\t", "a b c d e f g",
    ]
    crlf = [
        "line1\r\nline2\r\n", "\r\n\r\n", "a\rb", "windows\r\nstyle\r\n\r\ntext",
        "mixed\nline\r\nendings\r", "  \r\n  ", "key=value\r\n", "\r", "end\r\n", "x\r\n\r\n\r\ny",
    ]
    specials = [
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>",
        "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>",
        "<|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>",
        "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n", "<bos>", "<eos>",
        "<s>[INST] hello [/INST]", "</s>", "<|user|>\nhi<|end|>\n<|assistant|>\n",
        "text<|im_end|>more", "a <|endoftext|> b", "<|im_start|>system\nYou tune RocksDB.<|im_end|>\n",
        "<unk>", "<pad>", "<|fim_prefix|>code<|fim_suffix|>",
    ]
    contractions = [
        "I'm here", "YOU'RE there", "it's fine", "We'LL see", "they've gone", "she'd know",
        "don't", "CAN'T", "O'Neil's", "rock'n'roll",
    ]
    scripts = [
        "café naïve résumé", "Привет, мир!", "Γειά σου Κόσμε", "مرحبا بالعالم", "नमस्ते दुनिया",
        "สวัสดีชาวโลก", "שלום עולם", "Ελληνικά και English", "Straße größer", "Zürich, São Paulo",
        "ñandú", "İstanbul ılık", "Ærøskøbing", "łódź", "combining é (e + ́)",
    ]
    edge = [
        "a", "A", ".", "...", "--", "__init__", "https://github.com/facebook/rocksdb/wiki/RocksDB-Tuning-Guide",
        "user@example.com", "| a | b |\n|---|---|\n| 1 | 2 |", "antidisestablishmentarianism",
        "a" * 100, "ab" * 50, "The end.\n",
    ]
    out = prose + code + options_text + names + kv + numbers + cjk + emoji + spaces + crlf + specials + contractions + scripts + edge
    return out


CONVERSATION = [
    {"role": "system", "content": "You are a RocksDB tuning expert. Answer with JSON only."},
    {"role": "user", "content": "Workload: readrandom, 300,000 keys of 16 + 400 bytes, 2 threads. "
     "Baseline: 180,000 ops/s, block cache hit rate 41%, no bloom filter. "
     "Propose up to three option changes as {\"reasoning\": ..., \"changes\": [{KEY: VALUE}]}."},
]

PERPLEXITY_TEXT = (
    "RocksDB keeps recent writes in an in-memory table called the memtable. When the memtable "
    "reaches its configured size, it becomes immutable and a background thread flushes it to a "
    "sorted string table on disk, in level zero. Files in level zero may overlap in key range, so "
    "a point lookup may have to check every one of them; that is why the number of level-zero "
    "files triggers compaction, and, past higher thresholds, slows down or stops writes. "
    "Compaction reads files from one level, merges them with the overlapping files of the next "
    "level, and writes new files, discarding overwritten values and deleted keys. Each byte the "
    "application writes may therefore be written many times to storage: this is write "
    "amplification. Reads, in turn, are served from the memtables, the block cache and the "
    "files; a bloom filter on each file answers most lookups for absent keys without reading a "
    "data block, and a larger block cache keeps more of the working set in memory. Tuning means "
    "choosing memtable sizes, level sizes, compaction triggers, the number of background jobs, "
    "compression and cache sizes so that the machine's memory, cores and disk are used well for "
    "the workload at hand, without stalls and without wasting space."
)


def render(template, bos, eos):
    import jinja2
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=False, lstrip_blocks=False)
    env.globals["raise_exception"] = lambda m: (_ for _ in ()).throw(Exception(m))
    return env.from_string(template).render(
        messages=CONVERSATION, add_generation_prompt=True, bos_token=bos, eos_token=eos)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--name", default=None)
    ap.add_argument("--gen", type=int, default=256)
    ap.add_argument("--vocab-only", action="store_true",
                    help="tokenization only (a GGUF without weights, e.g. spm-vocab.gguf)")
    args = ap.parse_args()

    llm = Llama(model_path=args.model, n_ctx=2048, n_threads=2, n_batch=512, logits_all=True,
                verbose=False, seed=0, vocab_only=args.vocab_only)
    meta = llm.metadata
    vocab_n = llm.n_vocab()
    add_bos = llm._model.add_bos_token() if hasattr(llm._model, "add_bos_token") else None

    strings = corpus()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    corpus_path = os.path.join(FIXTURES, "llamacpp", "corpus.json")
    with open(corpus_path, "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=False, indent=0)

    def tok(s, special):
        return llm.tokenize(s.encode("utf-8"), add_bos=False, special=special)

    tokens = [tok(s, True) for s in strings]
    plain = {str(i): tok(s, False) for i, s in enumerate(strings) if "<" in s}

    if args.vocab_only:
        out = {"model": args.name or os.path.basename(args.model), "n_vocab": vocab_n,
               "llama_cpp_python": __import__("llama_cpp").__version__,
               "corpus_tokens": tokens, "corpus_tokens_plain": plain}
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        print(f"{args.out}: {len(strings)} strings (tokenization only)", file=sys.stderr)
        return

    # The chat prompt with the file's own template, else the conversation as plain text.
    template = meta.get("tokenizer.chat_template")
    bos_id, eos_id = llm.token_bos(), llm.token_eos()
    piece = lambda t: llm._model.token_get_text(t) if t >= 0 else ""
    if template:
        prompt = render(template, piece(bos_id), piece(eos_id))
    else:
        prompt = None
    prompt_text = prompt if prompt is not None else CONVERSATION[1]["content"]
    prompt_tokens = llm.tokenize(prompt_text.encode("utf-8"), add_bos=True, special=True)

    # Greedy continuation with top-20 log-probabilities at every position.
    llm.reset()
    llm.eval(prompt_tokens)
    steps = []
    cur = list(prompt_tokens)
    for _ in range(args.gen):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        m = logits.max()
        logp = logits - m - math.log(np.exp(logits - m).sum())
        top = np.argsort(-logp)[:20]
        t = int(top[0])
        steps.append({"top": [[int(i), round(float(logp[i]), 5)] for i in top]})
        cur.append(t)
        llm.eval([t])
    continuation = [int(c) for c in cur[len(prompt_tokens):]]

    # Perplexity of a fixed text.
    ppl_tokens = llm.tokenize(PERPLEXITY_TEXT.encode("utf-8"), add_bos=True, special=False)
    llm.reset()
    llm.eval(ppl_tokens)
    nll = 0.0
    for i in range(len(ppl_tokens) - 1):
        logits = np.array(llm.scores[i], dtype=np.float64)
        m = logits.max()
        lse = m + math.log(np.exp(logits - m).sum())
        nll += lse - logits[ppl_tokens[i + 1]]
    ppl = math.exp(nll / (len(ppl_tokens) - 1))

    out = {
        "model": args.name or os.path.basename(args.model),
        "file_size": os.path.getsize(args.model),
        "llama_cpp_python": __import__("llama_cpp").__version__,
        "n_vocab": vocab_n,
        "corpus_tokens": tokens,
        "corpus_tokens_plain": plain,
        "chat_prompt": prompt,
        "prompt_tokens": [int(t) for t in prompt_tokens],
        "continuation": continuation,
        "steps": steps,
        "perplexity_text_tokens": [int(t) for t in ppl_tokens],
        "perplexity": ppl,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
    print(f"{args.out}: {len(strings)} strings, prompt {len(prompt_tokens)} tokens, "
          f"{len(continuation)} greedy steps, perplexity {ppl:.4f} over {len(ppl_tokens)} tokens",
          file=sys.stderr)


if __name__ == "__main__":
    main()
