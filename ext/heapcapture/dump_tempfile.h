/* Before a dump, on the app's side (the parent, or the process itself in inline mode): the 0600
 * tempfile the dump goes into, and whether it fits (this process's RSS, the estimate of the stored
 * dump, the free space). Pure C: no Ruby. Functions that can fail return -1 and write what they
 * were doing and why into err. */
#ifndef HC_DUMP_TEMPFILE_H
#define HC_DUMP_TEMPFILE_H

#include <stddef.h>
#include <stdint.h>

/* Opens exactly `path` for writing with O_CREAT|O_EXCL|O_CLOEXEC, mode 0600. Returns the fd or -1
 * (EEXIST included: never reuses or follows an existing file). */
int hc_dump_open_exclusive(const char *path, char *err, size_t errlen);

/* Creates "<dir>/heapcapture-<pid>-<random><suffix>" like hc_dump_open_exclusive, retrying with a
 * new random part on a name collision. Writes the path into path (pathlen bytes). */
int hc_dump_tempfile(const char *dir, const char *suffix, char *path, size_t pathlen, char *err,
                     size_t errlen);

/* ---- free space ---- */

/* Conservative size of the stored dump of a process with this RSS, above the ratios measured
 * (doc/figures.md): 2x RSS plain, 2x RSS / 5 gzip, 16 MiB minimum. */
uint64_t hc_dump_estimate(uint64_t rss_bytes, int gzip);
int hc_dump_free_bytes(const char *dir, uint64_t *avail, char *err, size_t errlen);
/* 0 when `needed` bytes fit in dir; -1 with "needs about N MB ... only M MB free ..." otherwise. */
int hc_dump_check_space(const char *dir, uint64_t needed, char *err, size_t errlen);

#endif
