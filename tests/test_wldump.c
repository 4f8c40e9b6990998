/* test_wldump.c — `kvsim workload dump`: a synthetic workload written as a
 * KV dump (llm/llm_kvsynth.c). Its rows sit where the dump format puts them
 * (the offset formula of llm/KVDUMP.md, written out here, not the reader's),
 * a profile of the dump is the profile of the workload, and bad input is
 * refused with nothing written. */
#define _POSIX_C_SOURCE 200809L
#include "cli_util.h"
#include "llm_kvdump.h"
#include "mdl.h"
#include "rkv.h"

#include <sys/stat.h>

/* A fresh directory for the test `tag`, and in it (path) a dump of
 * smollm2-fitted at `tokens` positions, decode queries from `prompt` on. */
static void make_dump(char *dir, size_t cap, const char *tag, char *path, size_t pcap, int tokens, int prompt)
{
    char args[1024];
    cli_tmp_dir(dir, cap, "wldump", tag);
    snprintf(path, pcap, "%s/syn.kvd", dir);
    snprintf(args, sizeof args, "workload dump --workload smollm2-fitted --tokens %d --prompt %d --out %s", tokens,
             prompt, path);
    cli_result r;
    cli_run(&r, args);
    cr_assert_eq(r.rc, 0, "kvsim %s: %s", args, r.err);
}

/* Row pos of tensor `which` (0 K, 1 V, 2 Q) of (layer, head), read from the
 * file at the format's offset: a 1024-byte header, then per layer K (Hkv, n, d),
 * V (Hkv, n, d), Q (Hq, n, d), f32 little-endian (llm/KVDUMP.md). */
static void raw_row(const char *path, int L_hkv, int hq, int64_t n, int d, int layer, int which, int head, int64_t pos,
                    float *row)
{
    const int64_t per_layer = (2 * (int64_t)L_hkv + hq) * n * d;
    const int64_t base = which == 0 ? 0 : which == 1 ? (int64_t)L_hkv * n * d : 2 * (int64_t)L_hkv * n * d;
    const int64_t off = 1024 + 4 * (layer * per_layer + base + ((int64_t)head * n + pos) * d);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    cr_assert_eq(fseek(f, (long)off, SEEK_SET), 0);
    cr_assert_eq(fread(row, sizeof *row, (size_t)d, f), (size_t)d, "%s: short read at %lld", path, (long long)off);
    fclose(f);
}

Test(wldump, rows_sit_at_the_format_offsets, .timeout = 120)
{
    char dir[256], path[320];
    make_dump(dir, sizeof dir, "rows", path, sizeof path, 300, 256);
    mdl_model m;
    rkv_workload wl;
    kv_err err;
    char wpath[1024];
    cr_assert_eq(mdl_model_load("smollm2-135m", &m, &err), 0, "%s", err.msg);
    cr_assert_eq(rkv_workload_find("smollm2-fitted", wpath, sizeof wpath, &err), 0, "%s", err.msg);
    cr_assert_eq(rkv_workload_load(wpath, &wl, &err), 0, "%s", err.msg);
    const int d = m.head_dim, Hkv = m.num_key_value_heads, Hq = m.num_attention_heads, G = Hq / Hkv;
    const int64_t n = 300;
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    /* header + data + 16-byte trailer (checksum, end marker) */
    cr_assert_eq((int64_t)st.st_size, 1024 + 4 * (int64_t)m.num_hidden_layers * (2 * Hkv + Hq) * n * d + 16);
    float *K = malloc((size_t)n * (size_t)d * sizeof *K), *V = malloc((size_t)n * (size_t)d * sizeof *V);
    float q[16 * 256], row[256];
    const int cases[][3] = {{0, 0, 0}, {7, 2, 17}, {29, 1, 299}, {13, 0, 255}, {13, 0, 256}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int l = cases[c][0], h = cases[c][1];
        const int64_t p = cases[c][2];
        cr_assert_eq(rkv_workload_kv(&wl, &m, l, h, n, K, V, &err), 0, "%s", err.msg);
        raw_row(path, Hkv, Hq, n, d, l, 0, h, p, row);
        cr_assert_arr_eq(row, K + p * d, (size_t)d * sizeof *row, "K layer %d head %d pos %lld", l, h, (long long)p);
        raw_row(path, Hkv, Hq, n, d, l, 1, h, p, row);
        cr_assert_arr_eq(row, V + p * d, (size_t)d * sizeof *row, "V layer %d head %d pos %lld", l, h, (long long)p);
        rkv_workload_query(&wl, &m, l, h, p, 0, p >= 256, q); /* decode queries from --prompt on */
        for (int g = 0; g < G; g++) {
            raw_row(path, Hkv, Hq, n, d, l, 2, h * G + g, p, row);
            cr_assert_arr_eq(row, q + g * d, (size_t)d * sizeof *row, "Q layer %d head %d pos %lld", l, h * G + g,
                             (long long)p);
        }
    }
    free(K);
    free(V);
    cli_rm_dir(dir);
}

