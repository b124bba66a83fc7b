/* posix_spawn with the file actions and attributes of a clean child (proc_spawn.h). */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "proc_spawn.h"

#ifdef HC_HAVE_PROC_SPAWN
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <unistd.h>

/* err: what was being done, without the errno's words (the caller has rc, and says it its way). */
static int hc_proc_spawn_failed(int rc, const char *program, const char *step, char *err, size_t errlen)
{
    snprintf(err, errlen, "starting %s%s%s", program, step ? ": " : "", step ? step : "");
    return rc;
}

/* An output descriptor among 0-2 would be overwritten in the child before its own dup2 (stdin's
 * open closes 0 first; the dup2 onto 1 closes 1): it is copied above 2 for the spawn. The
 * descriptor to use, with *copy set when it is a copy the caller closes; -1 with errno. */
static int hc_proc_spawn_above_stdio(int fd, int *copy)
{
    if (fd > 2) return fd;
    return *copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static int hc_proc_spawn_actions(posix_spawn_file_actions_t *fa, int out_fd, int err_fd)
{
    int rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(fa, out_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(fa, err_fd, 2);
    /* Last: what the app opened without close-on-exec (a C library's socket) stays out. */
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
    return rc;
}

/* No signal blocked (the calling thread's mask is not the program's). Dispositions are the app's,
 * as exec leaves them, like Process.spawn: handlers go back to the default, and what the app
 * ignores (SIGHUP under nohup) stays ignored, so the analysis is not killed where the app is not. */
static int hc_proc_spawn_attrs(posix_spawnattr_t *attr)
{
    sigset_t none;
    sigemptyset(&none);
    int rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc == 0) rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK);
    return rc;
}

static int hc_proc_spawn_with(const hc_proc_spawn_spec *spec, int out_fd, int err_fd, pid_t *pid, const char **step)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    *step = "preparing its descriptors";
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc == 0) {
        rc = hc_proc_spawn_actions(&fa, out_fd, err_fd);
        if (rc == 0) {
            *step = "preparing its signals";
            rc = hc_proc_spawn_attrs(&attr);
        }
        if (rc == 0) {
            *step = NULL;
            rc = posix_spawn(pid, spec->program, &fa, &attr, spec->argv, spec->envp);
        }
        posix_spawnattr_destroy(&attr);
    }
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int hc_proc_spawn(const hc_proc_spawn_spec *spec, pid_t *pid, char *err, size_t errlen)
{
    if (spec->out_fd < 0 || spec->err_fd < 0)
        return hc_proc_spawn_failed(EBADF, spec->program, "its output descriptors", err, errlen);
    int out_copy = -1, err_copy = -1;
    int out_fd = hc_proc_spawn_above_stdio(spec->out_fd, &out_copy);
    int err_fd = out_fd < 0 ? -1 : hc_proc_spawn_above_stdio(spec->err_fd, &err_copy);
    const char *step = "copying its output descriptors above 2";
    int rc = err_fd < 0 ? errno : hc_proc_spawn_with(spec, out_fd, err_fd, pid, &step);
    if (out_copy >= 0) close(out_copy);
    if (err_copy >= 0) close(err_copy);
    return rc ? hc_proc_spawn_failed(rc, spec->program, step, err, errlen) : 0;
}
#endif
