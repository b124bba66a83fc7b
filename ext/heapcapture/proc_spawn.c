/* posix_spawn with the file actions and attributes of a clean child (proc_spawn.h). */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "proc_spawn.h"

#ifdef HC_HAVE_PROC_SPAWN
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>

/* err: what was being done, without the errno's words (the caller has rc, and says it its way). */
static int hc_proc_spawn_failed(int rc, const char *program, const char *step, char *err, size_t errlen)
{
    snprintf(err, errlen, "starting %s%s%s", program, step ? ": " : "", step ? step : "");
    return rc;
}

static int hc_proc_spawn_actions(posix_spawn_file_actions_t *fa, const hc_proc_spawn_spec *spec)
{
    int rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(fa, spec->out_fd, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(fa, spec->err_fd, 2);
    /* Last: what the app opened without close-on-exec (a C library's socket) stays out. */
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
    return rc;
}

static int hc_proc_spawn_attrs(posix_spawnattr_t *attr)
{
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    /* The app's ignored signals (Ruby ignores SIGPIPE) and blocked ones are not the child's. */
    int rc = posix_spawnattr_setsigdefault(attr, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc == 0) rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    return rc;
}

int hc_proc_spawn(const hc_proc_spawn_spec *spec, pid_t *pid, char *err, size_t errlen)
{
    if (spec->out_fd < 0 || spec->err_fd < 0)
        return hc_proc_spawn_failed(EBADF, spec->program, "its output descriptors", err, errlen);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) return hc_proc_spawn_failed(rc, spec->program, "preparing its descriptors", err, errlen);
    rc = posix_spawnattr_init(&attr);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        return hc_proc_spawn_failed(rc, spec->program, "preparing its attributes", err, errlen);
    }
    const char *step = "preparing its descriptors";
    rc = hc_proc_spawn_actions(&fa, spec);
    if (rc == 0) {
        step = "preparing its signals";
        rc = hc_proc_spawn_attrs(&attr);
    }
    if (rc == 0) {
        step = NULL;
        rc = posix_spawn(pid, spec->program, &fa, &attr, spec->argv, spec->envp);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? hc_proc_spawn_failed(rc, spec->program, step, err, errlen) : 0;
}
#endif
