/* Reading S3's XML answers with expat: a small walker that keeps the path of open elements and the
 * text of the innermost one, and hands each closed element to a per-document callback. */
#include "s3_xml.h"

#include <expat.h>

/* Where a parse failed. expat 2.9 deprecates the XML_Size forms for 64-bit ones it added then. */
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 9)
#define HC_XML_LINE(p) ((unsigned long long)XML_GetCurrentLineNumber64(p))
#define HC_XML_COLUMN(p) ((unsigned long long)XML_GetCurrentColumnNumber64(p))
#else
#define HC_XML_LINE(p) ((unsigned long long)XML_GetCurrentLineNumber(p))
#define HC_XML_COLUMN(p) ((unsigned long long)XML_GetCurrentColumnNumber(p))
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HC_XML_MAX_DEPTH 8
#define HC_XML_MAX_NAME 64
#define HC_XML_MAX_TEXT (64 * 1024) /* a key is at most 1024 bytes; nothing S3 sends is longer */

typedef struct hc_xml_walk hc_xml_walk;
/* Called when an element closes: depth 1 is the root; names[0..depth-1] is the path. */
typedef void (*hc_xml_end_fn)(hc_xml_walk *w, int depth, const char *text, size_t textlen);

struct hc_xml_walk {
    XML_Parser parser;
    char names[HC_XML_MAX_DEPTH][HC_XML_MAX_NAME];
    int depth;                 /* may exceed HC_XML_MAX_DEPTH; deeper names are not kept */
    char *text;
    size_t textlen, textcap;
    int failed;                /* out of memory, DOCTYPE, text too long */
    const char *why;
    hc_xml_end_fn on_end;
    void *ctx;
};

static void hc_xml_fail(hc_xml_walk *w, const char *why)
{
    if (!w->failed) {
        w->failed = 1;
        w->why = why;
        XML_StopParser(w->parser, XML_FALSE);
    }
}

static void XMLCALL hc_xml_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
    hc_xml_walk *w = data;
    (void)attrs;
    if (w->depth < HC_XML_MAX_DEPTH) {
        snprintf(w->names[w->depth], HC_XML_MAX_NAME, "%s", name);
    }
    w->depth++;
    w->textlen = 0;
}

static void XMLCALL hc_xml_end(void *data, const XML_Char *name)
{
    hc_xml_walk *w = data;
    (void)name;
    if (w->depth <= HC_XML_MAX_DEPTH && w->on_end) {
        w->text[w->textlen] = '\0';
        w->on_end(w, w->depth, w->text, w->textlen);
    }
    w->depth--;
    w->textlen = 0;
}

static void XMLCALL hc_xml_chars(void *data, const XML_Char *s, int len)
{
    hc_xml_walk *w = data;
    if (w->failed || len <= 0) return;
    if (w->textlen + (size_t)len + 1 > HC_XML_MAX_TEXT) {
        hc_xml_fail(w, "an element's text is longer than 64 KiB");
        return;
    }
    if (w->textlen + (size_t)len + 1 > w->textcap) {
        size_t cap = w->textcap * 2;
        while (cap < w->textlen + (size_t)len + 1) cap *= 2;
        char *grown = realloc(w->text, cap);
        if (!grown) {
            hc_xml_fail(w, "out of memory");
            return;
        }
        w->text = grown;
        w->textcap = cap;
    }
    memcpy(w->text + w->textlen, s, (size_t)len);
    w->textlen += (size_t)len;
}

static void XMLCALL hc_xml_doctype(void *data, const XML_Char *name, const XML_Char *sysid,
                                   const XML_Char *pubid, int has_internal_subset)
{
    (void)name; (void)sysid; (void)pubid; (void)has_internal_subset;
    hc_xml_fail(data, "the document has a DOCTYPE, which S3 never sends");
}

