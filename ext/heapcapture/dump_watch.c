/* In the parent: following the dump child (see dump_watch.h). */
#define _GNU_SOURCE
#include "dump_watch.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define HC_CHILD_POLL_MS 10 /* without a pidfd: how often waitpid is asked */

static int hc_pidfd_open(pid_t pid)
{
#if defined(__linux__) && defined(SYS_pidfd_open)
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

void hc_dump_child_init(hc_dump_child *ch, pid_t pid, int report_fd, int file_fd)
{
    memset(ch, 0, sizeof *ch);
    ch->pid = pid;
    ch->pidfd = hc_pidfd_open(pid);
    ch->report_fd = report_fd;
    ch->file_fd = file_fd;
    ch->state = HC_CHILD_RUNNING;
    /* Read once the child has ended: whatever it wrote is there, and an empty pipe must not block
     * (a process forked meanwhile by another thread may hold the write end). */
    if (report_fd >= 0) fcntl(report_fd, F_SETFL, fcntl(report_fd, F_GETFL) | O_NONBLOCK);
}

static long long hc_file_size(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 ? (long long)st.st_size : 0;
}

int hc_dump_child_exited(const hc_dump_child *ch)
{
    siginfo_t info; /* ch->state is the waiting thread's to write: not read here */
    memset(&info, 0, sizeof info);
    /* WNOWAIT: the waiting thread still reaps it; ECHILD: it has been reaped already */
    if (waitid(P_PID, (id_t)ch->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return info.si_pid == ch->pid;
}

/* The child has been reaped: judge it by its report and exit status. */
static void hc_child_ended(hc_dump_child *ch)
{
    char status[160];
    ch->ended_ns = hc_now_ns();
    if (ch->pidfd >= 0) close(ch->pidfd);
    ch->pidfd = -1;
    int have_report = ch->report_fd >= 0 && hc_dump_report_read(ch->report_fd, &ch->report) == 1;
    hc_dump_status_text(ch->wstatus, status, sizeof status);
    int clean_exit = WIFEXITED(ch->wstatus) && WEXITSTATUS(ch->wstatus) == 0;
    long long size = hc_file_size(ch->file_fd);
    if (have_report && ch->report.ok && clean_exit) {
        if (ch->file_fd >= 0 && (uint64_t)size != ch->report.stored_bytes) {
            hc_errorf(ch->message, sizeof ch->message, "the dump tempfile holds %lld bytes but the dump child "
                      "wrote %llu: something else changed it", size, (unsigned long long)ch->report.stored_bytes);
            ch->state = HC_CHILD_FAILED;
            return;
        }
        ch->state = HC_CHILD_OK;
    } else if (have_report && !ch->report.ok) {
        hc_errorf(ch->message, sizeof ch->message, "%s (%s)", ch->report.message, status);
        ch->state = HC_CHILD_FAILED;
    } else {
        hc_errorf(ch->message, sizeof ch->message, "the heap dump failed: %s before it finished", status);
        ch->state = HC_CHILD_FAILED;
    }
}

/* Reaps the child if it has ended. */
static void hc_child_try_reap(hc_dump_child *ch)
{
    pid_t got;
    do {
        got = waitpid(ch->pid, &ch->wstatus, WNOHANG);
    } while (got < 0 && errno == EINTR);
    if (got == ch->pid) {
        hc_child_ended(ch);
    } else if (got < 0) {
        hc_errorf(ch->message, sizeof ch->message, "waiting for the dump child (pid %ld): %s%s", (long)ch->pid,
                  strerror(errno), errno == ECHILD ? " (another part of the application reaped it, e.g. "
                                                     "Process.wait(-1) or Process.detach)" : "");
        ch->state = HC_CHILD_FAILED;
        ch->ended_ns = hc_now_ns();
    }
}

int hc_dump_child_wait(hc_dump_child *ch, long long need, int timeout_ms, int wake_fd, long long *size)
{
    uint64_t deadline = timeout_ms < 0 ? 0 : hc_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        if (ch->state == HC_CHILD_RUNNING) hc_child_try_reap(ch);
        long long now_size = hc_file_size(ch->file_fd);
        if (size) *size = now_size;
        if (ch->state != HC_CHILD_RUNNING || (need >= 0 && now_size >= need)) break;

        /* Sleep until the child ends, a wake-up, or the next look at the file's size. */
        int step = ch->pidfd >= 0 ? (need >= 0 ? HC_CHILD_POLL_MS * 2 : 1000) : HC_CHILD_POLL_MS;
        if (timeout_ms >= 0) {
            uint64_t now = hc_now_ns();
            if (now >= deadline) break;
            uint64_t left_ms = (deadline - now + 999999ull) / 1000000ull;
            if ((uint64_t)step > left_ms) step = (int)left_ms;
        }
        struct pollfd fds[2];
        int n = 0, wake_at = -1;
        if (ch->pidfd >= 0) fds[n++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
        if (wake_fd >= 0) {
            wake_at = n;
            fds[n++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
        }
        if (poll(fds, (nfds_t)n, step) > 0 && wake_at >= 0 && (fds[wake_at].revents & (POLLIN | POLLHUP))) {
            char drain[64];
            while (read(wake_fd, drain, sizeof drain) > 0) {
            }
            break;
        }
    }
    return ch->state;
}

int hc_dump_child_grow_wait(void *ctx, long long need, int timeout_ms, long long *size, int *final, char *why,
                            size_t whylen)
{
    hc_dump_child *ch = ctx;
    int state = hc_dump_child_wait(ch, need, timeout_ms, -1, size);
    *final = state == HC_CHILD_OK;
    if (state == HC_CHILD_FAILED) {
        snprintf(why, whylen, "%s", ch->message);
        return -1;
    }
    return 0;
}

void hc_dump_child_stop(hc_dump_child *ch)
{
    if (ch->state == HC_CHILD_RUNNING && ch->pid > 0) {
        /* SIGKILL ends it at once, so this wait is short. */
        kill(ch->pid, SIGKILL);
        while (waitpid(ch->pid, &ch->wstatus, 0) < 0 && errno == EINTR) {
        }
        ch->state = HC_CHILD_FAILED;
        ch->ended_ns = hc_now_ns();
        hc_errorf(ch->message, sizeof ch->message, "the heap dump was stopped before it finished");
    }
    if (ch->pidfd >= 0) close(ch->pidfd);
    ch->pidfd = -1;
    if (ch->report_fd >= 0) close(ch->report_fd);
    ch->report_fd = -1;
}
