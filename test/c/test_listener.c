/* The listener without Ruby: channel quoting, backoff bounds, the wake pipe, a refused connection,
 * and, when HEAPCAPTURE_TEST_DATABASE_URL names a server, a real LISTEN/NOTIFY round trip. */
#include "hc_test.h"
#include "listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A loopback port nobody listens on: bind, read the port, close. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static char logged[4096];
static void capture_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    strncat(logged, msg, sizeof logged - strlen(logged) - 2);
    strcat(logged, "\n");
}

static void test_listen_sql_quotes_the_channel(void)
{
    /* PQescapeIdentifier needs a PGconn but not a live one. */
    PGconn *conn = PQconnectStart("host=127.0.0.1 port=1 dbname=x connect_timeout=1");
    char sql[256], err[256];
    HC_CHECK(hc_listener_listen_sql(conn, "heapcapture_web_1", sql, sizeof sql, err, sizeof err) == HC_LISTENER_OK,
             "%s", err);
    HC_CHECK_STR(sql, "LISTEN \"heapcapture_web_1\"", "a plain channel");
    HC_CHECK(hc_listener_listen_sql(conn, "we\"ird; DROP TABLE x", sql, sizeof sql, err, sizeof err) == HC_LISTENER_OK,
             "%s", err);
    HC_CHECK_STR(sql, "LISTEN \"we\"\"ird; DROP TABLE x\"", "a quote is doubled, nothing escapes the identifier");
    char tiny[8];
    HC_CHECK(hc_listener_listen_sql(conn, "heapcapture_web_1", tiny, sizeof tiny, err, sizeof err) == HC_LISTENER_ERROR,
             "a short buffer is an error");
    HC_CHECK(strstr(err, "does not fit") != NULL, "error says why: %s", err);
    PQfinish(conn);
}

static void test_backoff_grows_is_jittered_and_capped(void)
{
    HC_CHECK(hc_listener_backoff_ms(1, 0) == 125, "attempt 1, lowest jitter: %u", hc_listener_backoff_ms(1, 0));
    HC_CHECK(hc_listener_backoff_ms(1, 125) == 250, "attempt 1, highest jitter: %u", hc_listener_backoff_ms(1, 125));
    uint32_t seeds[] = { 0, 1, 7, 12345, 0x7fffffffu, 0xffffffffu, 2654435761u };
    for (unsigned attempt = 1; attempt <= 40; attempt++) {
        unsigned d = 250u << (attempt - 1 < 10 ? attempt - 1 : 10);
        if (attempt > 10 || d > 30000) d = 30000;
        for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
            unsigned got = hc_listener_backoff_ms(attempt, seeds[i]);
            HC_CHECK(got >= d / 2 && got <= d, "attempt %u seed %u: %u not in [%u, %u]", attempt, seeds[i], got,
                     d / 2, d);
        }
    }
    HC_CHECK(hc_listener_backoff_ms(1000000, 0xffffffffu) <= 30000, "huge attempt counts stay capped");
    /* Different random inputs spread the delay (jitter), the same input gives the same delay. */
    HC_CHECK(hc_listener_backoff_ms(6, 1) != hc_listener_backoff_ms(6, 2), "jitter varies the delay");
}

static void test_init_rejects_bad_input(void)
{
    hc_listener l;
    char err[256];
    HC_CHECK(hc_listener_init(&l, "", NULL, "c", 0, NULL, NULL, err, sizeof err) == HC_LISTENER_ERROR, "empty URL");
    HC_CHECK(strstr(err, "no database URL") != NULL, "says why: %s", err);
    char long_channel[80];
    memset(long_channel, 'a', 64);
    long_channel[64] = '\0';
    HC_CHECK(hc_listener_init(&l, "postgres://x/y", NULL, long_channel, 0, NULL, NULL, err, sizeof err) ==
                 HC_LISTENER_ERROR, "64-byte channel");
    HC_CHECK(strstr(err, "at most 63") != NULL, "says the limit: %s", err);
    hc_listener_close(&l); /* safe on a failed init */
}