/* Parses the whole document. Returns 0, or -1 with a message in err. */
static int hc_xml_run(hc_xml_walk *w, const char *xml, size_t len, char *err, size_t errlen)
{
    int rc = -1;
    w->textcap = 256;
    w->text = malloc(w->textcap);
    w->parser = XML_ParserCreate("UTF-8");
    if (!w->text || !w->parser) {
        snprintf(err, errlen, "out of memory while parsing S3's XML answer");
        goto done;
    }
    XML_SetUserData(w->parser, w);
    XML_SetElementHandler(w->parser, hc_xml_start, hc_xml_end);
    XML_SetCharacterDataHandler(w->parser, hc_xml_chars);
    XML_SetStartDoctypeDeclHandler(w->parser, hc_xml_doctype);
    if (len > (size_t)0x7fffffff) {
        snprintf(err, errlen, "S3's XML answer is larger than 2 GiB");
        goto done;
    }
    if (len == 0) {
        snprintf(err, errlen, "S3's answer was empty where an XML document was expected");
        goto done;
    }
    if (XML_Parse(w->parser, xml, (int)len, XML_TRUE) != XML_STATUS_OK || w->failed) {
        if (w->failed) {
            snprintf(err, errlen, "S3's XML answer was refused: %s", w->why);
        } else {
            snprintf(err, errlen, "S3's answer is not well-formed XML (%s at line %llu, column %llu)",
                     XML_ErrorString(XML_GetErrorCode(w->parser)), HC_XML_LINE(w->parser), HC_XML_COLUMN(w->parser));
        }
        goto done;
    }
    rc = 0;
done:
    if (w->parser) XML_ParserFree(w->parser);
    free(w->text);
    w->parser = NULL;
    w->text = NULL;
    return rc;
}

static void hc_xml_copy(char *dst, size_t dstlen, const char *src)
{
    if (dstlen == 0) return;
    snprintf(dst, dstlen, "%s", src);
}

/* ---- <Error> ---- */

static void hc_xml_error_end(hc_xml_walk *w, int depth, const char *text, size_t textlen)
{
    hc_s3_xml_error *out = w->ctx;
    (void)textlen;
    if (depth != 2 || strcmp(w->names[0], "Error") != 0) return;
    if (strcmp(w->names[1], "Code") == 0) hc_xml_copy(out->code, sizeof out->code, text);
    else if (strcmp(w->names[1], "Message") == 0) hc_xml_copy(out->message, sizeof out->message, text);
    else if (strcmp(w->names[1], "RequestId") == 0) hc_xml_copy(out->request_id, sizeof out->request_id, text);
}

int hc_s3_xml_parse_error(const char *xml, size_t len, hc_s3_xml_error *out)
{
    hc_xml_walk w = {0};
    char err[256];
    memset(out, 0, sizeof *out);
    w.on_end = hc_xml_error_end;
    w.ctx = out;
    /* The root's name is still in names[0] after the walk: the end handler only moves depth. */
    if (hc_xml_run(&w, xml, len, err, sizeof err) != 0) return -1;
    return strcmp(w.names[0], "Error") == 0 ? 1 : 0;
}

/* ---- one child of the root ---- */

typedef struct {
    const char *root, *name;
    char *out;
    size_t outlen;
    int found;
} hc_xml_child_ctx;

static void hc_xml_child_end(hc_xml_walk *w, int depth, const char *text, size_t textlen)
{
    hc_xml_child_ctx *c = w->ctx;
    (void)textlen;
    if (c->found || depth != 2) return;
    if (strcmp(w->names[0], c->root) == 0 && strcmp(w->names[1], c->name) == 0) {
        hc_xml_copy(c->out, c->outlen, text);
        c->found = 1;
    }
}

/* After a walk: 0 when the root element was <root>, else -1 with err saying what came instead. */
static int hc_xml_expect_root(const hc_xml_walk *w, const char *xml, size_t len, const char *root, char *err,
                              size_t errlen)
{
    if (strcmp(w->names[0], root) == 0) return 0;
    hc_s3_xml_error e;
    if (hc_s3_xml_parse_error(xml, len, &e) == 1) {
        snprintf(err, errlen, "S3 answered with error %s (%s) where <%s> was expected", e.code, e.message, root);
    } else {
        snprintf(err, errlen, "S3's answer has root element <%s> where <%s> was expected", w->names[0], root);
    }
    return -1;
}

int hc_s3_xml_child_text(const char *xml, size_t len, const char *root, const char *name,
                         char *out, size_t outlen, char *err, size_t errlen)
{
    hc_xml_walk w = {0};
    hc_xml_child_ctx c = {root, name, out, outlen, 0};
    if (outlen) out[0] = '\0';
    w.on_end = hc_xml_child_end;
    w.ctx = &c;
    if (hc_xml_run(&w, xml, len, err, errlen) != 0) return -1;
    if (hc_xml_expect_root(&w, xml, len, root, err, errlen) != 0) return -1;
    if (!c.found) {
        snprintf(err, errlen, "S3's <%s> answer has no <%s> element", root, name);
        return -1;
    }
    return 0;
}

/* ---- how many children of the root have a name ---- */

typedef struct {
    const char *name;
    long count;
} hc_xml_count_ctx;

