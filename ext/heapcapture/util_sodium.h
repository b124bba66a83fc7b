/* libsodium, started once per process for every module that uses it (signal_reply_seal.c, age.c,
 * dump_redact.c): sodium_init picks the fastest implementations and readies the randomness source
 * the first time any of them asks, from any thread (pthread_once). A process that forks a child
 * which uses libsodium (the dump child's age writer, its redactor) starts it before the fork, so the
 * child never runs sodium_init, which takes a lock. libsodium is optional (HC_HAVE_SODIUM): without
 * it every module says what to install. Pure C: no Ruby. */
#ifndef HC_UTIL_SODIUM_H
#define HC_UTIL_SODIUM_H

#include <stddef.h>

/* 1 when this build was linked with libsodium. */
int hc_sodium_available(void);

/* 0 once libsodium has started, else -1 with err set: "<doing>: libsodium could not start (no source
 * of randomness?)", or, in a build without libsodium, missing (the caller's sentence saying what to
 * install and what cannot be done without it). */
int hc_sodium_ready(const char *doing, const char *missing, char *err, size_t errlen);

#endif
