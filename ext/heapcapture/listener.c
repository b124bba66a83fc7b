/* The libpq LISTEN loop: see listener.h. */
#include "listener.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>


static void hc_log(hc_listener *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void hc_log(hc_listener *l, int level, const char *fmt, ...)
{
    if (!l->log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    l->log(l->log_ctx, level, msg);
}


/* Milliseconds left until deadline (-1 = no deadline), never negative. */
static int hc_remaining(int64_t deadline)
{
    if (deadline < 0) return -1;
    int64_t left = deadline - hc_now_ms();
    if (left <= 0) return 0;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static int64_t hc_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : hc_now_ms() + timeout_ms;
}

/* Folds newlines, tabs and runs of spaces into single spaces and trims the end, in place. */
static void hc_one_line(char *s)
{
    char *out = s;
    for (const char *p = s; *p; p++) {
        char ch = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
        if (ch == ' ' && (out == s || out[-1] == ' ')) continue;
        *out++ = ch;
    }
    while (out > s && out[-1] == ' ') out--;
    *out = '\0';
}

/* libpq's messages end with a newline; ours are one line. */
static const char *hc_pq_message(PGconn *conn, char *buf, size_t len)
{
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    hc_errorf(buf, len, "%s", msg && *msg ? msg : "no detail from libpq");
    hc_one_line(buf);
    return buf;
}

static void hc_drain_wake_pipe(hc_listener *l)
{
    char sink[64];
    while (read(l->wake_fds[0], sink, sizeof sink) > 0) {
    }
}

static uint32_t hc_next_random(hc_listener *l)
{
    uint32_t x = l->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return l->rng = x ? x : 0x9e3779b9u;
}

/* Waits for the socket (events), the wake pipe, or the deadline. Socket -1: the pipe only.
 * A plain wake ends the poll only when wake_returns; otherwise it is kept for the next wait and
 * only an interrupt ends it. */
static int hc_poll(hc_listener *l, int sock, short events, int64_t deadline, int wake_returns, char *err,
                   size_t errlen, const char *doing)
{
    for (;;) {
        if (__atomic_load_n(&l->interrupted, __ATOMIC_ACQUIRE)) return HC_LISTENER_WOKEN;
        struct pollfd fds[2] = {
            { .fd = l->wake_fds[0], .events = POLLIN },
            { .fd = sock, .events = events },
        };
        int rc = poll(fds, sock >= 0 ? 2 : 1, hc_remaining(deadline));
        if (rc < 0) {
            if (errno == EINTR) continue;
            hc_errorf(err, errlen, "%s: poll() failed: %s", doing, strerror(errno));
            return HC_LISTENER_ERROR;
        }
        if (fds[0].revents) {
            hc_drain_wake_pipe(l);
            if (wake_returns || __atomic_load_n(&l->interrupted, __ATOMIC_ACQUIRE)) return HC_LISTENER_WOKEN;
            l->pending_wake = 1;
            if (rc == 1) continue;
        }
        if (rc == 0) return HC_LISTENER_TIMEOUT;
        return HC_LISTENER_OK;
    }
}

int hc_listener_listen_sql(PGconn *conn, const char *channel, char *out, size_t outlen, char *err,
                           size_t errlen)
{
    char *quoted = PQescapeIdentifier(conn, channel, strlen(channel));
    if (!quoted) {
        char msg[256];
        hc_errorf(err, errlen, "quoting the channel name %s for LISTEN failed: %s", channel,
                  hc_pq_message(conn, msg, sizeof msg));
        return HC_LISTENER_ERROR;
    }
    int n = snprintf(out, outlen, "LISTEN %s", quoted);
    PQfreemem(quoted);
    if (n < 0 || (size_t)n >= outlen) {
        hc_errorf(err, errlen, "building LISTEN for channel %s: the statement does not fit in %zu bytes",
                  channel, outlen);
        return HC_LISTENER_ERROR;
    }
    return HC_LISTENER_OK;
}

/* Both ends non-blocking (a full pipe must not block a waker) and close-on-exec. pipe2 is not
 * everywhere (macOS). */
static int hc_make_wake_pipe(int fds[2])
{
    if (pipe(fds) != 0) {
        fds[0] = fds[1] = -1;
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            int saved = errno;
            close(fds[0]);
            close(fds[1]);
            fds[0] = fds[1] = -1;
            errno = saved;
            return -1;
        }
    }
    return 0;
}

int hc_listener_init(hc_listener *l, const char *conninfo, const char *application_name,
                     const char *channel, int reconnect, hc_listener_log_fn log, void *log_ctx,
                     char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->wake_fds[0] = l->wake_fds[1] = -1;
    if (!conninfo || !*conninfo) {
        hc_errorf(err, errlen, "starting the listener: no database URL was given");
        return HC_LISTENER_ERROR;
    }
    size_t clen = channel ? strlen(channel) : 0;
    if (clen > HC_LISTENER_CHANNEL_MAX) {
        hc_errorf(err, errlen, "starting the listener: channel name is %zu bytes, PostgreSQL allows at most %d",
                  clen, HC_LISTENER_CHANNEL_MAX);
        return HC_LISTENER_ERROR;
    }
    if (hc_make_wake_pipe(l->wake_fds) != 0) {
        hc_errorf(err, errlen, "starting the listener: creating its wake pipe failed: %s", strerror(errno));
        return HC_LISTENER_ERROR;
    }
    l->conninfo = strdup(conninfo);
    l->application_name = strdup(application_name && *application_name ? application_name : "heapcapture");
    if (!l->conninfo || !l->application_name) {
        hc_errorf(err, errlen, "starting the listener: out of memory");
        hc_listener_close(l);
        return HC_LISTENER_ERROR;
    }
    if (clen) memcpy(l->channel, channel, clen + 1);
    l->reconnect = reconnect;
    l->log = log;
    l->log_ctx = log_ctx;
    l->owner_pid = getpid();
    l->rng = (uint32_t)hc_now_ms() ^ ((uint32_t)getpid() << 16) ^ (uint32_t)(uintptr_t)l;
    if (!l->rng) l->rng = 1;
    return HC_LISTENER_OK;
}

static void hc_drop_conn(hc_listener *l)
{
    __atomic_store_n(&l->listening, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&l->backend_pid, 0, __ATOMIC_RELEASE);
    if (l->conn) {
        PQfinish(l->conn);
        l->conn = NULL;
    }
}

static void hc_close_pipe(hc_listener *l)
{
    for (int i = 0; i < 2; i++) {
        if (l->wake_fds[i] >= 0) close(l->wake_fds[i]);
        l->wake_fds[i] = -1;
    }
}

void hc_listener_close(hc_listener *l)
{
    hc_drop_conn(l);
    hc_close_pipe(l);
    free(l->conninfo);
    free(l->application_name);
    l->conninfo = l->application_name = NULL;
}

void hc_listener_abandon(hc_listener *l)
{
    if (l->conn) {
        int sock = PQsocket(l->conn);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (sock >= 0 && devnull >= 0) {
            /* PQfinish now says goodbye to /dev/null, not to the parent's server session. */
            dup2(devnull, sock);
            PQfinish(l->conn);
        } else if (sock >= 0) {
            close(sock); /* no /dev/null: leak the PGconn rather than write on the shared socket */
        }
        if (devnull >= 0) close(devnull);
        l->conn = NULL;
    }
    __atomic_store_n(&l->listening, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&l->backend_pid, 0, __ATOMIC_RELEASE);
    hc_close_pipe(l);
    free(l->conninfo);
    free(l->application_name);
    l->conninfo = l->application_name = NULL;
}

void hc_listener_wake(hc_listener *l)
{
    int fd = __atomic_load_n(&l->wake_fds[1], __ATOMIC_ACQUIRE);
    if (fd < 0) return;
    ssize_t rc;
    do {
        rc = write(fd, "w", 1); /* a full pipe already wakes the reader */
    } while (rc < 0 && errno == EINTR);
}

void hc_listener_interrupt(hc_listener *l)
{
    __atomic_store_n(&l->interrupted, 1, __ATOMIC_RELEASE);
    hc_listener_wake(l);
}

void hc_listener_clear_interrupt(hc_listener *l)
{
    __atomic_store_n(&l->interrupted, 0, __ATOMIC_RELEASE);
}

int hc_listener_connected(const hc_listener *l)
{
    return __atomic_load_n(&l->listening, __ATOMIC_ACQUIRE);
}

int hc_listener_backend_pid(const hc_listener *l)
{
    return __atomic_load_n(&l->backend_pid, __ATOMIC_ACQUIRE);
}

unsigned hc_listener_backoff_ms(unsigned attempt, uint32_t random)
{
    unsigned d = HC_LISTENER_BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempt && d < HC_LISTENER_BACKOFF_CAP_MS; i++) d *= 2;
    if (d > HC_LISTENER_BACKOFF_CAP_MS) d = HC_LISTENER_BACKOFF_CAP_MS;
    unsigned half = d / 2;
    return half + random % (d - half + 1);
}

