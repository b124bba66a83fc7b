/* The dump child's report and how a child ended (see dump_child_report.h). */
#include "dump_child_report.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int hc_dump_report_write(int fd, const hc_dump_report *report)
{
    ssize_t n;
    do {
        n = write(fd, report, sizeof *report);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof *report ? 0 : -1;
}

int hc_dump_report_read(int fd, hc_dump_report *report)
{
    size_t got = 0;
    while (got < sizeof *report) {
        ssize_t n = read(fd, (char *)report + got, sizeof *report - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got != sizeof *report) return 0;
    report->message[sizeof report->message - 1] = '\0';
    return 1;
}

static const char *hc_dump_signal_name(int sig)
{
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    case SIGPIPE: return "SIGPIPE";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGALRM: return "SIGALRM";
    default: return NULL;
    }
}

void hc_dump_status_text(int wstatus, char *buf, size_t len)
{
    if (WIFSIGNALED(wstatus)) {
        int sig = WTERMSIG(wstatus);
        const char *name = hc_dump_signal_name(sig);
        if (name) {
            snprintf(buf, len, "dump child killed by %s%s", name,
                     sig == SIGKILL ? " (out of memory, or killed by someone)" : "");
        } else {
            snprintf(buf, len, "dump child killed by signal %d", sig);
        }
    } else if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0) {
        snprintf(buf, len, "dump child exited with status %d", WEXITSTATUS(wstatus));
    } else if (WIFEXITED(wstatus)) {
        snprintf(buf, len, "dump child exited");
    } else {
        snprintf(buf, len, "dump child ended with wait status 0x%x", (unsigned)wstatus);
    }
}
