/*
 * A fault injector for the power-loss test (server/tests/integration/power_loss.rs),
 * preloaded into `hanko serve` with LD_PRELOAD: it models a disk that keeps only what an
 * fsync covered.
 *
 * Before each fsync/fdatasync of a regular file under $HANKO_POWERLOSS_DIR it copies the
 * whole file to "<file>.synced" (through a temporary file and a rename, so a copy is
 * complete or absent). A "power loss" is then: SIGKILL the server, put each "<file>.synced"
 * in place of its file, and drop what is not durable on its own (SQLite's -shm index).
 * Whatever the server wrote after the last sync of a file is gone, as the page cache
 * would be.
 *
 * The copy is taken when the sync begins: a sync promises the writes that completed
 * before it, and the copy holds exactly those (and perhaps some that raced with it, as
 * a disk may also keep). One mutex orders the copies; it slows the server, which the
 * test does not mind. $HANKO_POWERLOSS_SYNC_MS (default 0) makes every sync that long
 * after its copy, as a slow disk would: the writer then has batches committed and not yet
 * synced at almost any moment, which is what a power loss must find. Built by the test
 * with `cc -shared -fPIC`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t copying = PTHREAD_MUTEX_INITIALIZER;

/* Writes all of buf[0..len) to fd; 0 on success. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Copies the file behind fd to "<its path>.synced" when it is a regular file under
 * $HANKO_POWERLOSS_DIR. */
static void snapshot(int fd) {
    const char *dir = getenv("HANKO_POWERLOSS_DIR");
    if (dir == NULL || *dir == '\0') return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = '\0';
    size_t dl = strlen(dir);
    if (strncmp(path, dir, dl) != 0 || path[dl] != '/') return;
    char tmp[PATH_MAX + 16], dst[PATH_MAX + 16];
    snprintf(dst, sizeof dst, "%s.synced", path);
    snprintf(tmp, sizeof tmp, "%s.synced.tmp", path);
    pthread_mutex_lock(&copying);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out >= 0) {
        static char buf[1 << 16];
        off_t off = 0;
        ssize_t r;
        int failed = 0;
        while ((r = pread(fd, buf, sizeof buf, off)) != 0) {
            if (r < 0) {
                if (errno == EINTR) continue;
                failed = 1;
                break;
            }
            if (write_all(out, buf, (size_t)r) != 0) {
                failed = 1;
                break;
            }
            off += r;
        }
        close(out);
        if (failed || rename(tmp, dst) != 0) unlink(tmp);
    }
    pthread_mutex_unlock(&copying);
    const char *ms = getenv("HANKO_POWERLOSS_SYNC_MS");
    if (ms != NULL) {
        long n = strtol(ms, NULL, 10);
        if (n > 0) {
            struct timespec t = {n / 1000, (n % 1000) * 1000000L};
            while (nanosleep(&t, &t) != 0 && errno == EINTR) {
            }
        }
    }
}

typedef int (*sync_fn)(int);

/* Copies the file, waits as a slow disk would, then calls libc's `name` (cached in *f). */
static int synced(sync_fn *f, const char *name, int fd) {
    if (*f == NULL) {
        *f = (sync_fn)dlsym(RTLD_NEXT, name);
        if (*f == NULL) {
            fprintf(stderr, "sync_snapshot: no %s in libc\n", name);
            abort();
        }
    }
    int saved = errno;
    snapshot(fd);
    errno = saved;
    return (*f)(fd);
}

int fsync(int fd) {
    static sync_fn f;
    return synced(&f, "fsync", fd);
}

int fdatasync(int fd) {
    static sync_fn f;
    return synced(&f, "fdatasync", fd);
}
