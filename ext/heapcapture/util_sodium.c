/* libsodium's once-only start (see util_sodium.h). */
#include "util_sodium.h"
#include "util.h"

#ifdef HC_HAVE_SODIUM
#include <pthread.h>
#include <sodium.h>

static pthread_once_t hc_sodium_once = PTHREAD_ONCE_INIT;
static int hc_sodium_status;

static void hc_sodium_start(void) { hc_sodium_status = sodium_init(); }
#endif

int hc_sodium_available(void)
{
#ifdef HC_HAVE_SODIUM
    return 1;
#else
    return 0;
#endif
}

int hc_sodium_ready(const char *doing, const char *missing, char *err, size_t errlen)
{
#ifdef HC_HAVE_SODIUM
    (void)missing;
    pthread_once(&hc_sodium_once, hc_sodium_start);
    if (hc_sodium_status >= 0) return 0; /* 1: started earlier, by libsodium's own count */
    hc_errorf(err, errlen, "%s: libsodium could not start (no source of randomness?)", doing);
#else
    (void)doing;
    hc_errorf(err, errlen, "%s", missing);
#endif
    return -1;
}