Test(wldump, profile_of_the_dump_is_the_workloads, .timeout = 240)
{
    char dir[256], path[320], args[1024];
    make_dump(dir, sizeof dir, "prof", path, sizeof path, 288, 256);
    static cli_result a, b;
    snprintf(args, sizeof args, "workload profile %s --context 256 --window 32 --steps 32 --layers 0,29 --json", path);
    cli_run(&a, args);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cli_run(&b, "workload profile --workload smollm2-fitted --model smollm2-135m --context 256 --window 32 --steps 32 "
                "--layers 0,29 --json");
    cr_assert_eq(b.rc, 0, "%s", b.err);
    cr_assert(strstr(a.out, "\"sink_mass\""), "no statistics in: %.200s", a.out);
    cr_assert_str_eq(a.out, b.out, "the dump's profile differs from the workload's");
    /* the decode position matters: a dump whose queries are all prompt queries profiles otherwise */
    snprintf(args, sizeof args, "workload dump --workload smollm2-fitted --tokens 288 --prompt 288 --out %s", path);
    cr_assert_eq(cli_rc(args), 0, "kvsim %s", args);
    snprintf(args, sizeof args, "workload profile %s --context 256 --window 32 --steps 32 --layers 0,29 --json", path);
    cli_run(&a, args);
    cr_assert_eq(a.rc, 0, "%s", a.err);
    cr_assert(strcmp(a.out, b.out) != 0, "prompt-only queries profile like decode queries");
    cli_rm_dir(dir);
}

/* Exit 2, one stderr line holding both words, and the directory as it was. */
static void refused(const char *dir, int entries, const char *args, const char *w1, const char *w2)
{
    cli_result r;
    cli_run(&r, args);
    cr_assert_eq(r.rc, 2, "kvsim %s: exit %d; stderr %s", args, r.rc, r.err);
    cr_assert(cli_one_line(r.err), "kvsim %s: %s", args, r.err);
    cr_assert(strstr(r.err, w1) && strstr(r.err, w2), "kvsim %s: '%s' lacks '%s' or '%s'", args, r.err, w1, w2);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq %d", dir, entries);
    cr_assert_eq(system(cmd), 0, "kvsim %s left files in %s", args, dir);
}