/* Sends a query (already started with PQsend*) to the end and reads every result; fails on the
 * first error result. The connection is non-blocking. */
static int hc_finish_query(hc_listener *l, int64_t deadline, const char *doing, char *err, size_t errlen)
{
    char msg[512];
    int failed = 0;
    for (;;) {
        int flushed = PQflush(l->conn);
        if (flushed < 0) {
            hc_errorf(err, errlen, "%s: sending to the server failed: %s", doing,
                      hc_pq_message(l->conn, msg, sizeof msg));
            return HC_LISTENER_ERROR;
        }
        if (flushed == 0 && !PQisBusy(l->conn)) {
            PGresult *res = PQgetResult(l->conn);
            if (!res) break;
            ExecStatusType st = PQresultStatus(res);
            if (!failed && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                failed = 1;
                hc_errorf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
                hc_one_line(msg);
                hc_errorf(err, errlen, "%s: the server answered with an error: %s", doing, msg);
            }
            PQclear(res);
            continue;
        }
        short events = POLLIN | (flushed == 1 ? POLLOUT : 0);
        int rc = hc_poll(l, PQsocket(l->conn), events, deadline, 0, err, errlen, doing);
        if (rc == HC_LISTENER_WOKEN) {
            hc_errorf(err, errlen, "%s: interrupted", doing);
            return HC_LISTENER_WOKEN;
        }
        if (rc == HC_LISTENER_TIMEOUT) {
            hc_errorf(err, errlen, "%s: no answer from the server in time", doing);
            return HC_LISTENER_ERROR;
        }
        if (rc != HC_LISTENER_OK) return rc;
        if (!PQconsumeInput(l->conn)) {
            hc_errorf(err, errlen, "%s: reading from the server failed: %s", doing,
                      hc_pq_message(l->conn, msg, sizeof msg));
            return HC_LISTENER_ERROR;
        }
    }
    return failed ? HC_LISTENER_ERROR : HC_LISTENER_OK;
}

