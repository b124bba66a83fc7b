/* proc_spawn.c: the started program gets exactly the environment given, /dev/null as stdin, the
 * given stdout and stderr (also when they are descriptors 0 and 1 of the parent), no other
 * descriptor (one left open without close-on-exec in the parent too), no blocked signal (the
 * parent blocks SIGUSR1) and the parent's ignored ones ignored, no other (SIGHUP, as under nohup);
 * its exit status reaches waitpid; a missing program is ENOENT naming it. */
#include "proc_spawn.h"
#include "hc_test.h"

#ifdef HC_HAVE_PROC_SPAWN
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int status;
    char out[4096], err[4096];
} run_result;

static int temp_fd(void)
{
    char path[] = "/tmp/hc-test-spawn-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

static void read_back(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* Runs program with argv and envp, its stdout and stderr out and errfd; its status and output in
 * *r. 0, or the spawn's errno. */
static int run_to(int out, int errfd, const char *program, char *const *argv, char *const *envp, run_result *r,
                  char *err, size_t errlen)
{
    hc_proc_spawn_spec spec = {program, argv, envp, out, errfd};
    pid_t pid = -1;
    int rc = hc_proc_spawn(&spec, &pid, err, errlen);
    if (rc == 0) {
        while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR) {}
        read_back(out, r->out, sizeof r->out);
        read_back(errfd, r->err, sizeof r->err);
    }
    return rc;
}

static int run(const char *program, char *const *argv, char *const *envp, run_result *r, char *err, size_t errlen)
{
    int out = temp_fd(), errfd = temp_fd();
    int rc = run_to(out, errfd, program, argv, envp, r, err, errlen);
    close(out);
    close(errfd);
    return rc;
}

static void test_environment_and_status(void)
{
    char err[256] = "";
    run_result r = {0};
    char *argv[] = {"sh", "-c", "echo \"[$HC_ONLY]\"; echo oops >&2; exit 3", NULL};
    char *envp[] = {"HC_ONLY=given", NULL};
    HC_CHECK(run("/bin/sh", argv, envp, &r, err, sizeof err) == 0, "spawn: %s", err);
    HC_CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3, "exit status 3 (status %d)", r.status);
    HC_CHECK_STR(r.out, "[given]\n", "its environment");
    HC_CHECK_STR(r.err, "oops\n", "its stderr");
    char *env_argv[] = {"env", NULL};
    memset(&r, 0, sizeof r);
    HC_CHECK(run("/usr/bin/env", env_argv, envp, &r, err, sizeof err) == 0, "spawn env: %s", err);
    HC_CHECK_STR(r.out, "HC_ONLY=given\n", "the whole environment, and nothing of the parent's");
}

static void test_descriptors(void)
{
    int leaked = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: a C library's socket, say */
    HC_CHECK(leaked > 2, "opened fd %d", leaked);
    char script[256];
    snprintf(script, sizeof script,
             "readlink /proc/self/fd/0; if [ -e /proc/self/fd/%d ]; then echo open; else echo closed; fi", leaked);
    char *argv[] = {"sh", "-c", script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    char err[256] = "";
    run_result r = {0};
    HC_CHECK(run("/bin/sh", argv, envp, &r, err, sizeof err) == 0, "spawn: %s", err);
    HC_CHECK_STR(r.out, "/dev/null\nclosed\n", "stdin /dev/null, the parent's descriptor closed");
    close(leaked);
    hc_proc_spawn_spec bad = {"/bin/true", argv, envp, -1, 2};
    pid_t pid = -1;
    HC_CHECK(hc_proc_spawn(&bad, &pid, err, sizeof err) == EBADF && strstr(err, "descriptors"), "no stdout: %s", err);
}

/* The parent's stdin and stdout are the descriptors given for the program's stdout and stderr:
 * each must still reach its file, the program's stdin still /dev/null. */
static void test_descriptors_among_stdio(void)
{
    int out = temp_fd(), errfd = temp_fd();
    int saved0 = dup(0), saved1 = dup(1);
    fflush(stdout);
    dup2(out, 0);
    dup2(errfd, 1);
    char *argv[] = {"sh", "-c", "readlink /proc/self/fd/0; echo out; echo err >&2", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    char err[256] = "";
    run_result r = {0};
    int rc = run_to(0, 1, "/bin/sh", argv, envp, &r, err, sizeof err);
    dup2(saved0, 0);
    dup2(saved1, 1);
    close(saved0);
    close(saved1);
    HC_CHECK(rc == 0, "spawn: %s", err);
    HC_CHECK_STR(r.out, "/dev/null\nout\n", "stdout into fd 0's file, stdin /dev/null");
    HC_CHECK_STR(r.err, "err\n", "stderr into fd 1's file");
    close(out);
    close(errfd);
}

static void test_signals(void)
{
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_hup;
    sigaction(SIGHUP, &ign, &old_hup);
    char *argv[] = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL};
    char *envp[] = {NULL};
    char err[256] = "";
    run_result r = {0};
    HC_CHECK(run("/bin/grep", argv, envp, &r, err, sizeof err) == 0, "spawn: %s", err);
    unsigned long long blocked = ~0ull, ignored = ~0ull;
    HC_CHECK(sscanf(r.out, "SigBlk:\t%llx\nSigIgn:\t%llx", &blocked, &ignored) == 2, "read: %s", r.out);
    HC_CHECK(blocked == 0, "no signal blocked: %s", r.out);
    /* Of the standard signals (1-31), the parent's ignored ones (SIGHUP, and SIGINT and SIGQUIT
     * when it runs in a shell's background) and no other. glibc's own two (32, 33: cancellation
     * and setxid) are ignored in any posix_spawn child; its glibc sets them up. */
    unsigned long long parent_ignored = 0;
    for (int sig = 1; sig < 32; sig++) {
        struct sigaction now;
        if (sigaction(sig, NULL, &now) == 0 && now.sa_handler == SIG_IGN) parent_ignored |= 1ull << (sig - 1);
    }
    HC_CHECK(parent_ignored & (1ull << (SIGHUP - 1)), "SIGHUP ignored here");
    HC_CHECK((ignored & 0x7fffffffull) == parent_ignored, "the parent's ignored signals (%llx): %s", parent_ignored,
             r.out);
    sigaction(SIGHUP, &old_hup, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void test_missing_program(void)
{
    char *argv[] = {"nothing", NULL};
    char *envp[] = {NULL};
    char err[256] = "";
    run_result r = {0};
    HC_CHECK(run("/nonexistent/hc-program", argv, envp, &r, err, sizeof err) == ENOENT, "ENOENT: %s", err);
    HC_CHECK_STR(err, "starting /nonexistent/hc-program", "what was being done");
}

int main(void)
{
    test_environment_and_status();
    test_descriptors();
    test_descriptors_among_stdio();
    test_signals();
    test_missing_program();
    return hc_test_summary("proc_spawn");
}
#else
int main(void)
{
    printf("proc_spawn: not built here (needs glibc 2.34's posix_spawn_file_actions_addclosefrom_np)\n");
    return 0;
}
#endif
