/* kv_afile.c — atomic output files, the output-path checks, and the removal
 * of temporaries on SIGINT/SIGTERM/SIGHUP. See kv_common.h.
 *
 * Rule: a command refuses a bad output path before it computes anything
 * (kv_out_check / kv_out_dir_check), and the writer never renames over
 * anything but a regular file or a missing path, checked again just before
 * the rename (the path may have changed while the work ran). */
#define _POSIX_C_SOURCE 200809L
#include "kv_common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the registry of open temporaries --------------------------------------
 * Fixed slots, so the signal handler touches no allocator and no lock: it
 * unlinks every used slot (unlink is async-signal-safe), restores the default
 * action and re-raises, so the exit status still says which signal it was.
 * A slot is filled before it is marked used and unmarked before it is reused;
 * with more than KV_AFILE_SLOTS files open at once the extra ones are simply
 * not cleaned up on a signal (they are still removed on every error path). */
#define KV_AFILE_SLOTS 64
static char reg_path[KV_AFILE_SLOTS][sizeof(((kv_afile *)0)->tmp)]; /* temporary names */
static volatile sig_atomic_t reg_used[KV_AFILE_SLOTS];             /* 1: slot holds a live temporary */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static const int reg_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void on_signal(int sig)
{
    int saved = errno;
    for (int i = 0; i < KV_AFILE_SLOTS; i++)
        if (reg_used[i])
            unlink(reg_path[i]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    raise(sig);
    errno = saved;
}

/* Installs the handler for each signal whose action is still the default
 * (a signal the caller ignores, e.g. SIGHUP under nohup, stays ignored). */
static void install_handlers(void)
{
    for (size_t i = 0; i < sizeof reg_signals / sizeof reg_signals[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(reg_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (size_t k = 0; k < sizeof reg_signals / sizeof reg_signals[0]; k++)
            sigaddset(&sa.sa_mask, reg_signals[k]);
        sigaction(reg_signals[i], &sa, NULL);
    }
}

static void reg_add(const char *tmp)
{
    pthread_once(&reg_once, install_handlers);
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < KV_AFILE_SLOTS; i++)
        if (!reg_used[i]) {
            memcpy(reg_path[i], tmp, strlen(tmp) + 1);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            reg_used[i] = 1;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

static void reg_remove(const char *tmp)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < KV_AFILE_SLOTS; i++)
        if (reg_used[i] && !strcmp(reg_path[i], tmp)) {
            reg_used[i] = 0;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

/* ---- path checks ------------------------------------------------------------ */
static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISFIFO(m) ? "a fifo" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* The directory part of path ("." when there is none) into dir[cap]. */
static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

static int writable_dir(const char *what, const char *dir, kv_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return kv_errf(err, "%s: directory %s does not exist: %s", what, dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return kv_errf(err, "%s: %s is %s, not a directory", what, dir, file_kind(st.st_mode));
    if (access(dir, W_OK | X_OK) != 0)
        return kv_errf(err, "%s: directory %s is not writable: %s", what, dir, strerror(errno));
    return 0;
}

int kv_out_check(const char *path, kv_err *err)
{
    if (!path || !*path)
        return kv_errf(err, "output path is empty; a file name is needed");
    size_t len = strlen(path);
    if (len >= sizeof(((kv_afile *)0)->path))
        return kv_errf(err, "%.64s...: output path longer than %zu bytes", path, sizeof(((kv_afile *)0)->path) - 1);
    if (path[len - 1] == '/')
        return kv_errf(err, "%s: output path ends in '/'; a file name is needed", path);
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return kv_errf(err, "%s: output exists and is %s; only a regular file or a new path may be written",
                           path, file_kind(st.st_mode));
    } else if (errno != ENOENT) {
        return kv_errf(err, "%s: cannot check the output path: %s", path, strerror(errno));
    }
    char dir[sizeof(((kv_afile *)0)->path)];
    dir_of(path, dir, sizeof dir);
    return writable_dir(path, dir, err);
}

int kv_out_dir_check(const char *dir, kv_err *err)
{
    if (!dir || !*dir)
        return kv_errf(err, "output directory is empty; a directory name is needed");
    char buf[1024];
    if (strlen(dir) >= sizeof buf)
        return kv_errf(err, "%.64s...: output directory longer than %zu bytes", dir, sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", dir);
    /* the nearest existing ancestor (the directory itself when it exists) */
    for (;;) {
        struct stat st;
        if (stat(buf, &st) == 0)
            return writable_dir(dir, buf, err);
        if (errno != ENOENT)
            return kv_errf(err, "%s: cannot check the output directory %s: %s", dir, buf, strerror(errno));
        size_t n = strlen(buf);
        while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
        char parent[1024];
        dir_of(buf, parent, sizeof parent);
        memcpy(buf, parent, strlen(parent) + 1);
    }
}

int kv_in_check(const char *path, uint64_t max_bytes, kv_err *err)
{
    struct stat st;
    if (!path || !*path)
        return kv_errf(err, "input path is empty; a file name is needed");
    if (stat(path, &st) != 0)
        return kv_errf(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return kv_errf(err, "%s: is %s; a regular file is needed", path, file_kind(st.st_mode));
    if (max_bytes && (uint64_t)st.st_size > max_bytes)
        return kv_errf(err, "%s: %lld bytes, larger than the %llu allowed", path, (long long)st.st_size,
                       (unsigned long long)max_bytes);
    return 0;
}

/* ---- the writer ------------------------------------------------------------- */
int kv_afile_open(kv_afile *f, const char *path, kv_err *err)
{
    memset(f, 0, sizeof *f);
    if (kv_out_check(path, err) != 0)
        return -1;
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    reg_add(f->tmp);
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        int saved = errno;
        reg_remove(f->tmp);
        return kv_errf(err, "%s: cannot create temporary file %s: %s", path, f->tmp, strerror(saved));
    }
    return 0;
}

/* Removes the temporary and forgets it. */
static void drop_tmp(kv_afile *f)
{
    remove(f->tmp);
    reg_remove(f->tmp);
}

int kv_afile_commit(kv_afile *f, kv_err *err)
{
    if (!f->fp)
        return kv_errf(err, "%s: file was not open", f->path);
    int bad = ferror(f->fp);
    if (fflush(f->fp) != 0)
        bad = 1;
    if (!bad && fsync(fileno(f->fp)) != 0 && errno != EINVAL)
        bad = 1;
    int saved = errno;
    if (fclose(f->fp) != 0)
        bad = 1;
    f->fp = NULL;
    if (bad) {
        drop_tmp(f);
        return kv_errf(err, "%s: write failed: %s", f->path, strerror(saved ? saved : EIO));
    }
    struct stat st;
    if (stat(f->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        drop_tmp(f);
        return kv_errf(err, "%s: output is now %s; only a regular file or a new path may be replaced", f->path,
                       file_kind(st.st_mode));
    }
    if (rename(f->tmp, f->path) != 0) {
        saved = errno;
        drop_tmp(f);
        return kv_errf(err, "%s: cannot rename %s into place: %s", f->path, f->tmp, strerror(saved));
    }
    reg_remove(f->tmp);
    return 0;
}

void kv_afile_abort(kv_afile *f)
{
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
    }
    if (f->tmp[0])
        drop_tmp(f);
}