static void test_wake_pipe_interrupts_a_wait(void)
{
    hc_listener l;
    char err[512];
    int port = closed_port();
    char url[128];
    snprintf(url, sizeof url, "postgres://postgres@127.0.0.1:%d/postgres", port);
    HC_CHECK(hc_listener_init(&l, url, "heapcapture-test", "heapcapture_web_1", 1, capture_log, NULL, err,
                              sizeof err) == HC_LISTENER_OK, "%s", err);
    /* A wake before the wait makes the wait return at once. */
    hc_listener_wake(&l);
    long t0 = now_ms();
    int rc = hc_listener_wait(&l, 5000, NULL, NULL, err, sizeof err);
    HC_CHECK(rc == HC_LISTENER_WOKEN, "woken, got %d (%s)", rc, err);
    HC_CHECK(now_ms() - t0 < 1000, "returned in %ld ms", now_ms() - t0);
    /* Many wakes (more than the pipe holds is fine) collapse into one. */
    for (int i = 0; i < 100000; i++) hc_listener_wake(&l);
    HC_CHECK(hc_listener_wait(&l, 5000, NULL, NULL, err, sizeof err) == HC_LISTENER_WOKEN, "woken once");
    /* The server is down: the wait logs the failure and keeps to its time limit. */
    logged[0] = '\0';
    t0 = now_ms();
    rc = hc_listener_wait(&l, 1000, NULL, NULL, err, sizeof err); /* time for a first attempt on a loaded machine */
    HC_CHECK(rc == HC_LISTENER_TIMEOUT, "timeout while reconnecting, got %d", rc);
    HC_CHECK(now_ms() - t0 < 3000, "kept to its limit: %ld ms", now_ms() - t0);
    HC_CHECK(strstr(logged, "connecting to PostgreSQL failed") != NULL, "logged the failure: %s", logged);
    HC_CHECK(strstr(logged, "next attempt in") != NULL, "logged the backoff: %s", logged);
    HC_CHECK(!hc_listener_connected(&l), "not connected");
    /* An interrupt ends a backoff wait at once. */
    hc_listener_interrupt(&l);
    t0 = now_ms();
    HC_CHECK(hc_listener_wait(&l, 5000, NULL, NULL, err, sizeof err) == HC_LISTENER_WOKEN, "interrupted");
    HC_CHECK(now_ms() - t0 < 1000, "at once: %ld ms", now_ms() - t0);
    hc_listener_close(&l);
    hc_listener_close(&l);
}

static void test_refused_connection_says_where_and_why(void)
{
    hc_listener l;
    char err[512];
    char url[128];
    snprintf(url, sizeof url, "postgres://postgres:s3cret@127.0.0.1:%d/postgres", closed_port());
    HC_CHECK(hc_listener_init(&l, url, NULL, "", 0, NULL, NULL, err, sizeof err) == HC_LISTENER_OK, "%s", err);
    HC_CHECK(hc_listener_attempts(&l) == 0, "no attempt yet: %u", hc_listener_attempts(&l));
    int rc = hc_listener_connect(&l, 5000, err, sizeof err);
    HC_CHECK(rc == HC_LISTENER_ERROR, "refused: %d", rc);
    HC_CHECK(hc_listener_attempts(&l) == 1, "the failed attempt is counted: %u", hc_listener_attempts(&l));
    HC_CHECK(strstr(err, "connecting to PostgreSQL failed") != NULL, "says what: %s", err);
    HC_CHECK(strstr(err, "127.0.0.1") != NULL && strstr(err, "refused") != NULL, "says where and why: %s", err);
    HC_CHECK(strstr(err, "s3cret") == NULL, "no password: %s", err);
    HC_CHECK(strchr(err, '\n') == NULL, "one line: %s", err);
    /* Without reconnect, waiting on no connection is an error, not a hang. */
    HC_CHECK(hc_listener_wait(&l, 5000, NULL, NULL, err, sizeof err) == HC_LISTENER_ERROR, "wait: %s", err);
    HC_CHECK(hc_listener_notify(&l, "c", "p", 1000, err, sizeof err) == HC_LISTENER_ERROR, "notify: %s", err);
    HC_CHECK(strstr(err, "not connected") != NULL, "notify says why: %s", err);
    hc_listener_close(&l);
}

/* libpq quotes the tokens it cannot parse (a bad %-escape in the password, a malformed URL):
 * the connect's error must never carry the password. */
