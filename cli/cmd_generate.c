/* cmd_generate.c — `kvsim generate`: greedy text generation from a GGUF
 * llama model, with any method's attention in the decode loop (the prompt
 * is processed densely, the method's stage 1 runs at its end, every decode
 * step attends through the method). Flags in, llm_generate (llm/llm_gen.h)
 * runs it, text or JSON out. */
#include "cli.h"
#include "llm_gen.h"
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

static void stream(void *ctx, const char *b, size_t n)
{
    (void)ctx;
    fwrite(b, 1, n, stdout);
    fflush(stdout);
}

static void print_json(const char *path, const llm_gen_cfg *c, const llm_gen_result *r)
{
    kv_json j;
    kv_json_init(&j, stdout);
    kv_json_obj_begin(&j);
    kv_json_key(&j, "model"); kv_json_str(&j, path);
    kv_json_key(&j, "method"); kv_json_str(&j, c->method ? c->method : "dense");
    kv_json_key(&j, "budget"); if (c->method) kv_json_int(&j, c->budget); else kv_json_null(&j);
    kv_json_key(&j, "prompt_ids"); kv_json_arr_begin(&j);
    for (int64_t i = 0; i < r->n_prompt; i++) kv_json_int(&j, r->prompt_ids[i]);
    kv_json_arr_end(&j);
    kv_json_key(&j, "generated_ids"); kv_json_arr_begin(&j);
    for (int64_t i = 0; i < r->n; i++) kv_json_int(&j, r->ids[i]);
    kv_json_arr_end(&j);
    kv_json_key(&j, "text"); kv_json_str(&j, r->gen_text);
    kv_json_key(&j, "load_s"); kv_json_num(&j, r->load_s);
    kv_json_key(&j, "prefill_tokens_per_s"); kv_json_num(&j, (double)r->n_prompt / r->prefill_s);
    kv_json_key(&j, "decode_tokens_per_s");
    r->n_decode > 0 ? kv_json_num(&j, (double)r->n_decode / r->decode_s) : kv_json_null(&j);
    kv_json_obj_end(&j);
    printf("\n");
}

static void print_text(const llm_gen_cfg *c, const llm_gen_result *r, int show_ids)
{
    printf("\n");
    if (show_ids) {
        printf("prompt ids:");
        for (int64_t i = 0; i < r->n_prompt; i++) printf(" %d", r->prompt_ids[i]);
        printf("\ngenerated ids:");
        for (int64_t i = 0; i < r->n; i++) printf(" %d", r->ids[i]);
        printf("\n");
    }
    const int64_t n = r->n_prompt, nd = r->n_decode;
    fprintf(stderr, "kvsim generate: load %.2f s; prefill %lld tokens %.1f tok/s; decode %lld tokens %.1f tok/s%s%s\n",
            r->load_s, (long long)n, (double)n / r->prefill_s, (long long)nd, nd > 0 ? (double)nd / r->decode_s : 0.0,
            c->method ? "; method " : "", c->method ? c->method : "");
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
    const char *dts = cli_opt_str(&o, "dtype", "bf16");
    llm_gen_cfg c = {.prompt = cli_opt_str(&o, "prompt", NULL), .method = cli_opt_str(&o, "method", NULL)};
    int64_t threads;
    /* --max-new is checked against the model's context_length once the prompt is tokenized */
    if (cli_opt_i64_in(&o, "max-new", 32, 0, INT32_MAX, &c.max_new) ||
        cli_opt_i64_in(&o, "budget", 256, 1, INT32_MAX, &c.budget) ||
        cli_opt_i64_in(&o, "window", -1, 1, (int64_t)1 << 24, &c.window) ||
        cli_opt_i64_in(&o, "threads", 0, 0, 64, &threads))
        return CLI_USAGE;
    c.threads = (int)threads;
    (void)cli_opt_flag(&o, "greedy");
    c.chat = cli_opt_flag(&o, "chat");
    c.ignore_eos = cli_opt_flag(&o, "ignore-eos");
    const int show_ids = cli_opt_flag(&o, "ids"), json = cli_opt_flag(&o, "json");
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    llm_rope_override rov;
    if (cli_rope_opts(&o, &rov) != 0 || cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    c.rope = &rov;
    if (!c.prompt) {
        cli_error(o.prog, "--prompt is required (kvsim generate --help)");
        return CLI_USAGE;
    }
    if (rkv_dtype_parse(dts, &c.kv_dtype) != 0 ||
        (c.kv_dtype != RKV_DTYPE_BF16 && c.kv_dtype != RKV_DTYPE_FP16 && c.kv_dtype != RKV_DTYPE_FP32)) {
        cli_error(o.prog, "--dtype: expected bf16, fp16 or fp32, got '%s'", dts);
        return CLI_USAGE;
    }
    if (!json) c.on_text = stream;
    llm_gen_result r;
    kv_err err;
    const int rc = llm_generate(path, &c, &r, &err);
    if (rc == 0) {
        if (json) print_json(path, &c, &r);
        else print_text(&c, &r, show_ids);
    } else {
        cli_error(o.prog, "%s", err.msg);
    }
    llm_gen_result_free(&r);
    return rc == 0 ? CLI_OK : rc == LLM_GEN_EREQUEST ? CLI_USAGE : CLI_FAIL;
}
