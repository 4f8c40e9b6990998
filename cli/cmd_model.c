/* cmd_model.c — `kvsim model list|show NAME|import config.json`: the model
 * architectures under models/ and the Hugging Face config.json importer.
 * All counting lives in models/ (mdl.h); this file only prints. */
#include "cli.h"

#include <string.h>

#include "mdl.h"

static const char *const model_flags[] = {"json", "help", NULL};

static void usage(FILE *fp)
{
    fputs("usage: kvsim model list [--json]\n"
          "       kvsim model show NAME|FILE.yaml [--json]\n"
          "       kvsim model import CONFIG.json [--name NAME] [--out FILE.yaml]\n"
          "\n"
          "list    the bundled architectures with their derived sizes\n"
          "show    every key of one model plus derived figures: parameters, weight bytes (bf16),\n"
          "        KV bytes per token (bf16), G = num_attention_heads / num_key_value_heads\n"
          "import  read a Hugging Face config.json and print (or --out: write) the models/ YAML\n",
          fp);
}

static void json_model(kv_json *j, const mdl_model *m)
{
    kv_json_obj_begin(j);
    kv_json_key(j, "name"); kv_json_str(j, m->name);
    kv_json_key(j, "path"); kv_json_str(j, m->path);
    kv_json_key(j, "source"); kv_json_str(j, m->source);
    kv_json_key(j, "num_hidden_layers"); kv_json_int(j, m->num_hidden_layers);
    kv_json_key(j, "num_attention_heads"); kv_json_int(j, m->num_attention_heads);
    kv_json_key(j, "num_key_value_heads"); kv_json_int(j, m->num_key_value_heads);
    kv_json_key(j, "head_dim"); kv_json_int(j, m->head_dim);
    kv_json_key(j, "hidden_size"); kv_json_int(j, m->hidden_size);
    kv_json_key(j, "intermediate_size"); kv_json_int(j, m->intermediate_size);
    kv_json_key(j, "vocab_size"); kv_json_int(j, m->vocab_size);
    kv_json_key(j, "max_position_embeddings"); kv_json_int(j, m->max_position_embeddings);
    kv_json_key(j, "rope_theta"); kv_json_num(j, m->rope_theta);
    kv_json_key(j, "tie_word_embeddings"); kv_json_bool(j, m->tie_word_embeddings);
    kv_json_key(j, "torch_dtype"); kv_json_str(j, m->torch_dtype);
    kv_json_key(j, "attention_bias"); kv_json_bool(j, m->attention_bias);
    kv_json_key(j, "params"); kv_json_int(j, mdl_param_count(m));
    kv_json_key(j, "weight_bytes_bf16"); kv_json_int(j, mdl_weight_bytes(m, 2.0));
    kv_json_key(j, "kv_bytes_per_token_bf16"); kv_json_int(j, mdl_kv_bytes_per_token(m, 2.0));
    kv_json_key(j, "group_size"); kv_json_int(j, mdl_group_size(m));
    kv_json_obj_end(j);
}

