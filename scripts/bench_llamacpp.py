#!/usr/bin/env python3
"""bench_llamacpp.py MODEL TEXT PREFILL DECODE THREADS — llama.cpp's prefill and decode
speed on the same file and text as tests/bench_llm.c (through llama-cpp-python).
Prints one line: prefill_tokens_per_s decode_tokens_per_s."""
import sys
import time

from llama_cpp import Llama

path, text, S, N, th = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
llm = Llama(model_path=path, n_ctx=S + N + 8, n_batch=512, n_threads=th, n_threads_batch=th, verbose=False)
ids = llm.tokenize(open(text, "rb").read(), add_bos=False, special=False)
best_p = best_d = 0.0
for _ in range(2):
    llm.reset()
    t = time.perf_counter()
    llm.eval(ids[:S])
    best_p = max(best_p, S / (time.perf_counter() - t))
    t = time.perf_counter()
    for i in range(N):
        llm.eval([ids[S + i]])
    best_d = max(best_d, N / (time.perf_counter() - t))
print(f"{best_p:.2f} {best_d:.2f}")
