/* test_inputs.c — no input that can hurt (issue 10, section 3): output paths
 * that are not regular files, numbers that wrap or are out of range, lengths
 * past the model, special files as inputs, GGUF metadata, a corrupt trace
 * block, a calibration from another GPU, signals and temporaries, and the
 * messages of the option layer. Every expected refusal is stated here (the
 * flag, the value, the allowed range), not taken from the code under test. */
#define _POSIX_C_SOURCE 200809L
#include "cli_util.h"
#include "hw.h"
#include "kv_common.h"
#include "llm.h"
#include "trc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#define MODEL_GGUF "build/model/SmolLM2-135M-Instruct.Q4_1.gguf"

/* A fresh empty directory under /tmp for one test. */
static void tmp_dir(char *out, size_t cap, const char *tag)
{
    cli_tmp_dir(out, cap, "inputs", tag);
}

static void rm_dir(const char *dir)
{
    cli_rm_dir(dir);
}

/* Names in dir (other than . and ..), counted. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d, "%s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* Exit 2, one stderr line holding every one of the NULL-terminated words. */
static void expect_usage(const char *args, ...)
{
    cli_result r;
    cli_run(&r, args);
    cr_assert_eq(r.rc, 2, "kvsim %s: exit %d, expected 2; stderr: %s", args, r.rc, r.err);
    cr_assert(cli_one_line(r.err), "kvsim %s: stderr is not one line: %s", args, r.err);
    va_list ap;
    va_start(ap, args);
    for (const char *w; (w = va_arg(ap, const char *));)
        cr_assert(strstr(r.err, w), "kvsim %s: '%s' missing from: %s", args, w, r.err);
    va_end(ap);
}

static int model_present(void) { return access(MODEL_GGUF, R_OK) == 0; }

/* No test here sets .timeout: Criterion 2.4's runner leaks its timeout
 * record when such tests run in parallel (LeakSanitizer then fails make
 * test); the one test that waits on a process bounds the wait itself. */

/* ---- output paths ---- */