Test(wldump, bad_input_is_refused_and_nothing_written, .timeout = 120)
{
    char dir[256], args[1024];
    cli_tmp_dir(dir, sizeof dir, "wldump", "bad");
    const char *w = "workload dump --workload smollm2-fitted";
    snprintf(args, sizeof args, "%s --tokens 0 --out %s/a.kvd", w, dir);
    refused(dir, 0, args, "--tokens", "[1, 1048576]");
    snprintf(args, sizeof args, "%s --tokens 1048577 --out %s/a.kvd", w, dir);
    refused(dir, 0, args, "--tokens", "1048576");
    snprintf(args, sizeof args, "%s --tokens nan --out %s/a.kvd", w, dir);
    refused(dir, 0, args, "--tokens", "nan");
    snprintf(args, sizeof args, "%s --tokens -5 --out %s/a.kvd", w, dir);
    refused(dir, 0, args, "--tokens", "-5");
    snprintf(args, sizeof args, "%s --tokens 300 --prompt 301 --out %s/a.kvd", w, dir);
    refused(dir, 0, args, "--prompt", "[0, 300]");
    snprintf(args, sizeof args, "%s --tokens 300", w);
    refused(dir, 0, args, "--out", "required");
    /* Llama-3.1-8B: 32 layers x (2·8 + 32) heads x 128 dims x 4 B = 786,432 B a token; 8 GiB / that = 10922 */
    snprintf(args, sizeof args, "workload dump --workload smollm2-fitted --model llama3.1-8b --tokens 10923 --out %s/a.kvd",
             dir);
    refused(dir, 0, args, "8 GiB", "10922");
    /* an existing directory as --out: refused, and still a directory */
    char sub[320];
    snprintf(sub, sizeof sub, "%s/keep", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    snprintf(args, sizeof args, "%s --tokens 64 --out %s", w, sub);
    cli_result r;
    cli_run(&r, args);
    cr_assert_neq(r.rc, 0, "a directory as --out was accepted");
    cr_assert(cli_one_line(r.err), "%s", r.err);
    struct stat st;
    cr_assert(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "%s is no longer a directory", sub);
    snprintf(args, sizeof args, "test $(ls -A '%s' | wc -l) -eq 1 && test $(ls -A '%s' | wc -l) -eq 0", dir, sub);
    cr_assert_eq(system(args), 0, "a temporary was left behind");
    cli_rm_dir(dir);
}

/* `workload compare` of a workload against its own dump: every cell's real and
 * synthetic figures are the same run on the same floats (diff +0.000 on each
 * metric, exit 0), and so are the group agreement's real and synthetic means
 * and s.d.s, printed to the same digits. */
Test(wldump, compare_against_its_own_dump_is_exact, .timeout = 240)
{
    char dir[256], path[320], args[1024];
    cli_tmp_dir(dir, sizeof dir, "wldump", "cmp");
    snprintf(path, sizeof path, "%s/heads.kvd", dir);
    snprintf(args, sizeof args, "workload dump --workload smollm2-heads --tokens 288 --prompt 256 --out %s", path);
    cr_assert_eq(cli_rc(args), 0, "kvsim %s", args);
    static cli_result r;
    snprintf(args, sizeof args,
             "workload compare --workload smollm2-heads %s --context 256 --steps 32 --method rocketkv,snapkv-gqa "
             "--budget 128 --threads 2", path);
    cli_run(&r, args);
    cr_assert_eq(r.rc, 0, "kvsim %s: %s", args, r.err);
    cr_assert(strstr(r.out, "2 of 2 method x budget cells"), "%s", r.out);
    int rows = 0;
    for (const char *l = strstr(r.out, "\nrocketkv"); l; l = strstr(l + 1, "\nrocketkv")) {
        char m[32];
        int b;
        double v[9];
        cr_assert_eq(sscanf(l + 1, "%31s %d %lf %lf %lf %lf %lf %lf %lf %lf %lf", m, &b, &v[0], &v[1], &v[2], &v[3],
                            &v[4], &v[5], &v[6], &v[7], &v[8]), 11, "%.120s", l + 1);
        for (int k = 0; k < 3; k++) cr_assert_float_eq(v[3 * k], v[3 * k + 1], 1e-12, "%.120s", l + 1);
        rows++;
    }
    cr_assert_eq(rows, 1, "%s", r.out);
    const char *g = strstr(r.out, "group agreement");
    cr_assert_not_null(g, "%s", r.out);
    double rm, lo, hi, rs, sm, ss;
    cr_assert_eq(sscanf(strstr(g, "real mean"), "real mean %lf (dumps %lf .. %lf) s.d. %lf; synthetic mean %lf s.d. %lf",
                        &rm, &lo, &hi, &rs, &sm, &ss), 6, "%s", g);
    cr_assert_float_eq(rm, sm, 1e-12, "%s", g);
    cr_assert_float_eq(rs, ss, 1e-12, "%s", g);
    cr_assert(rm > 0.05, "the profile's heads share their residual: %s", g);
    cli_rm_dir(dir);
}
