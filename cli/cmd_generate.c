/* cmd_generate.c — `kvsim generate`: greedy text generation from a GGUF
 * llama model, with any method's attention in the decode loop (the prompt
 * is processed densely, the method's stage 1 runs at its end, every decode
 * step attends through the method). */
#include "cli.h"
#include "llm.h"
#include "rope_opts.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_GGUF KVSIM_DATADIR "/build/model/SmolLM2-135M-Instruct.Q4_1.gguf"

static void help(void)
{
    printf("usage: kvsim generate --prompt TEXT [--gguf FILE] [--max-new N] [--greedy] [--chat]\n"
           "                      [--method X --budget T] [--dtype D] [--window W] [--ids] [--json]\n\n"
           "Greedy generation with a GGUF llama model (default: the SmolLM2-135M-Instruct file that\n"
           "`make model` fetches). With --method, every decode step attends through that method's\n"
           "selection over the real KV cache; the prompt itself is processed with dense attention.\n\n"
           "  --gguf FILE        model file (%s)\n"
           "  --prompt TEXT      the prompt (control tokens like <|im_start|> are recognised)\n"
           "  --max-new N        tokens to generate (32)\n"
           "  --greedy           argmax decoding (the only decoding implemented; accepted for clarity)\n"
           "  --chat             wrap the prompt in the model's chat template (one user turn)\n"
           "  --method X         full, exact-topk, streaming, snapkv, snapkv-gqa, quest, sparq, hsa,\n"
           "                     rocketkv, rocketkv-mt (dense attention when absent)\n"
           "  --budget T         token budget of the method (256)\n"
           "  --dtype D          KV cache storage: bf16, fp16, fp32 (bf16)\n"
           "  --window W         override the method's observation window\n"
           "  --ignore-eos       keep generating after the end-of-turn token\n"
           "  --ids              also print the prompt and generated token ids\n"
           "  --json             one JSON object: prompt ids, generated ids, text, timings\n"
           "  --threads N        BLAS threads (number of CPUs)\n",
           DEFAULT_GGUF);
    cli_rope_help();
}

