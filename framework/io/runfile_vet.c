/* runfile_vet.c — run files read first in a forked child with a time limit (runfile_vet.h).
 *
 * The child inherits the parent's memory, so it reads with the same code and needs no program of
 * its own. It closes every descriptor but its socket and stdio (a copy of a run's lock or of the
 * index's lock would otherwise keep an flock held after the parent let go of it), then serves
 * requests: one file per request, one fixed-size answer (status and message) per file, until the
 * parent closes its end; then it _exit()s. No atexit handler runs in it, so neither HDF5's
 * shutdown (which reports the leaks of a failed read) nor a flush of the parent's stdio buffers
 * happens twice. An alarm ends a child stuck on a file should the parent die before killing it.
 * A socket pair rather than pipes: a write to a child that died is EPIPE with MSG_NOSIGNAL, not a
 * SIGPIPE that would end the parent. */
#include "io/runfile_vet.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/path.h"
#include "io/runlog.h"

typedef struct vet_request {
    int kind;
    char path[DM_PATH_SIZE];
} vet_request;

typedef struct vet_answer {
    int status;
    char msg[DM_ERR_SIZE];
} vet_answer;

double dm_runfile_seconds(void)
{
    const char *env = getenv("DIFFLAB_READ_SECONDS");
    return env && atof(env) > 0 ? atof(env) : DM_READ_SECONDS;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Send or receive all n bytes (no deadline: the child's side). 0 on success, -1 on error or end. */
static int send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int recv_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* In the child: every descriptor but stdio and keep closed. */
static void close_others(int keep)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != keep && fd != dirfd(d))
            close(fd);
    }
    closedir(d);
}

/* The child: serve requests on fd until the parent closes it. */
static _Noreturn void serve(int fd, double seconds)
{
    close_others(fd);
    signal(SIGALRM, SIG_DFL);
    vet_request q;
    vet_answer a;
    while (recv_all(fd, &q, sizeof q) == 0) {
        q.path[sizeof q.path - 1] = '\0';
        memset(&a, 0, sizeof a);
        alarm((unsigned)seconds + 5);
        if (q.kind == DM_RUNFILE_RUN) {
            dm_runrec r;
            if (!(a.status = (int)dm_runlog_read(q.path, &r, a.msg)))
                dm_runrec_free(&r);
        } else {
            dm_ckpt c;
            if (!(a.status = (int)dm_ckpt_read(q.path, &c, a.msg)))
                dm_ckpt_free(&c);
        }
        alarm(0);
        if (send_all(fd, &a, sizeof a) != 0)
            break;
    }
    _exit(0);
}

static dm_status start(dm_runfile_vetter *v, const char *path, double seconds, char *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return dm_err(err, errno == EMFILE || errno == ENFILE ? DM_E_NOMEM : DM_E_IO,
                      "cannot check %s: socketpair: %s", path, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return dm_err(err, e == EAGAIN || e == ENOMEM ? DM_E_NOMEM : DM_E_IO,
                      "cannot check %s in a child process: fork: %s", path, strerror(e));
    }
    if (pid == 0) {
        close(sv[0]);
        serve(sv[1], seconds);
    }
    close(sv[1]);
    v->pid = pid;
    v->fd = sv[0];
    return DM_OK;
}

/* Kill v's child (if kill) and reap it; its wait status, or -1 if none could be had. */
static int stop(dm_runfile_vetter *v, int kill_it)
{
    int ws = -1;
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
    if (v->pid > 0) {
        if (kill_it)
            kill(v->pid, SIGKILL);
        pid_t w;
        while ((w = waitpid(v->pid, &ws, 0)) < 0 && errno == EINTR)
            ;
        if (w != v->pid)
            ws = -1; /* (SIGCHLD ignored by whoever started us: reaped already) */
    }
    v->pid = 0;
    return ws;
}

void dm_runfile_vetter_end(dm_runfile_vetter *v)
{
    stop(v, 0); /* it ends when its socket closes */
}

/* Wait for the answer on fd until the deadline. 1 when it came, 0 when the child ended without
 * one, -1 when the deadline passed first. */
static int await_answer(int fd, vet_answer *a, double deadline)
{
    size_t got = 0;
    while (got < sizeof *a) {
        double left = deadline - now_s();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno != EINTR)
            return 0;
        if (r <= 0)
            continue;
        ssize_t n = recv(fd, (char *)a + got, sizeof *a - got, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) /* the child is gone */
            return 0;
        got += (size_t)n;
    }
    return 1;
}

dm_status dm_runfile_vet(dm_runfile_vetter *v, const char *path, dm_runfile_kind kind, char *err)
{
    dm_runfile_vetter one = DM_RUNFILE_VETTER_INIT;
    const double seconds = dm_runfile_seconds();
    vet_request q;
    memset(&q, 0, sizeof q);
    q.kind = (int)kind;
    if (strlen(path) >= sizeof q.path)
        return dm_err(err, DM_E_INPUT, "path too long: %.200s...", path);
    memcpy(q.path, path, strlen(path) + 1);
    if (!v)
        v = &one;
    /* A kept child may have ended (its alarm, the OOM killer): then one fresh start. */
    dm_status st = DM_OK;
    int sent = -1;
    for (int attempt = 0; attempt < 2 && sent != 0; ++attempt) {
        if (v->pid == 0 && (st = start(v, path, seconds, err)))
            return st;
        if ((sent = send_all(v->fd, &q, sizeof q)) != 0)
            stop(v, 1);
    }
    if (sent != 0)
        return dm_err(err, DM_E_IO, "cannot check %s: the reading process does not take requests", path);
    vet_answer a;
    memset(&a, 0, sizeof a);
    const int answer = await_answer(v->fd, &a, now_s() + seconds);
    if (answer > 0) {
        if (v == &one)
            stop(v, 0);
        a.msg[sizeof a.msg - 1] = '\0';
        return a.status ? dm_err(err, (dm_status)a.status, "%s", a.msg) : DM_OK;
    }
    int ws = stop(v, 1); /* spinning, or a zombie already */
    if (answer < 0)
        return dm_err(err, DM_E_IO, "%s: reading it took more than %g s (DIFFLAB_READ_SECONDS); the file is "
                      "damaged", path, seconds);
    if (ws != -1 && WIFSIGNALED(ws))
        return dm_err(err, DM_E_IO, "%s: reading it crashed the reader (signal %d, %s); the file is damaged", path,
                      WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) != 0) /* e.g. a sanitizer's report inside HDF5 */
        return dm_err(err, DM_E_IO, "%s: reading it ended the reader (exit status %d); the file is damaged", path,
                      WEXITSTATUS(ws));
    return dm_err(err, DM_E_IO, "%s: the process that read it ended without an answer", path);
}