/* libpq prints server notices (and a FATAL that arrives between queries) on stderr by default;
 * they belong in the application's log. */
static void hc_notice(void *arg, const char *message)
{
    hc_listener *l = arg;
    char line[512];
    hc_errorf(line, sizeof line, "%s", message);
    hc_one_line(line);
    hc_log(l, HC_LOG_WARN, "PostgreSQL says: %s", line);
}

/* The password as written in conninfo (a URL's user:PASSWORD@ or ?password=, or key=value's
 * password=...), or 0 when there is none. libpq quotes such tokens back in its parse errors
 * ("invalid percent-encoded token: \"...\"", a whole malformed URL), so they are cut out of every
 * message the connect makes. */
static size_t hc_password_span(const char *conninfo, const char **start)
{
    const char *scheme = strstr(conninfo, "://");
    if (scheme && (strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0)) {
        const char *auth = scheme + 3;
        size_t authlen = strcspn(auth, "/?");
        const char *at = memchr(auth, '@', authlen);
        if (at) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon && at > colon + 1) {
                *start = colon + 1;
                return (size_t)(at - colon - 1);
            }
        }
        for (const char *q = strchr(auth, '?'); q; q = strchr(q + 1, '&')) {
            if (strncmp(q + 1, "password=", 9) == 0) {
                *start = q + 10;
                return strcspn(*start, "&#");
            }
        }
        return 0;
    }
    for (const char *p = conninfo; (p = strstr(p, "password")) != NULL; p += 8) {
        if (p != conninfo && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n') continue;
        const char *v = p + 8;
        while (*v == ' ' || *v == '\t') v++;
        if (*v != '=') continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        if (*v == '\'') {
            const char *e = v + 1;
            while (*e && *e != '\'') e += (e[0] == '\\' && e[1]) ? 2 : 1;
            *start = v + 1;
            return (size_t)(e - v - 1);
        }
        *start = v;
        return strcspn(v, " \t\n");
    }
    return 0;
}

