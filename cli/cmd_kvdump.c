/* cmd_kvdump.c — `kvsim kvdump`: capture a GGUF model's real post-RoPE
 * Q/K/V over a text into a KV dump (llm/KVDUMP.md), or describe one. */
#include "cli.h"
#include "llm_kvdump.h"
#include "rope_opts.h"

#include <string.h>

static void help(void)
{
    printf("usage: kvsim kvdump --gguf FILE --text FILE --tokens N --out FILE.kvd [--offset N] [--dtype D]\n"
           "       kvsim kvdump --info FILE.kvd\n"
           "       kvsim kvdump --seal FILE.kvd   (write the checksum trailer of a dump made elsewhere)\n\n"
           "Runs the model densely over tokens N0 .. N0+N-1 of the text and stores every layer's\n"
           "queries, keys (after RoPE, Hugging Face rotate-half order) and values, checksummed,\n"
           "written atomically. `kvsim fidelity --workload kvdump:FILE.kvd` replays it.\n\n"
           "  --dtype D   bf16 (default), fp16 or fp32\n"
           "  --threads N BLAS threads, [0, 64] (0: the number of CPUs)\n");
    cli_rope_help();
}

int cmd_kvdump(int argc, char **argv)
{
    static const char *const flags[] = {"help", NULL};
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim kvdump", argc, argv, flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        help();
        return CLI_OK;
    }
    const char *seal = cli_opt_str(&o, "seal", NULL);
    const char *info = cli_opt_str(&o, "info", NULL), *gguf = cli_opt_str(&o, "gguf", NULL),
               *text = cli_opt_str(&o, "text", NULL), *out = cli_opt_str(&o, "out", NULL),
               *dts = cli_opt_str(&o, "dtype", "bf16");
    int64_t tokens, offset, threads;
    /* both also checked against the model and the text by kvd_capture */
    if (cli_opt_i64_in(&o, "tokens", 0, 1, INT32_MAX, &tokens) || cli_opt_i64_in(&o, "offset", 0, 0, INT32_MAX, &offset) ||
        cli_opt_i64_in(&o, "threads", 0, 0, 64, &threads))
        return CLI_USAGE;
    if (o.npos > 0) {
        cli_error(o.prog, "unexpected argument '%s'", o.pos[0]);
        return CLI_USAGE;
    }
    llm_rope_override rov;
    if (cli_rope_opts(&o, &rov) != 0 || cli_opts_unused(&o) != 0)
        return CLI_USAGE;
    kv_err err;
    llm_kvd_file *f = NULL;
    if (seal) {
        if (llm_kvd_seal(seal, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            return CLI_FAIL;
        }
        info = seal;
    }
    if (info) {
        if (llm_kvd_open(info, &f, &err) != 0) {
            cli_error(o.prog, "%s", err.msg);
            return CLI_FAIL;
        }
        const llm_kvd_info *in = &f->info;
        printf("%s: KV dump v%d, %s, %d layers, %d query / %d KV heads, d = %d, %lld tokens, rope_theta %g\n"
               "  model:  %s\n  source: %s\n  checksum ok, %zu bytes\n",
               info, LLM_KVD_VERSION, rkv_dtype_name(in->dtype), in->n_layer, in->n_head, in->n_kv_head, in->head_dim,
               (long long)in->n_tokens, in->rope_theta, in->model, in->source, f->size);
        llm_kvd_free(f);
        return CLI_OK;
    }
    rkv_dtype dt;
    if (rkv_dtype_parse(dts, &dt) != 0 || dt > RKV_DTYPE_FP32) {
        cli_error(o.prog, "--dtype: expected bf16, fp16 or fp32, got '%s'", dts);
        return CLI_USAGE;
    }
    if (!gguf || !text || !out || tokens < 1) {
        cli_error(o.prog, "--gguf, --text, --out and --tokens N (> 0) are required (kvsim kvdump --help)");
        return CLI_USAGE;
    }
    if (cli_in_check(&o, "gguf", gguf, 0) != 0 || cli_in_check(&o, "text", text, 0) != 0 ||
        cli_out_check(&o, "out", out, 0) != 0)
        return CLI_USAGE;
    if (llm_kvd_capture_rope(gguf, text, offset, tokens, dt, &rov, (int)threads, &f, &err) != 0 || llm_kvd_write(f, out, &err) != 0) {
        cli_error(o.prog, "%s", err.msg);
        llm_kvd_free(f);
        return CLI_FAIL;
    }
    printf("%s: %lld tokens, %zu bytes (%s)\n", out, (long long)tokens, f->size, f->info.source);
    llm_kvd_free(f);
    return CLI_OK;
}
