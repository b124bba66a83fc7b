/* s3_xml.c: S3's XML answers, decoded; malformed and hostile documents refused. */
#include "hc_test.h"
#include "s3_xml.h"

#include <stdlib.h>

#define DOC(s) (s), strlen(s)

static void test_error_document(void)
{
    hc_s3_xml_error e;
    const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                      "<Message>Please reduce your request rate &amp; retry.</Message>"
                      "<RequestId>4442587FB7D0A2F9</RequestId><HostId>x</HostId></Error>";
    HC_CHECK(hc_s3_xml_parse_error(DOC(xml), &e) == 1, "an <Error> root is recognised");
    HC_CHECK_STR(e.code, "SlowDown", "code");
    HC_CHECK_STR(e.message, "Please reduce your request rate & retry.", "message, entity-decoded");
    HC_CHECK_STR(e.request_id, "4442587FB7D0A2F9", "request id");

    const char *ok = "<CompleteMultipartUploadResult><ETag>\"abc-2\"</ETag></CompleteMultipartUploadResult>";
    HC_CHECK(hc_s3_xml_parse_error(DOC(ok), &e) == 0, "another root is not an error");
    HC_CHECK(hc_s3_xml_parse_error(DOC("<html><body>bad gateway"), &e) == -1, "truncated HTML is not XML");
    HC_CHECK(hc_s3_xml_parse_error("", 0, &e) == -1, "an empty body is not XML");
}

static void test_child_text(void)
{
    char out[128], err[256];
    const char *init = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       "<Bucket>b</Bucket><Key>a&amp;b</Key><UploadId>VXBsb2FkIElE</UploadId>"
                       "</InitiateMultipartUploadResult>";
    HC_CHECK(hc_s3_xml_child_text(DOC(init), "InitiateMultipartUploadResult", "UploadId", out, sizeof out, err,
                                  sizeof err) == 0, "%s", err);
    HC_CHECK_STR(out, "VXBsb2FkIElE", "upload id");
    HC_CHECK(hc_s3_xml_child_text(DOC(init), "InitiateMultipartUploadResult", "Key", out, sizeof out, err,
                                  sizeof err) == 0, "%s", err);
    HC_CHECK_STR(out, "a&b", "key decoded");

    HC_CHECK(hc_s3_xml_child_text(DOC(init), "InitiateMultipartUploadResult", "Nope", out, sizeof out, err,
                                  sizeof err) == -1, "missing element");
    HC_CHECK(strstr(err, "no <Nope>") != NULL, "message names the element: %s", err);

    const char *error = "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>";
    HC_CHECK(hc_s3_xml_child_text(DOC(error), "CompleteMultipartUploadResult", "ETag", out, sizeof out, err,
                                  sizeof err) == -1, "an <Error> root is not the result");
    HC_CHECK(strstr(err, "NoSuchUpload") != NULL, "message carries S3's code: %s", err);

    HC_CHECK(hc_s3_xml_child_text(DOC("<a><b>"), "a", "b", out, sizeof out, err, sizeof err) == -1, "truncated");
    HC_CHECK(strstr(err, "not well-formed") != NULL, "says why: %s", err);

    const char *bomb = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;\">]>"
                       "<r><k>&b;</k></r>";
    HC_CHECK(hc_s3_xml_child_text(DOC(bomb), "r", "k", out, sizeof out, err, sizeof err) == -1, "DOCTYPE refused");
    HC_CHECK(strstr(err, "DOCTYPE") != NULL, "says why: %s", err);

    /* Truncation to the caller's buffer, never past it. */
    char tiny[4];
    HC_CHECK(hc_s3_xml_child_text(DOC(init), "InitiateMultipartUploadResult", "UploadId", tiny, sizeof tiny, err,
                                  sizeof err) == 0, "%s", err);
    HC_CHECK_STR(tiny, "VXB", "truncated copy");
}

