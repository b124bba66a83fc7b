/* Shared by the Ruby bindings (rb_*.c) only; the pure C modules never include it. */
#ifndef HC_RB_HEAPCAPTURE_H
#define HC_RB_HEAPCAPTURE_H

#include <ruby.h>

extern VALUE hc_mHeapCapture;
extern VALUE hc_eError;
extern VALUE hc_eConfigurationError;
extern VALUE hc_eConnectionError;
extern VALUE hc_eDumpError;
extern VALUE hc_eUploadError;

/* Each binding's init, called from Init_heapcapture. */
void hc_init_sigv4(void);
void hc_init_listener(void);
void hc_init_s3(void);
void hc_init_dump(void);

#endif