void hc_listener_redact(const char *conninfo, char *msg, size_t msglen)
{
    const char *pw = NULL;
    size_t pwlen = conninfo ? hc_password_span(conninfo, &pw) : 0;
    if (!pwlen || !msglen) return;
    char *out = malloc(msglen);
    if (!out) {
        hc_errorf(msg, msglen, "connecting to PostgreSQL failed (details withheld: they may quote the password)");
        return;
    }
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < msglen;) {
        size_t rest = strlen(p);
        /* A message cut short can end in the first part of the password: masked too. */
        if (strncmp(p, pw, rest < pwlen ? rest : pwlen) == 0) {
            for (const char *m = "***"; *m && o + 1 < msglen; m++) out[o++] = *m;
            p += rest < pwlen ? rest : pwlen;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    memcpy(msg, out, o + 1);
    free(out);
}

static int hc_connect_once(hc_listener *l, int timeout_ms, char *err, size_t errlen);

int hc_listener_connect(hc_listener *l, int timeout_ms, char *err, size_t errlen)
{
    int rc = hc_connect_once(l, timeout_ms, err, errlen);
    if (rc != HC_LISTENER_OK) hc_listener_redact(l->conninfo, err, errlen);
    if (rc != HC_LISTENER_WOKEN) __atomic_add_fetch(&l->attempts, 1, __ATOMIC_RELEASE);
    return rc;
}

unsigned hc_listener_attempts(const hc_listener *l)
{
    return __atomic_load_n(&l->attempts, __ATOMIC_ACQUIRE);
}

static int hc_connect_once(hc_listener *l, int timeout_ms, char *err, size_t errlen)
{
    char msg[512];
    int64_t deadline = hc_deadline(timeout_ms);
    hc_drop_conn(l);
    if (!l->conninfo) {
        hc_errorf(err, errlen, "connecting to PostgreSQL: the listener is closed");
        return HC_LISTENER_ERROR;
    }
    /* The URL first: the settings after it override what it says. */
    const char *keys[] = { "dbname", "application_name", "client_encoding", "keepalives", "keepalives_idle",
                           "keepalives_interval", "keepalives_count", NULL };
    const char *values[] = { l->conninfo, l->application_name, "UTF8", "1", "30", "10", "3", NULL };
    l->conn = PQconnectStartParams(keys, values, 1);
    if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD) {
        hc_errorf(err, errlen, "connecting to PostgreSQL failed: %s", hc_pq_message(l->conn, msg, sizeof msg));
        hc_drop_conn(l);
        return HC_LISTENER_ERROR;
    }
    PQsetNoticeProcessor(l->conn, hc_notice, l);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            hc_errorf(err, errlen, "connecting to PostgreSQL failed: %s", hc_pq_message(l->conn, msg, sizeof msg));
            hc_drop_conn(l);
            return HC_LISTENER_ERROR;
        }
        short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        int rc = hc_poll(l, PQsocket(l->conn), events, deadline, 0, err, errlen, "connecting to PostgreSQL");
        if (rc == HC_LISTENER_TIMEOUT)
            hc_errorf(err, errlen, "connecting to PostgreSQL: no answer within %d ms", timeout_ms);
        if (rc == HC_LISTENER_WOKEN) hc_errorf(err, errlen, "connecting to PostgreSQL: interrupted");
        if (rc != HC_LISTENER_OK) {
            hc_drop_conn(l);
            return rc == HC_LISTENER_TIMEOUT ? HC_LISTENER_ERROR : rc;
        }
        st = PQconnectPoll(l->conn);
    }
    if (PQsetnonblocking(l->conn, 1) != 0) {
        hc_errorf(err, errlen, "connecting to PostgreSQL: making the connection non-blocking failed: %s",
                  hc_pq_message(l->conn, msg, sizeof msg));
        hc_drop_conn(l);
        return HC_LISTENER_ERROR;
    }
    if (l->channel[0]) {
        char sql[2 * HC_LISTENER_CHANNEL_MAX + 16];
        char doing[HC_LISTENER_CHANNEL_MAX + 32];
        hc_errorf(doing, sizeof doing, "LISTEN on channel %s", l->channel);
        if (hc_listener_listen_sql(l->conn, l->channel, sql, sizeof sql, err, errlen) != HC_LISTENER_OK) {
            hc_drop_conn(l);
            return HC_LISTENER_ERROR;
        }
        if (!PQsendQuery(l->conn, sql)) {
            hc_errorf(err, errlen, "%s: sending failed: %s", doing, hc_pq_message(l->conn, msg, sizeof msg));
            hc_drop_conn(l);
            return HC_LISTENER_ERROR;
        }
        int rc = hc_finish_query(l, deadline, doing, err, errlen);
        if (rc != HC_LISTENER_OK) {
            hc_drop_conn(l);
            return rc;
        }
    }
    __atomic_store_n(&l->backend_pid, PQbackendPID(l->conn), __ATOMIC_RELEASE);
    __atomic_store_n(&l->listening, 1, __ATOMIC_RELEASE);
    return HC_LISTENER_OK;
}