static void test_list(void)
{
    char err[256];
    hc_s3_xml_list_page page;
    memset(&page, 0, sizeof page);
    const char *p1 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                     "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                     "<Prefix>dumps/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
                     "<IsTruncated>true</IsTruncated>"
                     "<Contents><Key>dumps/a &amp; b+c.gz</Key><LastModified>2026-11-21T20:30:42.000Z</LastModified>"
                     "<ETag>&quot;x&quot;</ETag><Size>123456789012</Size><StorageClass>STANDARD</StorageClass></Contents>"
                     "<Contents><Key>dumps/\xc3\xa9t\xc3\xa9 \xe2\x9c\x93</Key><LastModified>2026-11-21T20:31:00.000Z</LastModified>"
                     "<Size>0</Size></Contents>"
                     "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
                     "</ListBucketResult>";
    HC_CHECK(hc_s3_xml_parse_list(DOC(p1), &page, err, sizeof err) == 0, "%s", err);
    HC_CHECK(page.count == 2, "two entries, got %zu", page.count);
    HC_CHECK(page.is_truncated == 1, "truncated");
    HC_CHECK_STR(page.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=", "token");
    if (page.count == 2) {
        HC_CHECK_STR(page.objects[0].key, "dumps/a & b+c.gz", "key with & decoded");
        HC_CHECK(page.objects[0].size == 123456789012LL, "size beyond 32 bits: %lld", page.objects[0].size);
        HC_CHECK_STR(page.objects[0].last_modified, "2026-11-21T20:30:42.000Z", "last modified");
        HC_CHECK_STR(page.objects[1].key, "dumps/\xc3\xa9t\xc3\xa9 \xe2\x9c\x93", "unicode key");
        HC_CHECK(page.objects[1].size == 0, "empty object");
    }
    /* A second page appends and clears the token. */
    const char *p2 = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                     "<Contents><Key>dumps/z</Key><Size>5</Size></Contents></ListBucketResult>";
    HC_CHECK(hc_s3_xml_parse_list(DOC(p2), &page, err, sizeof err) == 0, "%s", err);
    HC_CHECK(page.count == 3 && !page.is_truncated && page.next_continuation_token == NULL, "page 2 appended");
    hc_s3_xml_list_page_free(&page);

    const char *empty = "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>";
    HC_CHECK(hc_s3_xml_parse_list(DOC(empty), &page, err, sizeof err) == 0 && page.count == 0, "empty listing");
    hc_s3_xml_list_page_free(&page);

    const char *bad_size = "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>";
    HC_CHECK(hc_s3_xml_parse_list(DOC(bad_size), &page, err, sizeof err) == -1, "bad size refused");
    HC_CHECK(strstr(err, "<Size>") != NULL, "says which: %s", err);
    hc_s3_xml_list_page_free(&page);

    const char *no_token = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
    HC_CHECK(hc_s3_xml_parse_list(DOC(no_token), &page, err, sizeof err) == -1, "truncated without token refused");
    hc_s3_xml_list_page_free(&page);

    const char *error = "<Error><Code>NoSuchBucket</Code></Error>";
    HC_CHECK(hc_s3_xml_parse_list(DOC(error), &page, err, sizeof err) == -1, "an error is not a listing");
    HC_CHECK(strstr(err, "<Error>") != NULL, "says what came: %s", err);
    hc_s3_xml_list_page_free(&page);
}

/* ListParts after an abort: the <Part>s still listed are counted, nested ones are not. */
static void test_count_children(void)
{
    char err[256];
    long n = -1;
    const char *two = "<?xml version=\"1.0\"?><ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                      "<Bucket>b</Bucket><Part><PartNumber>1</PartNumber></Part><Part><PartNumber>3</PartNumber>"
                      "</Part><IsTruncated>false</IsTruncated></ListPartsResult>";
    HC_CHECK(hc_s3_xml_count_children(DOC(two), "ListPartsResult", "Part", &n, err, sizeof err) == 0, "%s", err);
    HC_CHECK(n == 2, "two parts, got %ld", n);
    const char *none = "<ListPartsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated></ListPartsResult>";
    HC_CHECK(hc_s3_xml_count_children(DOC(none), "ListPartsResult", "Part", &n, err, sizeof err) == 0 && n == 0,
             "no part: %ld", n);
    const char *nested = "<ListPartsResult><Owner><Part>x</Part></Owner></ListPartsResult>";
    HC_CHECK(hc_s3_xml_count_children(DOC(nested), "ListPartsResult", "Part", &n, err, sizeof err) == 0 && n == 0,
             "only children of the root count: %ld", n);
    const char *error = "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>";
    HC_CHECK(hc_s3_xml_count_children(DOC(error), "ListPartsResult", "Part", &n, err, sizeof err) == -1, "error root");
    HC_CHECK(strstr(err, "NoSuchUpload") != NULL, "says which: %s", err);
    HC_CHECK(hc_s3_xml_count_children(DOC("<ListPartsResult><Part>"), "ListPartsResult", "Part", &n, err,
                                      sizeof err) == -1 && n == 0, "truncated: refused, nothing counted");
}

int main(void)
{
    test_error_document();
    test_child_text();
    test_count_children();
    test_list();
    return hc_test_summary("s3_xml");
}
