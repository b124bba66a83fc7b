/* TEMPORARY (branch listener): weak stand-ins for the inits other branches provide, so this
 * branch's extension loads before they are merged. A real definition (rb_sigv4.c) replaces the
 * weak one at link time. Delete this file once the sigv4 branch is in main. */
#include "rb_heapcapture.h"

__attribute__((weak)) void hc_init_sigv4(void)
{
}