Test(inputs, out_never_replaces_a_device_dir_or_fifo)
{
    char dir[256], fifo[300], cmd[1024];
    tmp_dir(dir, sizeof dir, "out");
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const char *run = "--model smollm2-135m --context 512 --steps 1 --layers 0 --budget 128";
    const char *targets[][2] = {{"/dev/full", "character device"}, {dir, "a directory"}, {fifo, "a fifo"},
                                {"''", "empty"}, {"/nonexistent-dir/x.trc", "does not exist"}};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        snprintf(cmd, sizeof cmd, "trace --out %s %s", targets[i][0], run);
        expect_usage(cmd, "--out", targets[i][1], NULL);
    }
    struct stat st;
    cr_assert_eq(stat("/dev/full", &st), 0);
    cr_assert(S_ISCHR(st.st_mode), "/dev/full is no longer a device");
    cr_assert_eq(stat(fifo, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    cr_assert_eq(dir_entries(dir), 1, "temporaries or partial files left in %s", dir);
    rm_dir(dir);
}

/* Every writing command refuses a bad output path before it computes: the
 * sweep below would take minutes, the refusal comes at once, and nothing is
 * left behind (no FILE.partial, no temporary). */
Test(inputs, every_writer_checks_out_first)
{
    char dir[256], cmd[1024];
    tmp_dir(dir, sizeof dir, "writers");
    const char *cases[][3] = { /* {args (%s: the temporary directory), flag, what} */
        {"sweep --model llama3.1-8b --hw h100-sxm --context 1K,2K,4K,8K,16K,32K --budget 256,512,1024 "
         "--batch 1,2,4,8 --out %s", "--out", "a directory"},
        {"sweep --model llama3.1-8b --out ''", "--out", "empty"},
        {"sweep --merge --out /dev/full %s/a.csv", "--out", "character device"},
        {"golden --model smollm2-135m --context 256 --budget 64 --method rocketkv --out /dev/null", "--out",
         "not a directory"},
        {"report --sweep Makefile --out /dev/null", "--out", "not a directory"},
        {"kvdump --gguf Makefile --text Makefile --tokens 8 --out %s", "--out", "a directory"},
        {"model import Makefile --out %s", "--out", "a directory"},
        {"golden --model smollm2-135m --out ''", "--out", "empty"},
        {"serve --rate 1 --out /dev/full", "--out", "character device"},
        {"serve --rate 1 --timeline %s", "--timeline", "a directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[900];
        const char *at = strstr(cases[i][0], "%s"); /* the directory goes where %s is */
        if (at)
            snprintf(args, sizeof args, "%.*s%s%s", (int)(at - cases[i][0]), cases[i][0], dir, at + 2);
        else
            snprintf(args, sizeof args, "%s", cases[i][0]);
        const double t0 = kv_now_s();
        snprintf(cmd, sizeof cmd, "%s", args);
        expect_usage(cmd, cases[i][1], cases[i][2], NULL);
        cr_assert(kv_now_s() - t0 < 20.0, "kvsim %s computed before refusing", args);
    }
    cr_assert_eq(dir_entries(dir), 0, "files left in %s", dir);
    /* serve --out was refused as an unknown option (read after cli_opts_unused); now it writes */
    char args[600], path[400];
    snprintf(path, sizeof path, "%s/serve.txt", dir);
    snprintf(args, sizeof args, "serve --rate 1 --num-requests 5 --out %s", path);
    cr_assert_eq(cli_rc(args), 0, "%s", args);
    cr_assert_eq(access(path, R_OK), 0);
    rm_dir(dir);
}

Test(inputs, out_checks_in_the_atomic_layer)
{
    char dir[256], p[400], sub[300];
    kv_err err;
    tmp_dir(dir, sizeof dir, "afile");
    cr_assert_eq(kv_out_check("", &err), -1);
    cr_assert(strstr(err.msg, "empty"), "%s", err.msg);
    cr_assert_eq(kv_out_check("/dev/null", &err), -1);
    cr_assert(strstr(err.msg, "character device"), "%s", err.msg);
    cr_assert_eq(kv_out_check(dir, &err), -1);
    cr_assert(strstr(err.msg, "a directory"), "%s", err.msg);
    snprintf(p, sizeof p, "%s/", dir);
    cr_assert_eq(kv_out_check(p, &err), -1);
    snprintf(p, sizeof p, "%s/new.txt", dir);
    cr_assert_eq(kv_out_check(p, &err), 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/no/new.txt", dir);
    cr_assert_eq(kv_out_check(p, &err), -1);
    cr_assert(strstr(err.msg, "does not exist"), "%s", err.msg);
    /* directories: existing, or missing under an existing writable one */
    cr_assert_eq(kv_out_dir_check(dir, &err), 0, "%s", err.msg);
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    cr_assert_eq(kv_out_dir_check(sub, &err), 0, "%s", err.msg);
    cr_assert_eq(kv_out_dir_check("/dev/null/x", &err), -1);
    cr_assert_eq(kv_out_dir_check("", &err), -1);
    /* the writer: a path that became a fifo while the work ran is not replaced */
    snprintf(p, sizeof p, "%s/late", dir);
    kv_afile f;
    cr_assert_eq(kv_afile_open(&f, p, &err), 0, "%s", err.msg);
    fputs("data\n", f.fp);
    cr_assert_eq(mkfifo(p, 0600), 0);
    cr_assert_eq(kv_afile_commit(&f, &err), -1);
    cr_assert(strstr(err.msg, "a fifo"), "%s", err.msg);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    cr_assert_eq(dir_entries(dir), 1, "the temporary was left behind");
    /* and kv_afile_open itself refuses a device */
    cr_assert_eq(kv_afile_open(&f, "/dev/full", &err), -1);
    cr_assert(f.fp == NULL);
    rm_dir(dir);
}

/* ---- signals ---- */

/* kvsim trace of a long run; SIGTERM or SIGINT once its temporary exists:
 * the process dies of that signal and the temporary is gone. */
static void signal_case(int sig)
{
    const char *bin = getenv("KVSIM_BIN");
    cr_assert(bin, "KVSIM_BIN not set (run through make test)");
    char dir[256], out[300];
    tmp_dir(dir, sizeof dir, sig == SIGTERM ? "sigterm" : "sigint");
    snprintf(out, sizeof out, "%s/long.trc", dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 1);
        dup2(nul, 2);
        for (int fd = 3; fd < 1024; fd++) /* not Criterion's channels to its runner */
            close(fd);
        /* an ignored disposition survives exec and kvsim keeps it ignored (kv_afile.c): a background
         * job of a non-interactive shell starts with SIGINT ignored, so give the child the default
         * a user's terminal gives it */
        signal(sig, SIG_DFL);
        execl(bin, bin, "trace", "--out", out, "--model", "llama3.1-8b", "--context", "32K", "--steps", "8",
              "--threads", "1", (char *)NULL);
        _exit(127);
    }
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)pid);
    int seen = 0;
    for (int i = 0; i < 600 && !seen; i++) { /* up to 60 s for the start */
        seen = access(tmp, F_OK) == 0;
        if (!seen) nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    cr_assert(seen, "%s never appeared", tmp);
    nanosleep(&(struct timespec){0, 200000000}, NULL);
    cr_assert_eq(kill(pid, sig), 0);
    int st = 0;
    pid_t got = 0;
    for (int i = 0; i < 300 && got == 0; i++) { /* bounded: 30 s, then SIGKILL and fail */
        got = waitpid(pid, &st, WNOHANG);
        if (got == 0) nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        cr_assert_fail("kvsim did not die of signal %d within 30 s", sig);
    }
    cr_assert_eq(got, pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == sig, "status 0x%x, expected death by signal %d", st, sig);
    cr_assert_neq(access(tmp, F_OK), 0, "%s left behind", tmp);
    cr_assert_eq(dir_entries(dir), 0, "files left in %s", dir);
    rm_dir(dir);
}

Test(inputs, sigterm_removes_the_temporary) { signal_case(SIGTERM); }
Test(inputs, sigint_removes_the_temporary) { signal_case(SIGINT); }

/* ---- numbers ---- */

Test(inputs, numbers_are_ranged_with_the_flag_named)
{
    /* {args, flag, what the message must also say} */
    const char *cases[][3] = {
        {"fidelity --model smollm2-135m --context 512 --layers 4294967296", "--layers", "allowed [0, 29]"},
        {"fidelity --model smollm2-135m --context 512 --layers 2147483648", "--layers", "2147483648 is out of"},
        {"fidelity --model smollm2-135m --context 512 --layers 9223372036854775807", "--layers", "[0, 29]"},
        {"fidelity --model smollm2-135m --context 512 --layers 30", "--layers", "30 is out of range; allowed [0, 29]"},
        {"fidelity --model smollm2-135m --context 512 --layers 0-30", "--layers", "30 is out of range"},
        {"params --rho nan", "--rho", "[0, 1]"},
        {"params --rho 1.5", "--rho", "[0, 1]"},
        {"params --rho inf", "--rho", "finite"},
        {"params --local-window -1", "--local-window", "allowed [0, "},
        {"params --skip-layers 31 --model smollm2-135m", "--skip-layers", "[0, 30]"},
        {"params --budget 2199023255552", "--budget", "allowed [1, 2147483647]"},
        {"params --budget 4294967296", "--budget", "allowed [1, 2147483647]"},
        {"params --budget 1,,2", "--budget", "comma list"},
        {"params --context 99999999999999999999", "--context", "integer"},
        {"params --topr 65 --model smollm2-135m", "--topr", "[1, 64]"},
        {"sweep --threads 0 --out /tmp/kvsim-never.csv", "--threads", "[1, 64]"},
        {"sweep --fidelity-context -5 --out /tmp/kvsim-never.csv", "--fidelity-context", "allowed [1, "},
        {"sweep --budget 0 --out /tmp/kvsim-never.csv", "--budget", "allowed [1, "},
        {"sweep --tp 2048 --out /tmp/kvsim-never.csv", "--tp", "[1, 1024]"},
        {"plan --target-tokens-per-s 1e300", "--target-tokens-per-s", "1e+12"},
        {"plan --tpot-slo nan", "--tpot-slo", "finite"},
        {"plan --tpot-slo -1", "--tpot-slo", "[0, 3600]"},
        {"plan --tp 0", "--tp", "[1, 1024]"},
        {"predict --batch 0", "--batch", "allowed [1, "},
        {"trace --out /tmp/kvsim-never.trc --batch 5000", "--batch", "[1, 4096]"},
        {"eval --passkey --contexts -5", "--contexts", "allowed [128, "},
        {"eval --context abc", "--context", "integer"},
        {"eval --passkey --depths 0,101", "--depths", "[0, 100]"},
        {"generate --prompt hi --window 2147483648", "--window", "16777216"},
        {"generate --prompt hi --threads 65", "--threads", "[0, 64]"},
        {"inspect --layer 4294967296 traces/samples/rocketkv.trc", "--layer", "[0, 1023]"},
        {"inspect --step -2 traces/samples/rocketkv.trc", "--step", "allowed [0, "},
        {"golden --model smollm2-135m --context 256 --budget 64 --layer 30 --out /tmp/kvsim-never", "--layer",
         "[0, 29]"},
        {"golden --model smollm2-135m --context 256 --budget 64 --kv-head 4294967296 --out /tmp/kvsim-never",
         "--kv-head", "[0, 2]"},
        {"kvdump --gguf Makefile --text Makefile --tokens -1 --out /tmp/kvsim-never.kvd", "--tokens", "allowed [1, "},
        {"report --sweep Makefile --out /tmp/kvsim-never --tp 0", "--tp", "[1, 1024]"},
        {"fidelity --context 512 --workload gguf:a,text:b,offset:-1", "offset:", "allowed [0, "},
        {"sweep --shard 99999999999/2 --out /tmp/kvsim-never.csv", "--shard i", "allowed [1, 2]"},
        {"sweep --shard 1/4294967297 --out /tmp/kvsim-never.csv", "--shard N", "[1, 1048576]"},
        {"serve --rate 1 --shard 3/2", "--shard i", "allowed [1, 2]"},
        {"serve --rate 1 --shard 1/", "--shard N", "integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_usage(cases[i][0], cases[i][1], cases[i][2], NULL);
}

Test(inputs, index_lists_are_ranged_without_wrap)
{
    int64_t v[1024];
    kv_err err;
    cr_assert_eq(kv_parse_i64_list("--layers", "0-3,8", 0, INT32_MAX, 1, v, 1024, &err), 5, "%s", err.msg);
    cr_assert_eq(v[0], 0);
    cr_assert_eq(v[3], 3);
    cr_assert_eq(v[4], 8);
    cr_assert_eq(kv_parse_i64_list("--layers", "2147483647", 0, INT32_MAX, 1, v, 1024, &err), 1, "%s", err.msg);
    cr_assert_eq(v[0], 2147483647);
    const char *bad[] = {"2147483648", "4294967296", "9223372036854775807", "99999999999999999999", "", "0,",
                         ",0", "+1", " 1", "-1", "3-1", "0-2000000", "1x", "0--3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        cr_assert_eq(kv_parse_i64_list("--layers", bad[i], 0, INT32_MAX, 1, v, 1024, &err), -1, "'%s' accepted", bad[i]);
        cr_assert(strstr(err.msg, "--layers"), "'%s': %s", bad[i], err.msg);
    }
}

Test(inputs, sweep_spec_numbers_are_ranged)
{
    char dir[256], p[300];
    tmp_dir(dir, sizeof dir, "spec");
    const char *cases[][2] = {
        {"models: [smollm2-135m]\ncontexts: [512]\nbudgets: [4294967296]\n", "key 'budgets': 4294967296 is out of range"},
        {"models: [smollm2-135m]\ncontexts: [9223372036854775807]\n", "key 'contexts': 9223372036854775807 is out"},
        {"models: [smollm2-135m]\ncontexts: [512]\nfidelity:\n  context: 99999999999999999999\n", "key 'context'"},
        {"models: [smollm2-135m]\ncontexts: [512]\nfidelity:\n  context: -5\n", "[1, 2147483647]"},
        {"models: [smollm2-135m]\ncontexts: [512]\nfidelity:\n  threads: 0\n", "threads"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/s%zu.yaml", dir, i);
        FILE *f = fopen(p, "w");
        cr_assert(f);
        fputs(cases[i][0], f);
        fclose(f);
        char args[600];
        snprintf(args, sizeof args, "sweep %s --out %s/o.csv", p, dir);
        cli_result r;
        cli_run(&r, args);
        cr_assert_eq(r.rc, 1, "%s: exit %d: %s", cases[i][0], r.rc, r.err);
        cr_assert(cli_one_line(r.err) && strstr(r.err, p) && strstr(r.err, cases[i][1]), "%s", r.err);
    }
    rm_dir(dir);
}

/* ---- lengths ---- */

Test(inputs, lengths_past_the_model_are_refused_up_front)
{
    /* llama3.1-8b: max_position_embeddings 131072 (its models/ YAML) */
    const char *cases[][2] = {
        {"predict --new 2147483647", "131072"},
        {"plan --new 2147483647", "131072"},
        {"params --new 200000", "131072"},
        {"sweep --model llama3.1-8b --new 2147483647 --out /tmp/kvsim-never.csv", "--new"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const double t0 = kv_now_s();
        cli_result r;
        cli_run(&r, cases[i][0]);
        cr_assert(r.rc == 2 || (r.rc == 1 && !strncmp(cases[i][0], "sweep", 5)), "%s: exit %d: %s", cases[i][0],
                  r.rc, r.err);
        cr_assert(cli_one_line(r.err) && strstr(r.err, "--new") && strstr(r.err, cases[i][1]), "%s: %s",
                  cases[i][0], r.err);
        cr_assert(kv_now_s() - t0 < 20.0, "%s ran before refusing", cases[i][0]);
    }
}

Test(inputs, generation_lengths_against_the_model)
{
    cr_assert(model_present(), MODEL_GGUF " missing: run make model");
    /* SmolLM2-135M: llama.context_length 8192 */
    expect_usage("generate --prompt hi --max-new 100000", "--max-new", "100000", "[0, 8192]", NULL);
    expect_usage("eval --passkey --contexts 100000", "--contexts", "100000", "7927", NULL);
    expect_usage("eval --context 8000 --new 500", "--context", "8500", "8192", NULL);
    /* a prompt of about 9,000 tokens: "hello " is one token */
    static char args[80000];
    int n = snprintf(args, sizeof args, "generate --max-new 1 --prompt '");
    for (int i = 0; i < 9000; i++) n += snprintf(args + n, sizeof args - (size_t)n, "hello ");
    snprintf(args + n, sizeof args - (size_t)n, "'");
    const char *bin = getenv("KVSIM_BIN");
    cr_assert(bin);
    char *cmd = malloc(sizeof args + 600);
    snprintf(cmd, sizeof args + 600, "%s %s >/dev/null 2>/tmp/kvsim-inputs-long-%d.err", bin, args, (int)getpid());
    int st = system(cmd);
    free(cmd);
    char e[64], err[4096];
    snprintf(e, sizeof e, "/tmp/kvsim-inputs-long-%d.err", (int)getpid());
    cli_slurp(e, err, sizeof err);
    remove(e);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x: %s", st, err);
    cr_assert(cli_one_line(err) && strstr(err, "--prompt") && strstr(err, "8192"), "%s", err);
}

/* ---- special files as inputs ---- */

Test(inputs, special_files_are_refused_as_inputs)
{
    expect_usage("eval --text /tmp", "--text", "/tmp", "directory", NULL);
    expect_usage("eval --text /dev/zero", "--text", "character device", NULL);
    expect_usage("kvdump --gguf Makefile --text /tmp --tokens 8 --out /tmp/kvsim-never.kvd", "--text", "directory",
                 NULL);
    expect_usage("kvdump --gguf /dev/zero --text Makefile --tokens 8 --out /tmp/kvsim-never.kvd", "--gguf",
                 "character device", NULL);
    const char *fails[] = {"inspect /dev/zero", "predict --trace /dev/zero", "inspect /tmp"};
    for (size_t i = 0; i < sizeof fails / sizeof fails[0]; i++) {
        cli_result r;
        cli_run(&r, fails[i]);
        cr_assert_eq(r.rc, 1, "%s: exit %d: %s", fails[i], r.rc, r.err);
        cr_assert(cli_one_line(r.err) && strstr(r.err, "regular file"), "%s: %s", fails[i], r.err);
    }
    kv_err err;
    cr_assert_eq(kv_in_check("/dev/zero", 0, &err), -1);
    cr_assert_eq(kv_in_check("Makefile", 10, &err), -1);
    cr_assert(strstr(err.msg, "larger than the 10 allowed"), "%s", err.msg);
    cr_assert_eq(kv_in_check("Makefile", 0, &err), 0, "%s", err.msg);
    char *b;
    size_t n;
    cr_assert_eq(kv_read_text("/tmp", 1 << 20, &b, &n, &err), -1);
    cr_assert_eq(kv_read_text("Makefile", 1 << 20, &b, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(b[n], '\0');
    struct stat st;
    cr_assert_eq(stat("Makefile", &st), 0);
    cr_assert_eq((off_t)n, st.st_size);
    free(b);
}

/* ---- GGUF metadata ---- */

Test(inputs, gguf_reals_are_validated)
{
    kv_err err;
    const double bad_theta[] = {NAN, INFINITY, -INFINITY, 0.0, -1.0, 1.0, 1e31};
    for (size_t i = 0; i < sizeof bad_theta / sizeof bad_theta[0]; i++) {
        cr_assert_eq(llm_check_float_meta("m.gguf", bad_theta[i], 1e-5, &err), -1, "theta %g accepted", bad_theta[i]);
        cr_assert(strstr(err.msg, "m.gguf") && strstr(err.msg, "llama.rope.freq_base"), "%s", err.msg);
    }
    const double bad_eps[] = {NAN, INFINITY, 0.0, -1.0, -1e-5, 2.0};
    for (size_t i = 0; i < sizeof bad_eps / sizeof bad_eps[0]; i++) {
        cr_assert_eq(llm_check_float_meta("m.gguf", 1e4, bad_eps[i], &err), -1, "eps %g accepted", bad_eps[i]);
        cr_assert(strstr(err.msg, "layer_norm_rms_epsilon"), "%s", err.msg);
    }
    cr_assert_eq(llm_check_float_meta("m.gguf", 10000.0, 1e-5, &err), 0, "%s", err.msg);
    cr_assert_eq(llm_check_float_meta("m.gguf", 500000.0, 1e-6, &err), 0, "%s", err.msg);
}

/* The real model with llama.rope.freq_base (a FLOAT32, GGUF type 6) set to
 * NaN: refused at load, naming the key. */
Test(inputs, gguf_nan_freq_base_refused_end_to_end)
{
    cr_assert(model_present(), MODEL_GGUF " missing: run make model");
    char *b;
    size_t n;
    kv_err err;
    cr_assert_eq(kv_read_file(MODEL_GGUF, (size_t)1 << 30, &b, &n, &err), 0, "%s", err.msg);
    const char key[] = "llama.rope.freq_base";
    char *at = NULL;
    for (size_t i = 0; !at && i + sizeof key < n; i++)
        if (!memcmp(b + i, key, sizeof key - 1)) at = b + i;
    cr_assert(at, "no %s in the model", key);
    uint32_t type;
    memcpy(&type, at + sizeof key - 1, 4);
    cr_assert_eq(type, 6u, "freq_base is GGUF type %u, expected 6 (FLOAT32)", type);
    const float nan = NAN;
    memcpy(at + sizeof key - 1 + 4, &nan, 4);
    char path[128];
    snprintf(path, sizeof path, "/tmp/kvsim-inputs-nan-%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
    free(b);
    char args[300];
    snprintf(args, sizeof args, "generate --gguf %s --prompt hi --max-new 2", path);
    cli_result r;
    cli_run(&r, args);
    remove(path);
    cr_assert_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_assert(cli_one_line(r.err) && strstr(r.err, "llama.rope.freq_base = nan"), "%s", r.err);
}

/* ---- trace reader ---- */

Test(inputs, corrupt_stage1_block_is_refused_without_a_leak)
{
    trc_reader *r;
    kv_err err;
    cr_assert_eq(trc_open("tests/data/traces/stage1_trailing_bytes.trc", &r, &err), 0, "%s", err.msg);
    trc_stage1 s1 = {0};
    cr_assert_eq(trc_read_stage1(r, 0, &s1, &err), -1);
    cr_assert(strstr(err.msg, "trailing bytes after the last stage-1 record"), "%s", err.msg);
    /* the reader freed what it had grown: nothing for the caller to free */
    cr_assert(s1.rec == NULL && s1.buf == NULL && s1.offs == NULL && s1.nrec == 0);
    trc_close(r);
    /* and end to end under LeakSanitizer: exit 1 and one line, no leak report */
    cli_result c;
    cli_run(&c, "inspect tests/data/traces/stage1_trailing_bytes.trc");
    cr_assert_eq(c.rc, 1, "exit %d: %s", c.rc, c.err);
    cr_assert(cli_one_line(c.err) && strstr(c.err, "offset"), "%s", c.err);
}

/* ---- calibration from another device ---- */

Test(inputs, device_names_match_hardware_models)
{
    struct { const char *hw, *dev; int want; } cases[] = {
        {"h100-sxm", "NVIDIA H100 80GB HBM3", 1}, {"h100-pcie", "NVIDIA H100 PCIe", 1},
        {"h100-nvl", "NVIDIA H100 NVL", 1},       {"h100-pcie", "NVIDIA H100 80GB HBM3", 0},
        {"h100-sxm", "NVIDIA H100 PCIe", 0},      {"h100-sxm", "NVIDIA H100 NVL", 0},
        {"h200", "NVIDIA H200", 1},               {"h200", "NVIDIA H100 80GB HBM3", 0},
        {"a100-40g", "NVIDIA A100-SXM4-40GB", 1}, {"a100-80g", "NVIDIA A100-SXM4-40GB", 0},
        {"a100-80g", "NVIDIA A100-SXM4-80GB", 1}, {"l40s", "NVIDIA L40S", 1},
        {"b200", "NVIDIA B200", 1},               {"mi300x", "AMD Instinct MI300X", 1},
        {"mi300x", "NVIDIA H100 80GB HBM3", 0},   {"h100-sxm", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hw_model h;
        kv_err err;
        cr_assert_eq(hw_model_load(cases[i].hw, &h, &err), 0, "%s", err.msg);
        cr_assert_eq(hw_device_matches(&h, cases[i].dev), cases[i].want, "%s vs '%s'", cases[i].hw, cases[i].dev);
    }
}

Test(inputs, calibration_from_another_device_needs_calibration_any)
{
    expect_usage("predict --hw h200 --calibration tests/data/calib_h100.json", "--calibration", "NVIDIA H100 80GB HBM3",
                 "h200", "--calibration-any", NULL);
    expect_usage("hw show h200 --calibration tests/data/calib_h100.json", "--calibration-any", NULL);
    cr_assert_eq(cli_rc("predict --hw h200 --calibration tests/data/calib_h100.json --calibration-any"), 0);
    cr_assert_eq(cli_rc("predict --hw h100-sxm --calibration tests/data/calib_h100.json"), 0);
}

/* ---- messages of the option layer ---- */

Test(inputs, option_messages)
{
    expect_usage("params --frobnicate", "unknown option --frobnicate", NULL);
    expect_usage("fidelity --model smollm2-135m --context 512 --x", "unknown option --x", NULL);
    expect_usage("fidelity --model smollm2-135m --context 512 --layers", "--layers needs a value", NULL);
    expect_usage("params --budget", "--budget needs a value", NULL);
    expect_usage("params --json=1", "--json takes no value", NULL);
    expect_usage("eval --context 0", "--context", "0", "[1, 2147483647]", NULL);
}
