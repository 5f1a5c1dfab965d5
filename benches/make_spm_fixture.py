#!/usr/bin/env python3
"""Write a small SentencePiece-vocabulary GGUF (no weights) for the tokenizer tests.

    python3 benches/make_spm_fixture.py GEMMA3.gguf tests/fixtures/llamacpp/spm-vocab.gguf [N]

Keeps the first N tokens (default 16384) of a real SentencePiece vocabulary (Gemma 3's: its
control and unused tokens, the 256 byte tokens, then the most frequent pieces), with their
scores and types, under minimal `llama` hyperparameters so llama.cpp loads it with
vocab_only=True. benches/llamacpp_reference.py --vocab-only then records llama.cpp's token ids
on the corpus for it. Needs the `gguf` package (PyPI).
"""
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter

src, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 16384
r = GGUFReader(src)
f = r.fields
tokens = [bytes(f["tokenizer.ggml.tokens"].parts[i]) for i in f["tokenizer.ggml.tokens"].data][:n]
scores = [float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data][:n]
types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data][:n]
scalar = lambda k: f[k].parts[f[k].data[0]][0]

w = GGUFWriter(out, "llama")
w.add_name("spm-vocab-fixture")
w.add_context_length(2048)
w.add_embedding_length(64)
w.add_block_count(1)
w.add_feed_forward_length(128)
w.add_head_count(1)
w.add_head_count_kv(1)
w.add_layer_norm_rms_eps(1e-6)
w.add_tokenizer_model("llama")
w.add_tokenizer_pre("default")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(int(scalar("tokenizer.ggml.bos_token_id")))
w.add_eos_token_id(int(scalar("tokenizer.ggml.eos_token_id")))
w.add_unk_token_id(int(scalar("tokenizer.ggml.unknown_token_id")))
w.add_pad_token_id(int(scalar("tokenizer.ggml.padding_token_id")))
w.add_add_bos_token(True)
# Gemma writes no prefix space; the llama.cpp default for SentencePiece is to add one, which is
# the path a Llama 2 / Mistral vocabulary takes: test that one.
w.add_add_space_prefix(True)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(out, len(tokens), "tokens")
