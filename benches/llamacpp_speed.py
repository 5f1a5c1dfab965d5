"""Prefill and decode speed of llama.cpp (via llama-cpp-python) on a GGUF file, measured the way
`lsmtune llm bench` measures candle: a prompt of about N tokens from an empty cache, then exactly
M greedy tokens, repeated. Prints one JSON line.

    python benches/llamacpp_speed.py MODEL.gguf [prompt_tokens] [gen_tokens] [repeats] [threads]
"""
import json
import statistics
import sys
import time

import llama_cpp

path = sys.argv[1]
prompt_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 128
gen_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 64
repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2

llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads,
                      n_ctx=max(1024, prompt_tokens + gen_tokens + 64), n_batch=512, verbose=False)
text = b"Tune RocksDB for a write-heavy workload. "
while len(llm.tokenize(text)) < prompt_tokens:
    text += b"Compaction, memtables, block cache, bloom filters and write stalls. "
tokens = llm.tokenize(text)

prefill, decode = [], []
for _ in range(repeats):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(tokens)
    t1 = time.perf_counter()
    for _ in range(gen_tokens):
        tok = llm.sample(top_k=1, temp=0.0)
        llm.eval([tok])
    t2 = time.perf_counter()
    prefill.append(len(tokens) / (t1 - t0))
    decode.append(gen_tokens / (t2 - t1))


def summary(xs):
    return {"mean": statistics.mean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs)}


print(json.dumps({"engine": "llama.cpp " + llama_cpp.__version__, "model": path,
                  "prompt_tokens": len(tokens), "gen_tokens": gen_tokens,
                  "prefill_tok_s": summary(prefill), "decode_tok_s": summary(decode)}))
