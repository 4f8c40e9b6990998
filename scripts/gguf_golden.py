#!/usr/bin/env python3
"""gguf_golden.py — golden token ids and logits from llama.cpp (PyPI llama-cpp-python)
for the GGUF runner's tests (tests/test_llm.c reads the output).

    pip install llama-cpp-python          # builds llama.cpp from source (~10 min on 2 cores)
    make model
    python3 scripts/gguf_golden.py build/model/SmolLM2-135M-Instruct.Q4_1.gguf > tests/data/gguf_golden.json

For each prompt: llama.cpp's token ids (special tokens parsed, no BOS — the file says
add_bos_token = false), the top-10 logits after the prompt, the greedy continuation of
NEW tokens and the logit of each greedy token; for a few extra texts, the token ids alone;
the top-10 logits of the first prompt from scripts/gguf_reference.py (an independent
NumPy float64 forward pass on the same dequantised weights: the tight check, since llama.cpp
rounds activations to Q8_1 and so differs from an exact f32 pass by up to ~0.3 in a logit);
and the perplexity of the first PPL_TOKENS tokens of /usr/share/common-licenses/GPL-3
(one window, every position scored, f16 KV cache as llama.cpp defaults to).
Single-threaded, deterministic."""
import hashlib
import json
import math
import os
import sys

import llama_cpp
import numpy as np
from llama_cpp import Llama

NEW = 16
TOPK = 10
PPL_TOKENS = 512
PROMPTS = [
    "The capital of France is",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 12 times 7?<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
]
TOKENIZE_ONLY = [
    "Hello,  world!\n\n  It's 2024: café — naïve “quotes”, 3.14159 and tabs\there.",
    "   leading and trailing   ",
    "def f(x):\n    return x**2  # square\n",
    "We'll see; they've gone, I'm sure you'd agree -- won't we?",
]


def main():
    path = sys.argv[1]
    llm = Llama(model_path=path, n_ctx=1024, n_batch=512, n_threads=1, logits_all=True, verbose=False, seed=0)
    out = {
        "generator": "scripts/gguf_golden.py",
        "command": "python3 scripts/gguf_golden.py build/model/SmolLM2-135M-Instruct.Q4_1.gguf > tests/data/gguf_golden.json",
        "llama_cpp_python": llama_cpp.__version__,
        "model_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "kv_cache": "f16",
        "prompts": [],
        "tokenize": [],
    }
    V = llm.n_vocab()
    for p in PROMPTS:
        ids = llm.tokenize(p.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(ids)
        last = list(llm.scores[len(ids) - 1][:V])
        top = sorted(range(V), key=lambda i: (-last[i], i))[:TOPK]
        gen, gen_logit = [], []
        cur = last
        for _ in range(NEW):
            t = max(range(V), key=lambda i: (cur[i], -i))
            gen.append(t)
            gen_logit.append(float(cur[t]))
            llm.eval([t])
            cur = list(llm.scores[llm.n_tokens - 1][:V])
        out["prompts"].append({
            "text": p,
            "ids": ids,
            "top_ids": top,
            "top_logits": [float(last[i]) for i in top],
            "greedy_ids": gen,
            "greedy_logits": gen_logit,
        })
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gguf_reference import forward_logits

    ids0 = out["prompts"][0]["ids"]
    ref = forward_logits(path, ids0)
    rtop = sorted(range(V), key=lambda i: (-ref[i], i))[:TOPK]
    out["numpy_reference"] = {"ids": ids0, "top_ids": rtop, "top_logits": [float(ref[i]) for i in rtop]}
    for t in TOKENIZE_ONLY:
        out["tokenize"].append({"text": t, "ids": llm.tokenize(t.encode(), add_bos=False, special=True)})
    gpl = open("/usr/share/common-licenses/GPL-3", "rb").read()
    ids = llm.tokenize(gpl, add_bos=False, special=False)[:PPL_TOKENS]
    llm.reset()
    llm.eval(ids)
    sc = np.asarray(llm.scores[: len(ids) - 1, :V], dtype=np.float64)
    m = sc.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(sc - m).sum(axis=1, keepdims=True)))[:, 0]
    nll = float((lse - sc[np.arange(len(ids) - 1), ids[1:]]).sum())
    out["gpl3"] = {
        "sha256": hashlib.sha256(gpl).hexdigest(),
        "tokens": len(ids),
        "first_ids": ids[:32],
        "perplexity": math.exp(nll / (len(ids) - 1)),
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