static void test_parse_errors_never_quote_the_password(void)
{
    const char *urls[] = {
        "postgres://u:s3cr%zzet@127.0.0.1:1/db",          /* invalid percent-encoded token */
        "postgresql://u:s3cr%00et@127.0.0.1:1/db",        /* forbidden %00 */
        "postgres://u:s3cr%zzet@[::1/db",                 /* the whole URL is quoted */
        "postgres://127.0.0.1:1/db?password=s3cr%zzet",
        "host=127.0.0.1 port=1 password=s3cr%zzet bogus=1",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        hc_listener l;
        char err[512];
        HC_CHECK(hc_listener_init(&l, urls[i], NULL, "", 0, NULL, NULL, err, sizeof err) == HC_LISTENER_OK, "%s", err);
        HC_CHECK(hc_listener_connect(&l, 2000, err, sizeof err) == HC_LISTENER_ERROR, "fails: %s", urls[i]);
        HC_CHECK(strstr(err, "s3cr") == NULL, "no password in: %s", err);
        HC_CHECK(strstr(err, "connecting to PostgreSQL") != NULL, "still says what failed: %s", err);
        hc_listener_close(&l);
    }
    char msg[64] = "invalid percent-encoded token: \"pa55\" and pa55 again";
    hc_listener_redact("host=h password='pa55'", msg, sizeof msg);
    HC_CHECK_STR(msg, "invalid percent-encoded token: \"***\" and *** again", "quoted key=value password");
    char cut[16] = "token: \"longpa";
    hc_listener_redact("postgres://u:longpassword@h/d", cut, sizeof cut);
    HC_CHECK_STR(cut, "token: \"***", "a message cut inside the password");
    char none[32] = "no password here";
    hc_listener_redact("postgres://u@h/d", none, sizeof none);
    HC_CHECK_STR(none, "no password here", "nothing to redact");
}

struct seen {
    int count;
    char channel[64];
    char payload[8192];
    int be_pid;
};

static void on_note(void *ctx, const char *channel, int be_pid, const char *payload)
{
    struct seen *s = ctx;
    s->count++;
    snprintf(s->channel, sizeof s->channel, "%s", channel);
    snprintf(s->payload, sizeof s->payload, "%s", payload);
    s->be_pid = be_pid;
}

/* Only with a server: HEAPCAPTURE_TEST_DATABASE_URL=postgres://... bundle exec rake test:c */
static void test_round_trip_with_a_server(const char *url)
{
    hc_listener listener, sender;
    char err[512];
    HC_CHECK(hc_listener_init(&listener, url, "heapcapture-ctest", "hc_ctest \"chan\"", 1, capture_log, NULL, err,
                              sizeof err) == HC_LISTENER_OK, "%s", err);
    HC_CHECK(hc_listener_init(&sender, url, "heapcapture-ctest", "", 0, NULL, NULL, err, sizeof err) ==
                 HC_LISTENER_OK, "%s", err);
    HC_CHECK(hc_listener_connect(&listener, 5000, err, sizeof err) == HC_LISTENER_OK, "listener: %s", err);
    HC_CHECK(hc_listener_connect(&sender, 5000, err, sizeof err) == HC_LISTENER_OK, "sender: %s", err);
    const char *payload = "it's $$ \\ \"q\" \xc3\xa9";
    HC_CHECK(hc_listener_notify(&sender, "hc_ctest \"chan\"", payload, 5000, err, sizeof err) == HC_LISTENER_OK,
             "%s", err);
    struct seen s = { 0 };
    int rc = hc_listener_wait(&listener, 5000, on_note, &s, err, sizeof err);
    HC_CHECK(rc == HC_LISTENER_OK && s.count == 1, "delivered: rc %d count %d %s", rc, s.count, err);
    HC_CHECK_STR(s.channel, "hc_ctest \"chan\"", "channel");
    HC_CHECK_STR(s.payload, payload, "payload intact");
    HC_CHECK(s.be_pid == hc_listener_backend_pid(&sender), "be_pid is the sender's backend: %d", s.be_pid);
    hc_listener_close(&sender);
    hc_listener_close(&listener);
}

int main(void)
{
    test_listen_sql_quotes_the_channel();
    test_backoff_grows_is_jittered_and_capped();
    test_init_rejects_bad_input();
    test_wake_pipe_interrupts_a_wait();
    test_refused_connection_says_where_and_why();
    test_parse_errors_never_quote_the_password();
    const char *url = getenv("HEAPCAPTURE_TEST_DATABASE_URL");
    if (url && *url) test_round_trip_with_a_server(url);
    else printf("test_listener: no HEAPCAPTURE_TEST_DATABASE_URL, the round trip with a server is left to the Ruby tests\n");
    return hc_test_summary("test_listener");
}