static int do_list(cli_opts *o)
{
    int json = cli_opt_flag(o, "json");
    if (cli_opts_unused(o) != 0)
        return CLI_USAGE;
    if (o->npos != 1) {
        cli_error(o->prog, "list takes no arguments");
        return CLI_USAGE;
    }
    kv_json j;
    if (json) {
        kv_json_init(&j, stdout);
        kv_json_arr_begin(&j);
    } else {
        printf("%-18s %7s %7s %5s %4s %4s %10s %12s\n", "name", "layers", "Hq/Hkv", "d", "G", "ctx",
               "params", "KV B/token");
    }
    for (const char *const *n = mdl_model_names(); *n; n++) {
        mdl_model m;
        kv_err err;
        if (mdl_model_load(*n, &m, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
        if (json) {
            json_model(&j, &m);
            continue;
        }
        char heads[32];
        snprintf(heads, sizeof heads, "%d/%d", m.num_attention_heads, m.num_key_value_heads);
        printf("%-18s %7d %7s %5d %4d %3dK %9.2fB %12lld\n", m.name, m.num_hidden_layers, heads, m.head_dim,
               mdl_group_size(&m), m.max_position_embeddings / 1024, (double)mdl_param_count(&m) / 1e9,
               (long long)mdl_kv_bytes_per_token(&m, 2.0));
    }
    if (json)
        kv_json_arr_end(&j);
    return CLI_OK;
}

static void print_model(const mdl_model *m)
{
    printf("name                     %s\n", m->name);
    printf("path                     %s\n", m->path);
    printf("source                   %s\n", m->source);
    printf("num_hidden_layers        %d\n", m->num_hidden_layers);
    printf("num_attention_heads      %d\n", m->num_attention_heads);
    printf("num_key_value_heads      %d\n", m->num_key_value_heads);
    printf("head_dim                 %d\n", m->head_dim);
    printf("hidden_size              %d\n", m->hidden_size);
    printf("intermediate_size        %d\n", m->intermediate_size);
    printf("vocab_size               %d\n", m->vocab_size);
    printf("max_position_embeddings  %d\n", m->max_position_embeddings);
    printf("rope_theta               %g\n", m->rope_theta);
    printf("tie_word_embeddings      %s\n", m->tie_word_embeddings ? "true" : "false");
    printf("torch_dtype              %s\n", m->torch_dtype);
    printf("attention_bias           %s\n", m->attention_bias ? "true" : "false");
    printf("-- derived\n");
    long long p = (long long)mdl_param_count(m);
    printf("params                   %lld (%.3fB)\n", p, (double)p / 1e9);
    printf("weight bytes (bf16)      %lld (%.2f GB)\n", (long long)mdl_weight_bytes(m, 2.0),
           (double)mdl_weight_bytes(m, 2.0) / 1e9);
    printf("KV bytes/token (bf16)    %lld\n", (long long)mdl_kv_bytes_per_token(m, 2.0));
    printf("G (Hq / Hkv)             %d\n", mdl_group_size(m));
}

static int do_show(cli_opts *o)
{
    int json = cli_opt_flag(o, "json");
    if (cli_opts_unused(o) != 0)
        return CLI_USAGE;
    if (o->npos != 2) {
        cli_error(o->prog, "show takes one model name or YAML path (kvsim model list shows the names)");
        return CLI_USAGE;
    }
    mdl_model m;
    kv_err err;
    if (mdl_model_load(o->pos[1], &m, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    if (json) {
        kv_json j;
        kv_json_init(&j, stdout);
        json_model(&j, &m);
    } else {
        print_model(&m);
    }
    return CLI_OK;
}

static int do_import(cli_opts *o)
{
    const char *name = cli_opt_str(o, "name", NULL), *out = cli_opt_str(o, "out", NULL);
    if (cli_opts_unused(o) != 0 || (out && cli_out_check(o, "out", out, 0) != 0))
        return CLI_USAGE;
    if (o->npos != 2) {
        cli_error(o->prog, "import takes one config.json path");
        return CLI_USAGE;
    }
    mdl_model m;
    kv_err err;
    if (mdl_import_config_json(o->pos[1], name, &m, &err) != 0) {
        cli_error(o->prog, "%s", err.msg);
        return CLI_FAIL;
    }
    if (out) {
        if (mdl_model_write_yaml(&m, out, &err) != 0) {
            cli_error(o->prog, "%s", err.msg);
            return CLI_FAIL;
        }
        fprintf(stderr, "%s: wrote %s (%s, %.3fB parameters)\n", o->prog, out, m.name,
                (double)mdl_param_count(&m) / 1e9);
        return CLI_OK;
    }
    mdl_model_fprint_yaml(&m, stdout);
    return CLI_OK;
}

int cmd_model(int argc, char **argv)
{
    cli_opts o;
    if (cli_opts_parse(&o, "kvsim model", argc, argv, model_flags) != 0)
        return CLI_USAGE;
    if (cli_opt_flag(&o, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    const char *verb = o.npos > 0 ? o.pos[0] : "";
    if (!strcmp(verb, "list"))
        return do_list(&o);
    if (!strcmp(verb, "show"))
        return do_show(&o);
    if (!strcmp(verb, "import"))
        return do_import(&o);
    if (*verb)
        cli_error(o.prog, "unknown action '%s' (expected list, show or import)", verb);
    else
        usage(stderr);
    return CLI_USAGE;
}
