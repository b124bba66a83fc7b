/* dump_watch.c and dump_child_report.c: following a real forked child - its report, how it died (reaped, no zombie), the
 * wake pipe, someone else reaping it, and its tempfile growing (the uploader's view: waits that end
 * when enough is written, "final" only after a clean end, the writer's failure as the reason). */
#include "dump_watch.h"
#include "s3_growing_file.h"
#include "hc_test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[64];

/* Forks a child that writes `steps` chunks of `chunk` bytes to the file, `pause_ms` apart, then
 * reports (ok, stored_bytes = claimed) and exits with `code`. Returns its pid; *report_rd is the
 * report pipe's read end and *read_fd the file opened for reading. */
static pid_t spawn_writer(int steps, int chunk, int pause_ms, long long claimed, int code, int *report_rd, int *read_fd)
{
    snprintf(path, sizeof path, "/tmp/hc-dump-child-XXXXXX");
    int fd = mkstemp(path);
    *read_fd = open(path, O_RDONLY);
    int rep[2];
    HC_CHECK(fd >= 0 && *read_fd >= 0 && pipe(rep) == 0, "file and pipe");
    pid_t pid = fork();
    if (pid == 0) {
        char *buf = malloc((size_t)chunk);
        memset(buf, 'x', (size_t)chunk);
        for (int i = 0; i < steps; i++) {
            if (write(fd, buf, (size_t)chunk) != chunk) _exit(9);
            usleep((useconds_t)pause_ms * 1000);
        }
        hc_dump_report r = {.ok = code == 0, .raw_bytes = 1, .stored_bytes = (uint64_t)claimed};
        snprintf(r.message, sizeof r.message, "%s", code == 0 ? "fine" : "ObjectSpace.dump_all: IOError: closed");
        hc_dump_report_write(rep[1], &r);
        _exit(code);
    }
    close(fd);
    close(rep[1]);
    *report_rd = rep[0];
    return pid;
}

static void test_growth_then_a_clean_end(void)
{
    int rep, rd;
    pid_t pid = spawn_writer(5, 1000, 30, 5000, 0, &rep, &rd);
    hc_dump_child ch;
    hc_dump_child_init(&ch, pid, rep, rd);
    hc_growing_file grow = {hc_dump_child_grow_wait, &ch};
    long long size = 0;
    int final = 0;
    char why[256] = "";

    /* Waiting for 2000 bytes ends once they are there, long before the child is done. */
    int rounds = 0;
    while (size < 2000 && rounds++ < 200) HC_CHECK(grow.wait(grow.ctx, 2000, 25, &size, &final, why, sizeof why) == 0, "%s", why);
    HC_CHECK(size >= 2000 && size < 5000 && !final, "2000 bytes while it writes: %lld, final %d", size, final);

    /* Asking for more than it will ever write: final once it has ended, with the whole size. */
    rounds = 0;
    while (!final && rounds++ < 400) HC_CHECK(grow.wait(grow.ctx, 1LL << 40, 25, &size, &final, why, sizeof why) == 0, "%s", why);
    HC_CHECK(final && size == 5000, "final at 5000, got final %d size %lld", final, size);
    HC_CHECK(ch.state == HC_CHILD_OK && ch.report.ok && strcmp(ch.report.message, "fine") == 0, "state %d", ch.state);
    HC_CHECK(ch.ended_ns > 0, "end time recorded");
    HC_CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD, "reaped by the follower");
    /* Later waits answer at once from what was seen. */
    HC_CHECK(hc_dump_child_wait(&ch, -1, -1, -1, &size) == HC_CHILD_OK && size == 5000, "again");
    hc_dump_child_stop(&ch);
    close(rd);
    unlink(path);
}

static void test_a_failure_is_the_reason(void)
{
    int rep, rd;
    pid_t pid = spawn_writer(2, 100, 1, 200, 1, &rep, &rd);
    hc_dump_child ch;
    hc_dump_child_init(&ch, pid, rep, rd);
    long long size;
    int final = 1;
    char why[512] = "";
    int rc = 0;
    for (int i = 0; i < 400 && rc == 0; i++) rc = hc_dump_child_grow_wait(&ch, 1LL << 40, 25, &size, &final, why, sizeof why);
    HC_CHECK(rc == -1 && !final, "a failed child fails the wait (rc %d final %d)", rc, final);
    HC_CHECK_STR(why, "ObjectSpace.dump_all: IOError: closed (dump child exited with status 1)", "failure text");
    hc_dump_child_stop(&ch);
    close(rd);
    unlink(path);

    /* A clean exit whose report does not match the file: something else changed the file. */
    pid = spawn_writer(1, 100, 1, 999, 0, &rep, &rd);
    hc_dump_child_init(&ch, pid, rep, rd);
    HC_CHECK(hc_dump_child_wait(&ch, -1, 5000, -1, NULL) == HC_CHILD_FAILED, "size mismatch fails");
    HC_CHECK(strstr(ch.message, "holds 100 bytes but the dump child wrote 999") != NULL, "mismatch text: %s", ch.message);
    hc_dump_child_stop(&ch);
    close(rd);
    unlink(path);
}

