/* The capture's memory watcher (mem_watch.h). */
#include "mem_watch.h"
#include "mem_proc.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* One sample, the lock held. */
static void hc_mem_watch_sample(hc_mem_watch *w)
{
    char err[256];
    uint64_t t0 = hc_now_ns(), self = 0, child = 0;
    pid_t pid = w->child;
    pthread_mutex_unlock(&w->lock); /* reading /proc takes ms: stop and forget_child need not wait */
    int self_rc = hc_proc_pss(0, &self, err, sizeof err);
    int child_rc = pid > 0 ? hc_proc_pss(pid, &child, err, sizeof err) : 0;
    pthread_mutex_lock(&w->lock);
    w->samples++;
    w->sample_ns += hc_now_ns() - t0;
    if (self_rc != 0) {
        w->failed = 1;
        return;
    }
    if (pid > 0 && (child_rc != 0 || w->child != pid)) return; /* it ended meanwhile: no sum to make */
    uint64_t sum = self + child;
    uint64_t extra = sum > w->base ? sum - w->base : 0;
    if (extra > w->peak) w->peak = extra;
}

static void *hc_mem_watch_main(void *arg)
{
    hc_mem_watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        uint64_t t0 = hc_now_ns();
        hc_mem_watch_sample(w);
        uint64_t took_ms = (hc_now_ns() - t0) / 1000000;
        uint64_t wait_ms = took_ms * HC_MEM_WATCH_SHARE;
        if (wait_ms < HC_MEM_WATCH_MIN_MS) wait_ms = HC_MEM_WATCH_MIN_MS;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pid_t child = w->child;
        while (!w->stop && w->child == child && pthread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int hc_mem_watch_start(hc_mem_watch *w, pid_t child, uint64_t base, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->child = child;
    w->base = base;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    int rc = pthread_create(&w->thread, NULL, hc_mem_watch_main, w);
    if (rc != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        hc_errorf(err, errlen, "starting the thread that measures the capture's memory: %s", strerror(rc));
        return -1;
    }
    w->started = 1;
    return 0;
}

void hc_mem_watch_follow(hc_mem_watch *w, pid_t child)
{
    if (!w->started) return;
    pthread_mutex_lock(&w->lock);
    w->child = child;
    pthread_cond_signal(&w->cond); /* a first sample of the two now */
    pthread_mutex_unlock(&w->lock);
}

void hc_mem_watch_forget_child(hc_mem_watch *w)
{
    hc_mem_watch_follow(w, 0);
}

int64_t hc_mem_watch_stop(hc_mem_watch *w)
{
    if (!w->started) return w->failed || !w->samples ? -1 : (int64_t)w->peak;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->started = 0;
    pthread_mutex_lock(&w->lock);
    if (w->child == 0) hc_mem_watch_sample(w); /* the end counts too (no child left to add) */
    pthread_mutex_unlock(&w->lock);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    return w->failed || !w->samples ? -1 : (int64_t)w->peak;
}