static int hc_deliver(hc_listener *l, hc_listener_notify_fn on_notify, void *ctx)
{
    int n = 0;
    PGnotify *note;
    while ((note = PQnotifies(l->conn)) != NULL) {
        if (on_notify) on_notify(ctx, note->relname, note->be_pid, note->extra ? note->extra : "");
        PQfreemem(note);
        n++;
    }
    return n;
}

/* The connection is gone: log it, forget it, schedule the next attempt. */
static void hc_lost(hc_listener *l, const char *why)
{
    hc_drop_conn(l);
    l->attempt = 0;
    l->next_attempt_ms = hc_now_ms() + hc_listener_backoff_ms(1, hc_next_random(l)) / 2;
    hc_log(l, HC_LOG_WARN, "connection to PostgreSQL lost (%s); reconnecting", why);
}

/* Not connected and reconnecting: wait out the backoff, then try once. */
static int hc_reconnect_step(hc_listener *l, int64_t deadline)
{
    int64_t now = hc_now_ms();
    if (now < l->next_attempt_ms) {
        int64_t until = l->next_attempt_ms;
        if (deadline >= 0 && deadline < until) until = deadline;
        char err[64];
        int rc = hc_poll(l, -1, 0, until, 1, err, sizeof err, "waiting to reconnect");
        if (rc == HC_LISTENER_WOKEN) return rc;
        if (hc_now_ms() < l->next_attempt_ms) return HC_LISTENER_TIMEOUT;
    }
    char err[512];
    int rc = hc_listener_connect(l, HC_LISTENER_CONNECT_TIMEOUT_MS, err, sizeof err);
    if (rc == HC_LISTENER_WOKEN) return rc;
    if (rc == HC_LISTENER_OK) {
        hc_log(l, HC_LOG_INFO, "%s to PostgreSQL%s%s (backend pid %d)",
               l->connects++ ? "reconnected" : "connected", l->channel[0] ? ", listening on " : "",
               l->channel, hc_listener_backend_pid(l));
        l->attempt = 0;
        return HC_LISTENER_OK;
    }
    l->attempt++;
    unsigned delay = hc_listener_backoff_ms(l->attempt, hc_next_random(l));
    l->next_attempt_ms = hc_now_ms() + delay;
    hc_log(l, HC_LOG_WARN, "%s; next attempt in %u ms (attempt %u failed)", err, delay, l->attempt);
    return HC_LISTENER_TIMEOUT;
}

