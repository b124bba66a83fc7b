/* Reading S3's XML answers with expat. Pure C: no Ruby, no curl.
 *
 * Text is returned entity-decoded (a key "a&b" arrives as "a&amp;b"). Element names are matched
 * without namespace processing, so S3's default xmlns needs no special care. Documents with a
 * DOCTYPE are refused: S3 never sends one, and refusing it closes the door on entity tricks. */
#ifndef HC_S3_XML_H
#define HC_S3_XML_H

#include <stddef.h>

/* One entry of a ListObjectsV2 page. Strings are malloc'd and owned by the page. */
typedef struct {
    char *key;
    long long size;
    char *last_modified;          /* as S3 wrote it: "2026-11-21T20:30:42.000Z" */
} hc_s3_xml_object;

typedef struct {
    hc_s3_xml_object *objects;
    size_t count;
    size_t capacity;
    int is_truncated;
    char *next_continuation_token; /* NULL when absent */
} hc_s3_xml_list_page;

/* S3's <Error> body. Fields are "" when absent. */
typedef struct {
    char code[64];
    char message[512];
    char request_id[128];
} hc_s3_xml_error;

/* Returns 1 when the document's root element is <Error> (and fills *out), 0 when it is some other
 * well-formed document, -1 when it is not XML at all (an HTML page from a proxy, a truncated
 * body). len 0 gives -1. */
int hc_s3_xml_parse_error(const char *xml, size_t len, hc_s3_xml_error *out);

/* Copies the decoded text of the first <name> element that is a direct child of the root element
 * <root> into out (truncated to outlen-1 bytes). Returns 0 when found, -1 with a message in err
 * when the document is malformed, the root is different (an <Error> root says its code), or the
 * element is missing. */
int hc_s3_xml_child_text(const char *xml, size_t len, const char *root, const char *name,
                         char *out, size_t outlen, char *err, size_t errlen);

/* Counts the <name> elements that are direct children of the root element <root> (a ListParts
 * answer's <Part>s) into *count. Returns 0, or -1 with a message in err when the document is
 * malformed or the root is different. */
int hc_s3_xml_count_children(const char *xml, size_t len, const char *root, const char *name, long *count,
                             char *err, size_t errlen);

/* Parses a ListObjectsV2 answer (<ListBucketResult>), appending to page->objects. Returns 0, or -1
 * with a message in err. Call hc_s3_xml_list_page_free in both cases. */
int hc_s3_xml_parse_list(const char *xml, size_t len, hc_s3_xml_list_page *page, char *err, size_t errlen);

void hc_s3_xml_list_page_free(hc_s3_xml_list_page *page);

#endif