int cmd_generate(int argc, char **argv)
{
    static const char *const flags[] = {"help", "greedy", "chat", "ids", "json", "ignore-eos", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim generate", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *path = cli_opt_str(&o, "gguf", DEFAULT_GGUF);
    const char *prompt = cli_opt_str(&o, "prompt", NULL);
    const char *method = cli_opt_str(&o, "method", NULL);
    const char *dts = cli_opt_str(&o, "dtype", "bf16");
    int64_t max_new, budget, window, threads;
    /* --max-new is checked against the model's context_length once the prompt is tokenized */
    if (cli_opt_i64_in(&o, "max-new", 32, 0, INT32_MAX, &max_new) ||
        cli_opt_i64_in(&o, "budget", 256, 1, INT32_MAX, &budget) ||
        cli_opt_i64_in(&o, "window", -1, 1, (int64_t)1 << 24, &window) ||
        cli_opt_i64_in(&o, "threads", 0, 0, 64, &threads))
        return CLI_USAGE;
    (void)cli_opt_flag(&o, "greedy");
    const int chat = cli_opt_flag(&o, "chat"), show_ids = cli_opt_flag(&o, "ids"), json = cli_opt_flag(&o, "json"),
              ignore_eos = cli_opt_flag(&o, "ignore-eos");
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    llm_rope_override rov;
    if (cli_rope_opts(&o, &rov) != 0 || cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    if (!prompt) {
        cli_error(o.prog, "--prompt is required (kvsim generate --help)");
        return CLI_USAGE;
    }
    rkv_dtype dt;
    if (rkv_dtype_parse(dts, &dt) != 0 || (dt != RKV_DTYPE_BF16 && dt != RKV_DTYPE_FP16 && dt != RKV_DTYPE_FP32)) {
        cli_error(o.prog, "--dtype: expected bf16, fp16 or fp32, got '%s'", dts);
        return CLI_USAGE;
    }
    kv_err err;
    llm_model *m = NULL;
    llm_session *s = NULL;
    int32_t *ids = NULL, *gen = NULL;
    float *logits = NULL;
    char *text = NULL;
    int rc = CLI_FAIL;
    double t0 = kv_now_s();
    if (llm_model_load(path, &m, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        return CLI_FAIL;
    }
    if (llm_model_set_rope(m, &rov, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        llm_model_free(m);
        return CLI_USAGE;
    }
    const double t_load = kv_now_s() - t0;
    const int64_t mctx = llm_model_max_context(m); /* context_length, or RoPE scaling's */
    size_t tl = strlen(prompt) + 4096;
    text = malloc(tl);
    if (!text) goto out;
    if (chat) {
        if (llm_chat_format(m->tok, NULL, prompt, text, tl) < 0) {
            cli_error(o.prog, "%s: the chat template is not one this runner knows (ChatML)", path);
            goto out;
        }
    } else {
        snprintf(text, tl, "%s", prompt);
    }
    const int64_t cap = (int64_t)strlen(text) + 16;
    ids = malloc((size_t)cap * sizeof *ids);
    if (max_new > mctx) { /* before the allocation it sizes */
        cli_error(o.prog, "--max-new: %lld is out of range; allowed [0, %lld] (the model's context)",
                  (long long)max_new, (long long)mctx);
        rc = CLI_USAGE;
        goto out;
    }
    gen = malloc((size_t)(max_new + 1) * sizeof *gen);
    logits = malloc((size_t)m->c.vocab * sizeof *logits);
    if (!ids || !gen || !logits) goto out;
    const int64_t n = llm_tokenize(m->tok, text, strlen(text), ids, cap);
    if (n < 1) {
        cli_error(o.prog, "the prompt tokenizes to nothing");
        rc = CLI_USAGE;
        goto out;
    }
    if (n + max_new > mctx) {
        cli_error(o.prog, "--prompt (%lld tokens) + --max-new %lld = %lld tokens; the model's context is %lld",
                  (long long)n, (long long)max_new, (long long)(n + max_new), (long long)mctx);
        rc = CLI_USAGE;
        goto out;
    }
    if (window > n) { /* the observation window is the prompt's last W queries */
        cli_error(o.prog, "--window: %lld is out of range; allowed [1, %lld] (the prompt's tokens)", (long long)window,
                  (long long)n);
        rc = CLI_USAGE;
        goto out;
    }
    rkv_params params;
    llm_session_cfg sc = {.max_tokens = n + max_new + 1, .kv_dtype = dt, .threads = (int)threads};
    if (method) {
        rkv_request rq;
        rkv_request_defaults(&rq);
        rq.d = m->c.head_dim;
        rq.G = m->c.n_head / m->c.n_kv_head;
        rq.context = n;
        rq.max_new = max_new;
        rq.budget = budget;
        rq.kv_dtype = dt;
        rq.model_max_len = 0;
        if (window > 0) rq.window = window;
        if (rkv_params_resolve(method, &rq, &params, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            rc = CLI_USAGE;
            goto out;
        }
        sc.method = &params;
    }
    if (llm_session_new(m, &sc, &s, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        goto out;
    }
    double t1 = kv_now_s();
    if (llm_prefill(s, ids, n, logits, 0, 1, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        goto out;
    }
    const double t_prefill = kv_now_s() - t1;
    int64_t ng = 0;
    t1 = kv_now_s();
    if (!json) {
        fwrite(text, 1, strlen(text), stdout);
        fflush(stdout);
    }
    while (ng < max_new) {
        int32_t next = llm_argmax(logits, m->c.vocab);
        gen[ng++] = next;
        if (!ignore_eos && (next == llm_token_eos(m->tok) || next == llm_token_eot(m->tok)))
            break;
        if (!json) {
            size_t bl;
            const char *b = llm_token_bytes(m->tok, next, &bl);
            fwrite(b, 1, bl, stdout);
            fflush(stdout);
        }
        if (ng == max_new)
            break;
        if (llm_decode(s, next, logits, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            goto out;
        }
    }
    const double t_decode = kv_now_s() - t1;
    const int64_t nd = ng > 1 ? ng - 1 : 0; /* decode forwards run */
    if (json) {
        kv_json j;
        kv_json_init(&j, stdout);
        kv_json_obj_begin(&j);
        kv_json_key(&j, "model"); kv_json_str(&j, path);
        kv_json_key(&j, "method"); kv_json_str(&j, method ? method : "dense");
        kv_json_key(&j, "budget"); if (method) kv_json_int(&j, budget); else kv_json_null(&j);
        kv_json_key(&j, "prompt_ids"); kv_json_arr_begin(&j);
        for (int64_t i = 0; i < n; i++) kv_json_int(&j, ids[i]);
        kv_json_arr_end(&j);
        kv_json_key(&j, "generated_ids"); kv_json_arr_begin(&j);
        for (int64_t i = 0; i < ng; i++) kv_json_int(&j, gen[i]);
        kv_json_arr_end(&j);
        char *out = malloc((size_t)ng * 64 + 1);
        size_t on = 0;
        for (int64_t i = 0; out && i < ng; i++) {
            size_t bl;
            const char *b = llm_token_bytes(m->tok, gen[i], &bl);
            if (bl > 64) bl = 64;
            memcpy(out + on, b, bl);
            on += bl;
        }
        if (out) { out[on] = '\0'; kv_json_key(&j, "text"); kv_json_str(&j, out); }
        free(out);
        kv_json_key(&j, "load_s"); kv_json_num(&j, t_load);
        kv_json_key(&j, "prefill_tokens_per_s"); kv_json_num(&j, (double)n / t_prefill);
        kv_json_key(&j, "decode_tokens_per_s"); nd > 0 ? kv_json_num(&j, (double)nd / t_decode) : kv_json_null(&j);
        kv_json_obj_end(&j);
        printf("\n");
    } else {
        printf("\n");
        if (show_ids) {
            printf("prompt ids:");
            for (int64_t i = 0; i < n; i++) printf(" %d", ids[i]);
            printf("\ngenerated ids:");
            for (int64_t i = 0; i < ng; i++) printf(" %d", gen[i]);
            printf("\n");
        }
        fprintf(stderr, "kvsim generate: load %.2f s; prefill %lld tokens %.1f tok/s; decode %lld tokens %.1f tok/s%s%s\n",
                t_load, (long long)n, (double)n / t_prefill, (long long)nd, nd > 0 ? (double)nd / t_decode : 0.0,
                method ? "; method " : "", method ? method : "");
    }
    rc = CLI_OK;
out:
    llm_session_free(s);
    llm_model_free(m);
    free(ids); free(gen); free(logits); free(text);
    return rc;
}
