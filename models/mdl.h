/* mdl.h — LLM architectures: one YAML file per model under models/, with
 * Hugging Face config.json key names, a strict loader (file:line:col on any
 * unknown, missing or ill-typed key) and the derived counts every other
 * module uses (parameters, weight bytes, KV bytes per token).
 *
 * It does not know about compression methods or hardware. */
#ifndef MDL_H
#define MDL_H

#include <stdint.h>
#include "kv_common.h"

typedef struct {
    char name[64];               /* file stem, e.g. "llama3.1-8b" */
    char path[512];              /* file it was loaded from ("" if built in code) */
    char source[256];            /* where the numbers come from */
    int num_hidden_layers;       /* L */
    int num_attention_heads;     /* Hq */
    int num_key_value_heads;     /* Hkv */
    int head_dim;                /* d */
    int hidden_size;
    int intermediate_size;
    int vocab_size;
    int max_position_embeddings;
    double rope_theta;
    int tie_word_embeddings;     /* 0/1 */
    char torch_dtype[16];        /* "bfloat16", "float16", "float32" */
    int attention_bias;          /* 0/1: q,k,v projections carry biases (Qwen2); optional key */
    char weight_dtype[24];       /* "" (torch_dtype), or how the checkpoint stores its linear layers:
                                    "fp8", "int8", "int8-w8a8", "awq-g128", "gptq-g128", "nvfp4", "mxfp4"
                                    (from config.json's quantization_config); optional key */
} mdl_model;

/* Name ("llama3.1-8b") or path to a YAML file. Names are looked up in
 * $KVSIM_DATA/models, then in the build's data directory. */
int mdl_model_load(const char *name_or_path, mdl_model *m, kv_err *err);
/* Validates the numbers of an already filled model (positive sizes, heads
 * dividing evenly). The loader calls it; importers too. */
int mdl_model_check(const mdl_model *m, const char *where, kv_err *err);

/* Names of the bundled models, NULL-terminated. */
const char *const *mdl_model_names(void);

/* G = Hq / Hkv */
static inline int mdl_group_size(const mdl_model *m) { return m->num_attention_heads / m->num_key_value_heads; }

/* Parameter count: embeddings, per-layer attention (q,k,v,o; no biases
 * unless the architecture has them), SwiGLU MLP, two RMSNorms per layer, the
 * final norm, and the LM head unless tied. Qwen2 q/k/v biases are counted
 * when the model name or source says qwen2. */
int64_t mdl_param_count(const mdl_model *m);
/* Bytes of the weights at bytes_per_param (2 for bf16). */
int64_t mdl_weight_bytes(const mdl_model *m, double bytes_per_param);
/* Bytes of K+V for one token across all layers: 2 · L · Hkv · d · b. */
int64_t mdl_kv_bytes_per_token(const mdl_model *m, double bytes_per_elem);
/* Parameters touched per decoded token per layer (QKV, O, MLP), and the LM head. */
int64_t mdl_layer_params(const mdl_model *m);
int64_t mdl_lm_head_params(const mdl_model *m);

/* Reads a Hugging Face config.json (a real one: unknown keys are ignored,
 * required ones must be present; head_dim derived as hidden/heads when absent)
 * and fills m. name is stored in m->name. */
int mdl_import_config_json(const char *json_path, const char *name, mdl_model *m, kv_err *err);
/* Writes m as a models/ YAML file (atomically). */
int mdl_model_write_yaml(const mdl_model *m, const char *path, kv_err *err);
/* The same YAML text, to an open stream (kvsim model import without --out). */
void mdl_model_fprint_yaml(const mdl_model *m, FILE *fp);

#endif
