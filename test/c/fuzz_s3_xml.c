/* libFuzzer harness for s3_xml.c: arbitrary bytes are parsed as an <Error>, a child element, a
 * count of children (ListParts) and a listing page (twice, to exercise appending). It must never crash, leak or overflow, and what it
 * returns must be NUL-terminated within its buffers. Run: bundle exec rake fuzz:s3_xml FUZZ_SECONDS=60 */
#include "s3_xml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xml = (const char *)data;
    hc_s3_xml_error e;
    char out[64], err[256];
    if (hc_s3_xml_parse_error(xml, size, &e) == 1) {
        if (strlen(e.code) >= sizeof e.code || strlen(e.message) >= sizeof e.message) abort();
    }
    if (hc_s3_xml_child_text(xml, size, "InitiateMultipartUploadResult", "UploadId", out, sizeof out, err,
                             sizeof err) == 0 && strlen(out) >= sizeof out)
        abort();
    long parts = -1;
    if (hc_s3_xml_count_children(xml, size, "ListPartsResult", "Part", &parts, err, sizeof err) == 0 && parts < 0)
        abort();
    if (memchr(err, '\0', sizeof err) == NULL) abort();
    hc_s3_xml_list_page page;
    memset(&page, 0, sizeof page);
    if (hc_s3_xml_parse_list(xml, size, &page, err, sizeof err) == 0) {
        size_t first = page.count;
        hc_s3_xml_parse_list(xml, size, &page, err, sizeof err);
        if (page.count < first) abort();
        for (size_t i = 0; i < page.count; i++) {
            if (!page.objects[i].key || page.objects[i].size < 0) abort();
        }
    }
    hc_s3_xml_list_page_free(&page);
    return 0;
}
