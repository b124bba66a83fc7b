/* The dump's line edits, in the dump child (or inline, in the app): the sampled tracer's sites
 * added and, when asked, strings' contents redacted (dump_redact.h). An object line
 * whose address is in the sample table, and that carries no site yet, gets
 *   , "file":"app/models/user.rb", "line":12, "method":"new", "generation":42, "sample_weight":5100
 * before its "memsize" (else before "flags", else before its closing brace): where and how
 * ObjectSpace's own tracer writes them, so heapy and sheap read them unchanged (they ignore the
 * one field ObjectSpace does not write: sample_weight, the allocations the sample stands for, by
 * which heapcapture's summaries scale a site's sampled objects into an estimate). Every other byte
 * passes through as dump_all wrote it. A line split across writes waits for its end. Names are
 * written JSON-escaped. Pure C: no Ruby. */
#ifndef HC_DUMP_ANNOTATE_H
#define HC_DUMP_ANNOTATE_H

#include "tracer.h"
#include "dump_redact.h"

#include <stddef.h>
#include <stdint.h>

/* Where the annotated stream goes (the gzip sink): 0, or -1 with err set. */
typedef int (*hc_annotate_emit)(void *arg, const void *buf, size_t len, char *err, size_t errlen);

typedef struct {
    const hc_sample_table *samples;   /* or NULL: no sites to add */
    const hc_redactor *redactor;      /* or NULL: strings stay */
    hc_annotate_emit emit;
    void *arg;
    char *carry;            /* the start of a line whose end has not come yet */
    size_t carry_len, carry_cap;
    uint64_t annotated;     /* lines that got a site */
    uint64_t redacted;      /* strings whose value was replaced */
} hc_annotator;

void hc_annotator_init(hc_annotator *a, const hc_sample_table *samples, hc_annotate_emit emit, void *arg);
/* From now on, strings' values are redacted with r's key (r must outlive the annotator). */
void hc_annotator_redact(hc_annotator *a, const hc_redactor *r);
int hc_annotator_write(hc_annotator *a, const void *buf, size_t len, char *err, size_t errlen);
/* Passes on a last line that had no newline. */
int hc_annotator_finish(hc_annotator *a, char *err, size_t errlen);
void hc_annotator_free(hc_annotator *a);

#endif
