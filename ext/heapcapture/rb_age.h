/* What the age binding (rb_age.c) lends the dump bindings: recipients and identities from Ruby
 * values, checked with the C parser. Bindings only. */
#ifndef HC_RB_AGE_H
#define HC_RB_AGE_H

#include <ruby.h>

#include "dump_stream.h"
#include "heap_input.h"

/* Starts age (hc_dump_age_start) for recipients, an Array of "age1..." Strings: ConfigurationError
 * naming a bad one, DumpError when it cannot start (a build without libsodium). */
void hc_rb_age_start(hc_dump_age *age, VALUE recipients);

/* The identities in text (an identity file's contents, a String) into keys, or nil: keys stays
 * empty. Raises ArgumentError saying which line is not an identity (never quoting it). What it
 * gives is freed (and wiped) with hc_rb_age_keys_free. */
void hc_rb_age_keys(VALUE text, hc_dump_keys *keys);
void hc_rb_age_keys_free(hc_dump_keys *keys);

/* HeapCapture::Age, under hc_mHeapCapture. */
void hc_init_age(void);

#endif
