/* trc_info.c — the header's fields, printed as text or JSON, driven by the
 * same field table the writer and the reader use. */
#include "trc_internal.h"

/* Calls out(name, kind, ival, dval, sval, list, nlist) for each field. */
static void each_field(const trc_header *h, void (*out)(void *, const char *, int, long long, double, const char *,
                                                          const long long *, int),
                       void *ctx)
{
    for (size_t i = 0; i < trc_nfields; i++) {
        const trc_field *f = &trc_fields[i];
        const char *base = (const char *)h + f->off;
        long long list[TRC_MAX_LAYERS];
        int n = 0;
        switch (f->type) {
        case TRC_F_INT: out(ctx, f->name, TRC_K_INT, *(const int *)(const void *)base, 0, NULL, NULL, 0); break;
        case TRC_F_I64: out(ctx, f->name, TRC_K_INT, (long long)*(const int64_t *)(const void *)base, 0, NULL, NULL, 0); break;
        case TRC_F_U64: out(ctx, f->name, TRC_K_INT, (long long)*(const uint64_t *)(const void *)base, 0, NULL, NULL, 0); break;
        case TRC_F_F64: out(ctx, f->name, TRC_K_F64, 0, *(const double *)(const void *)base, NULL, NULL, 0); break;
        case TRC_F_STR: out(ctx, f->name, TRC_K_STR, 0, 0, f->size ? base : trc_layout_const(f->name), NULL, 0); break;
        case TRC_F_DTYPE: out(ctx, f->name, TRC_K_STR, 0, 0, rkv_dtype_name(*(const rkv_dtype *)(const void *)base), NULL, 0); break;
        case TRC_F_POOL: out(ctx, f->name, TRC_K_STR, 0, 0, trc_pool_name(*(const rkv_pool *)(const void *)base), NULL, 0); break;
        case TRC_F_GRAN: out(ctx, f->name, TRC_K_STR, 0, 0, trc_gran_name(*(const rkv_granularity *)(const void *)base), NULL, 0); break;
        case TRC_F_SPLIT: out(ctx, f->name, TRC_K_STR, 0, 0, trc_split_name(*(const rkv_split *)(const void *)base), NULL, 0); break;
        case TRC_F_METHOD: out(ctx, f->name, TRC_K_STR, 0, 0, h->params.method ? h->params.method->name : "?", NULL, 0); break;
        case TRC_F_LAYERS:
            for (n = 0; n < h->nlayers; n++) list[n] = h->layers[n];
            out(ctx, f->name, TRC_K_LIST, 0, 0, NULL, list, n);
            break;
        case TRC_F_TURNS_IN: case TRC_F_TURNS_OUT:
            for (n = 0; n < h->wl.nturns; n++) list[n] = (f->type == TRC_F_TURNS_IN ? h->wl.turn_input : h->wl.turn_output)[n];
            out(ctx, f->name, TRC_K_LIST, 0, 0, NULL, list, n);
            break;
        }
    }
}

static void print_one(void *ctx, const char *name, int kind, long long iv, double dv, const char *sv, const long long *l, int n)
{
    FILE *fp = ctx;
    fprintf(fp, "  %-32s ", name);
    if (kind == TRC_K_INT) fprintf(fp, "%lld\n", iv);
    else if (kind == TRC_K_F64) fprintf(fp, "%.17g\n", dv);
    else if (kind == TRC_K_STR) fprintf(fp, "%s\n", sv);
    else {
        for (int i = 0; i < n; i++) fprintf(fp, "%s%lld", i ? "," : "", l[i]);
        fprintf(fp, "%s\n", n ? "" : "(none)");
    }
}

static void json_one(void *ctx, const char *name, int kind, long long iv, double dv, const char *sv, const long long *l, int n)
{
    kv_json *j = ctx;
    kv_json_key(j, name);
    if (kind == TRC_K_INT) kv_json_int(j, iv);
    else if (kind == TRC_K_F64) kv_json_num(j, dv);
    else if (kind == TRC_K_STR) kv_json_str(j, sv);
    else {
        kv_json_arr_begin(j);
        for (int i = 0; i < n; i++) kv_json_int(j, l[i]);
        kv_json_arr_end(j);
    }
}

void trc_header_fprint(const trc_reader *r, FILE *fp) { each_field(trc_get_header(r), print_one, fp); }
void trc_header_json(const trc_reader *r, kv_json *j) { each_field(trc_get_header(r), json_one, j); }