static void hc_xml_count_end(hc_xml_walk *w, int depth, const char *text, size_t textlen)
{
    hc_xml_count_ctx *c = w->ctx;
    (void)text;
    (void)textlen;
    if (depth == 2 && strcmp(w->names[1], c->name) == 0) c->count++;
}

int hc_s3_xml_count_children(const char *xml, size_t len, const char *root, const char *name, long *count,
                             char *err, size_t errlen)
{
    hc_xml_walk w = {0};
    hc_xml_count_ctx c = {name, 0};
    *count = 0;
    w.on_end = hc_xml_count_end;
    w.ctx = &c;
    if (hc_xml_run(&w, xml, len, err, errlen) != 0) return -1;
    if (hc_xml_expect_root(&w, xml, len, root, err, errlen) != 0) return -1;
    *count = c.count;
    return 0;
}

/* ---- ListBucketResult ---- */

typedef struct {
    hc_s3_xml_list_page *page;
    hc_s3_xml_object current;
    int has_key;
} hc_xml_list_ctx;

static char *hc_xml_strdup(hc_xml_walk *w, const char *s)
{
    char *copy = strdup(s);
    if (!copy) hc_xml_fail(w, "out of memory");
    return copy;
}

static void hc_xml_list_end(hc_xml_walk *w, int depth, const char *text, size_t textlen)
{
    hc_xml_list_ctx *c = w->ctx;
    hc_s3_xml_list_page *page = c->page;
    (void)textlen;
    if (w->failed || strcmp(w->names[0], "ListBucketResult") != 0) return;
    if (depth == 2) {
        if (strcmp(w->names[1], "IsTruncated") == 0) {
            page->is_truncated = strcmp(text, "true") == 0;
        } else if (strcmp(w->names[1], "NextContinuationToken") == 0) {
            free(page->next_continuation_token);
            page->next_continuation_token = hc_xml_strdup(w, text);
        } else if (strcmp(w->names[1], "Contents") == 0) {
            if (!c->has_key) {
                hc_xml_fail(w, "a <Contents> entry has no <Key>");
                return;
            }
            if (page->count == page->capacity) {
                size_t cap = page->capacity ? page->capacity * 2 : 64;
                hc_s3_xml_object *grown = realloc(page->objects, cap * sizeof *grown);
                if (!grown) {
                    hc_xml_fail(w, "out of memory");
                    return;
                }
                page->objects = grown;
                page->capacity = cap;
            }
            page->objects[page->count++] = c->current;
            memset(&c->current, 0, sizeof c->current);
            c->has_key = 0;
        }
    } else if (depth == 3 && strcmp(w->names[1], "Contents") == 0) {
        if (strcmp(w->names[2], "Key") == 0) {
            free(c->current.key);
            c->current.key = hc_xml_strdup(w, text);
            c->has_key = c->current.key != NULL;
        } else if (strcmp(w->names[2], "Size") == 0) {
            char *end;
            c->current.size = strtoll(text, &end, 10);
            if (end == text || *end != '\0' || c->current.size < 0) hc_xml_fail(w, "a <Size> is not a number");
        } else if (strcmp(w->names[2], "LastModified") == 0) {
            free(c->current.last_modified);
            c->current.last_modified = hc_xml_strdup(w, text);
        }
    }
}

int hc_s3_xml_parse_list(const char *xml, size_t len, hc_s3_xml_list_page *page, char *err, size_t errlen)
{
    hc_xml_walk w = {0};
    hc_xml_list_ctx c = {0};
    int rc;
    c.page = page;
    page->is_truncated = 0;
    free(page->next_continuation_token);
    page->next_continuation_token = NULL;
    w.on_end = hc_xml_list_end;
    w.ctx = &c;
    rc = hc_xml_run(&w, xml, len, err, errlen);
    free(c.current.key);
    free(c.current.last_modified);
    if (rc != 0) return -1;
    if (strcmp(w.names[0], "ListBucketResult") != 0) {
        snprintf(err, errlen, "S3's answer to a listing has root element <%s>, not <ListBucketResult>", w.names[0]);
        return -1;
    }
    if (page->is_truncated && (!page->next_continuation_token || !*page->next_continuation_token)) {
        snprintf(err, errlen, "S3's listing says it is truncated but gives no continuation token");
        return -1;
    }
    return 0;
}

void hc_s3_xml_list_page_free(hc_s3_xml_list_page *page)
{
    for (size_t i = 0; i < page->count; i++) {
        free(page->objects[i].key);
        free(page->objects[i].last_modified);
    }
    free(page->objects);
    free(page->next_continuation_token);
    memset(page, 0, sizeof *page);
}