static void test_killed_woken_and_reaped_elsewhere(void)
{
    int wake[2], rep[2];
    HC_CHECK(pipe(wake) == 0 && pipe(rep) == 0, "pipes");
    fcntl(wake[0], F_SETFL, O_NONBLOCK);

    /* Killed mid-way: reaped (no zombie), says SIGKILL, no report. */
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    hc_dump_child ch;
    hc_dump_child_init(&ch, pid, rep[0], -1);
    kill(pid, SIGKILL);
    HC_CHECK(hc_dump_child_wait(&ch, -1, 5000, wake[0], NULL) == HC_CHILD_FAILED, "killed");
    HC_CHECK(strncmp(ch.message, "the heap dump failed: dump child killed by SIGKILL", 50) == 0, "kill text: %s",
             ch.message);
    HC_CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD, "child still waitable (zombie?)");
    hc_dump_child_stop(&ch);

    /* The wake pipe ends a wait; the child keeps running until stop kills it. */
    HC_CHECK(pipe(rep) == 0, "pipe");
    pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    hc_dump_child_init(&ch, pid, rep[0], -1);
    HC_CHECK(write(wake[1], "x", 1) == 1, "wake");
    HC_CHECK(hc_dump_child_wait(&ch, -1, -1, wake[0], NULL) == HC_CHILD_RUNNING, "woken, still running");
    HC_CHECK(hc_dump_child_wait(&ch, -1, 30, wake[0], NULL) == HC_CHILD_RUNNING, "a timeout, still running");
    hc_dump_child_stop(&ch);
    HC_CHECK(ch.state == HC_CHILD_FAILED && waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD, "stop kills and reaps");
    HC_CHECK(strstr(ch.message, "stopped before it finished") != NULL, "stop text: %s", ch.message);
    hc_dump_child_stop(&ch); /* idempotent */
    close(rep[1]);

    /* Someone else reaped it: explained. */
    HC_CHECK(pipe(rep) == 0, "pipe");
    pid = fork();
    if (pid == 0) _exit(0);
    hc_dump_child_init(&ch, pid, rep[0], -1);
    HC_CHECK(waitpid(pid, NULL, 0) == pid, "reaped elsewhere");
    HC_CHECK(hc_dump_child_wait(&ch, -1, 5000, -1, NULL) == HC_CHILD_FAILED, "ECHILD fails");
    HC_CHECK(strstr(ch.message, "No child processes") && strstr(ch.message, "Process.wait"), "ECHILD text: %s",
             ch.message);
    hc_dump_child_stop(&ch);
    close(rep[1]);
    close(wake[0]);
    close(wake[1]);
}

/* exited: false while it runs, true once it has exited, before and after the waiting side reaps it,
 * and it reaps nothing itself. */
static void test_exited_asks_without_reaping(void)
{
    int go[2];
    HC_CHECK(pipe(go) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(go[1]);
        while (read(go[0], &c, 1) < 0 && errno == EINTR) {}
        _exit(0);
    }
    close(go[0]);
    hc_dump_child ch;
    hc_dump_child_init(&ch, pid, -1, -1);
    HC_CHECK(!hc_dump_child_exited(&ch), "running: not exited");
    close(go[1]); /* it exits now */
    int exited = 0;
    for (int i = 0; i < 500 && !exited; i++) { /* at most 5 s */
        exited = hc_dump_child_exited(&ch);
        if (!exited) usleep(10 * 1000);
    }
    HC_CHECK(exited, "exited within 5 s");
    HC_CHECK(hc_dump_child_exited(&ch), "asked again: still exited (not reaped by the asking)");
    HC_CHECK(waitpid(pid, NULL, WNOHANG) == pid, "still there for the waiting side to reap");
    HC_CHECK(hc_dump_child_exited(&ch), "reaped: exited");
    ch.report_fd = -1;
    hc_dump_child_stop(&ch);
}

int main(void)
{
    test_growth_then_a_clean_end();
    test_exited_asks_without_reaping();
    test_a_failure_is_the_reason();
    test_killed_woken_and_reaped_elsewhere();
    return hc_test_summary("test_dump_watch");
}
