/* Starts a program as a process of its own with posix_spawn. Ruby's Process.spawn forks outright
 * when the process runs as root (it vforks only without privilege): copying the page tables of a
 * 468 MB app took it 24-40 ms, holding the GVL. glibc's posix_spawn is a clone(CLONE_VM |
 * CLONE_VFORK) whatever the user, which copies nothing: under 1 ms. Pure C: no Ruby. */
#ifndef HC_PROC_SPAWN_H
#define HC_PROC_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* glibc 2.34 closes the inherited descriptors in the new process (closefrom); without it (musl,
 * macOS, an older glibc) the binding is left out and the Ruby side uses Process.spawn. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HC_HAVE_PROC_SPAWN 1

typedef struct {
    const char *program; /* its path, run as it is: no PATH search */
    char *const *argv;   /* NULL-terminated; argv[0] the name it goes by */
    char *const *envp;   /* NULL-terminated: its whole environment */
    int out_fd, err_fd;  /* become its stdout and stderr; its stdin is /dev/null */
} hc_proc_spawn_spec;

/* Starts it with every other descriptor closed and no signal blocked (the app's ignored signals
 * stay ignored, as with exec). 0 with *pid set, or the errno of what failed with err saying what
 * was being done ("starting <program>[: <step>]"). exec's own errno (ENOENT: no such program)
 * comes back as the spawn's; so does a file action's in the new process (no /dev/null, or a
 * kernel before 5.9 without /proc for closefrom), which err cannot tell apart. */
int hc_proc_spawn(const hc_proc_spawn_spec *spec, pid_t *pid, char *err, size_t errlen);
#endif

#endif
