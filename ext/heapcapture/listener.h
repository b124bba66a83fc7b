/* A PostgreSQL LISTEN loop on libpq. Pure C: no Ruby.
 *
 * One hc_listener owns one connection (TCP keepalives on, its own application_name), LISTENs on
 * at most one channel, and waits with poll() on the connection's socket and a wake pipe, so
 * another thread can interrupt any wait (hc_listener_wake is async-signal- and thread-safe).
 * When the connection is lost, hc_listener_wait reconnects with jittered exponential backoff
 * (capped at HC_LISTENER_BACKOFF_CAP_MS) and LISTENs again, logging each step.
 *
 * Threading: every function except hc_listener_wake and hc_listener_connected must be called by
 * one thread at a time. Every blocking call gives up when the wake pipe is written. */
#ifndef HC_LISTENER_H
#define HC_LISTENER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HC_LISTENER_CHANNEL_MAX 63            /* PostgreSQL's identifier limit (NAMEDATALEN - 1) */
#define HC_LISTENER_BACKOFF_BASE_MS 250u
#define HC_LISTENER_BACKOFF_CAP_MS 30000u
#define HC_LISTENER_CONNECT_TIMEOUT_MS 10000
#define HC_LISTENER_QUERY_TIMEOUT_MS 10000

/* Results of the functions below. */
enum {
    HC_LISTENER_OK = 0,
    HC_LISTENER_ERROR = -1,   /* err says what was being done and why it failed */
    HC_LISTENER_WOKEN = 1,    /* the wake pipe was written: the caller has something to do */
    HC_LISTENER_TIMEOUT = 2
};

/* Log levels given to the log callback. */
enum { HC_LOG_DEBUG = 0, HC_LOG_INFO = 1, HC_LOG_WARN = 2, HC_LOG_ERROR = 3 };

typedef void (*hc_listener_log_fn)(void *ctx, int level, const char *msg);
/* Called once per notification received: the strings are valid only during the call. */
typedef void (*hc_listener_notify_fn)(void *ctx, const char *channel, int be_pid, const char *payload);

typedef struct hc_listener {
    char *conninfo;                          /* a URL or key=value string, owned */
    char *application_name;                  /* owned */
    char channel[HC_LISTENER_CHANNEL_MAX + 1]; /* "" listens on nothing */
    struct pg_conn *conn;                    /* NULL when not connected */
    int listening;                           /* connected and LISTEN done (read from any thread) */
    int backend_pid;                         /* the server process, 0 when not connected (any thread) */
    int reconnect;                           /* hc_listener_wait reconnects when the connection drops */
    int wake_fds[2];                         /* [0] read end, [1] write end; both non-blocking */
    unsigned attempt;                        /* failed connection attempts in a row */
    int64_t next_attempt_ms;                 /* monotonic time of the next attempt */
    uint32_t rng;                            /* xorshift state for the backoff jitter */
    unsigned connects;                       /* successful connections so far */
    unsigned attempts;                       /* connection attempts that ended, ok or not (any thread) */
    int interrupted;                         /* set by hc_listener_interrupt: give up any wait */
    int pending_wake;                        /* a wake arrived during a query: the next wait returns */
    pid_t owner_pid;                         /* the process that opened the connection */
    hc_listener_log_fn log;
    void *log_ctx;
} hc_listener;

/* Checks the channel (1..63 bytes, no NUL) and makes the wake pipe. reconnect: non-zero for a
 * long-lived listener that must never give up. log may be NULL. */
int hc_listener_init(hc_listener *l, const char *conninfo, const char *application_name,
                     const char *channel, int reconnect, hc_listener_log_fn log, void *log_ctx,
                     char *err, size_t errlen);

/* Closes the connection (PQfinish) and the wake pipe, frees everything. Safe to call twice. */
void hc_listener_close(hc_listener *l);

/* For a forked child: drops the inherited connection without sending anything on the socket the
 * parent still uses (the fd is pointed at /dev/null first), then frees everything. */
void hc_listener_abandon(hc_listener *l);

/* One connection attempt: connect, then LISTEN. Gives up after timeout_ms or when woken. */
int hc_listener_connect(hc_listener *l, int timeout_ms, char *err, size_t errlen);

/* Replaces every occurrence of conninfo's password (as written there) in msg with ***: libpq's
 * parse errors quote the tokens they reject. hc_listener_connect applies it to its errors. */
void hc_listener_redact(const char *conninfo, char *msg, size_t msglen);

/* Waits up to timeout_ms (-1: no limit) for notifications, the wake pipe or the time to pass;
 * delivers every pending notification to on_notify. When the connection is down and reconnect is
 * set, it waits out the backoff, makes one attempt (logged) and returns: OK once connected,
 * TIMEOUT while still down. Without reconnect a lost connection is an ERROR. Otherwise returns OK
 * when notifications were delivered, WOKEN, or TIMEOUT. */
int hc_listener_wait(hc_listener *l, int timeout_ms, hc_listener_notify_fn on_notify, void *ctx,
                     char *err, size_t errlen);

/* SELECT pg_notify($1, $2) on the listener's connection (parameters, never SQL text). Any
 * notification received meanwhile is kept for the next hc_listener_wait. */
int hc_listener_notify(hc_listener *l, const char *channel, const char *payload, int timeout_ms,
                       char *err, size_t errlen);

/* Makes the current or next hc_listener_wait return HC_LISTENER_WOKEN; a query or connection
 * attempt under way finishes first. Any thread, any time before close. */
void hc_listener_wake(hc_listener *l);

/* Like wake, but also abandons a query or connection attempt under way (for stop, Thread#kill).
 * Cleared by hc_listener_clear_interrupt. Any thread. */
void hc_listener_interrupt(hc_listener *l);
void hc_listener_clear_interrupt(hc_listener *l);

/* Connection attempts that have ended so far, succeeded or failed (not those given up when woken).
 * Any thread: arming waits for the first one's outcome, not for a timeout. */
unsigned hc_listener_attempts(const hc_listener *l);

/* Non-zero when connected and listening. Any thread. */
int hc_listener_connected(const hc_listener *l);

/* The server process id of the connection, 0 when not connected. Any thread. */
int hc_listener_backend_pid(const hc_listener *l);

/* Delay before reconnection attempt number `attempt` (1, 2, ...): the exponential delay
 * d = min(cap, base * 2^(attempt-1)), jittered uniformly into [d/2, d] by `random`. */
unsigned hc_listener_backoff_ms(unsigned attempt, uint32_t random);

/* LISTEN's SQL for a channel, the channel quoted with PQescapeIdentifier on conn. */
int hc_listener_listen_sql(struct pg_conn *conn, const char *channel, char *out, size_t outlen,
                           char *err, size_t errlen);

#endif