int hc_listener_wait(hc_listener *l, int timeout_ms, hc_listener_notify_fn on_notify, void *ctx, char *err,
                     size_t errlen)
{
    int64_t deadline = hc_deadline(timeout_ms);
    char msg[512];
    for (;;) {
        /* A wake that came during a query or connection attempt. */
        if (l->pending_wake) {
            l->pending_wake = 0;
            return HC_LISTENER_WOKEN;
        }
        if (!l->conn || PQstatus(l->conn) != CONNECTION_OK) {
            if (!l->reconnect) {
                hc_errorf(err, errlen, "waiting for notifications: not connected to PostgreSQL");
                return HC_LISTENER_ERROR;
            }
            if (l->conn) hc_lost(l, "the connection went bad");
            /* Return after each attempt so the caller sees its log line (and, once connected,
             * can send what waited for the connection). */
            int rc = hc_reconnect_step(l, deadline);
            if (l->pending_wake) {
                l->pending_wake = 0;
                return HC_LISTENER_WOKEN;
            }
            return rc;
        }
        /* Notifications that arrived during an earlier query come first. */
        if (hc_deliver(l, on_notify, ctx) > 0) return HC_LISTENER_OK;
        int rc = hc_poll(l, PQsocket(l->conn), POLLIN, deadline, 1, err, errlen, "waiting for notifications");
        if (rc == HC_LISTENER_WOKEN || rc == HC_LISTENER_TIMEOUT) return rc;
        if (rc == HC_LISTENER_ERROR) return rc;
        if (!PQconsumeInput(l->conn) || PQstatus(l->conn) != CONNECTION_OK) {
            hc_pq_message(l->conn, msg, sizeof msg);
            if (!l->reconnect) {
                hc_errorf(err, errlen, "waiting for notifications: the connection to PostgreSQL was lost: %s", msg);
                hc_drop_conn(l);
                return HC_LISTENER_ERROR;
            }
            /* Deliver what arrived before the end, then reconnect. */
            int n = hc_deliver(l, on_notify, ctx);
            hc_lost(l, msg);
            if (n > 0) return HC_LISTENER_OK;
            continue;
        }
        /* A server error while idle (e.g. pg_terminate_backend's FATAL) arrives as a result. */
        PGresult *res;
        while (!PQisBusy(l->conn) && (res = PQgetResult(l->conn)) != NULL) PQclear(res);
        if (hc_deliver(l, on_notify, ctx) > 0) return HC_LISTENER_OK;
        if (hc_remaining(deadline) == 0) return HC_LISTENER_TIMEOUT;
    }
}

int hc_listener_notify(hc_listener *l, const char *channel, const char *payload, int timeout_ms, char *err,
                       size_t errlen)
{
    char msg[512];
    char doing[HC_LISTENER_CHANNEL_MAX + 64];
    hc_errorf(doing, sizeof doing, "sending a notification on channel %s", channel);
    if (!l->conn || PQstatus(l->conn) != CONNECTION_OK) {
        hc_errorf(err, errlen, "%s: not connected to PostgreSQL", doing);
        return HC_LISTENER_ERROR;
    }
    const char *params[2] = { channel, payload };
    if (!PQsendQueryParams(l->conn, "SELECT pg_notify($1, $2)", 2, NULL, params, NULL, NULL, 0)) {
        hc_errorf(err, errlen, "%s: failed: %s", doing, hc_pq_message(l->conn, msg, sizeof msg));
        return HC_LISTENER_ERROR;
    }
    return hc_finish_query(l, hc_deadline(timeout_ms), doing, err, errlen);
}
