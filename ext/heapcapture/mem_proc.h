/* Memory figures of a process from Linux's /proc: resident size (status's VmRSS) and proportional
 * set size (smaps_rollup's Pss: each page shared by n processes counts 1/n, so the Pss of an app
 * and its fork child add up to the memory the two take). Pure C: no Ruby. */
#ifndef HC_MEM_PROC_H
#define HC_MEM_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The value of the "<name>  1234 kB" line of text (name includes its colon), in bytes: 0, or -1
 * when there is no such line or its number is not one. */
int hc_proc_kb_field(const char *text, const char *name, uint64_t *bytes);

/* VmRSS of this process; Pss of pid (0: this process). 0, or -1 with err saying what failed. */
int hc_proc_self_rss(uint64_t *bytes, char *err, size_t errlen);
int hc_proc_pss(pid_t pid, uint64_t *bytes, char *err, size_t errlen);

/* /proc/<pid>/<file> (pid 0: this process) whole, of any length (smaps runs to megabytes),
 * NUL-terminated and malloc'd; NULL with errno when it cannot be read. The one reader of /proc
 * here: the figures above read through it. */
char *hc_proc_text(pid_t pid, const char *file);

#endif
