// bench/json_scan's program: one dump file (in memory, not timed) read line by line for the fields
// heapcapture's summary uses (objects, memsize, references held, type, site) by heapcapture's
// scanner (ext/heapcapture/heap_scan.c) and by JSON libraries from Debian: simdjson (DOM parser:
// validates every byte, as ours does), jansson, json-c, yajl. Each must find the same totals (a
// check, not a timing). Prints "<name> <seconds> <objects> <memsize> <references> <invalid>" per
// round; rounds alternate the parsers.
extern "C" {
#include "heap_scan.h"
}
#include <json-c/json.h>
#include <simdjson.h>
#include <yajl/yajl_tree.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "json_scan.h"

using Parser = std::function<void(const char *, size_t, Totals &)>;

static void hc_scanner(const char *p, size_t n, Totals &t)
{
    hc_dump_line l;
    if (hc_dump_scan_line(p, n, &l) != 0) { t.invalid++; return; }
    if (!l.has_address) return;
    t.objects++;
    t.memsize += l.has_memsize ? l.memsize : 0;
    t.references += l.has_references ? l.references : 0;
    t.sited += l.has_file;
}

static json_tokener *tok;
static void json_c(const char *p, size_t n, Totals &t)
{
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, p, (int)n);
    if (!o || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object)) {
        t.invalid++;
        if (o) json_object_put(o);
        return;
    }
    json_object *v;
    if (json_object_object_get_ex(o, "address", &v)) {
        t.objects++;
        if (json_object_object_get_ex(o, "memsize", &v) && json_object_is_type(v, json_type_int))
            t.memsize += (unsigned long long)json_object_get_int64(v);
        if (json_object_object_get_ex(o, "references", &v) && json_object_is_type(v, json_type_array))
            t.references += json_object_array_length(v);
        t.sited += json_object_object_get_ex(o, "file", &v) && json_object_is_type(v, json_type_string);
        (void)json_object_object_get_ex(o, "type", &v);
    }
    json_object_put(o);
}

static std::string yajl_buf;
static void yajl(const char *p, size_t n, Totals &t)
{
    yajl_buf.assign(p, n); // yajl_tree_parse takes a NUL-terminated string
    yajl_val o = yajl_tree_parse(yajl_buf.c_str(), nullptr, 0);
    if (!o || !YAJL_IS_OBJECT(o)) { t.invalid++; if (o) yajl_tree_free(o); return; }
    const char *addr[] = {"address", nullptr}, *mem[] = {"memsize", nullptr}, *refs[] = {"references", nullptr},
               *file[] = {"file", nullptr}, *type[] = {"type", nullptr};
    if (yajl_tree_get(o, addr, yajl_t_any)) {
        t.objects++;
        yajl_val m = yajl_tree_get(o, mem, yajl_t_number);
        if (m && YAJL_IS_INTEGER(m)) t.memsize += (unsigned long long)YAJL_GET_INTEGER(m);
        yajl_val r = yajl_tree_get(o, refs, yajl_t_array);
        if (r) t.references += YAJL_GET_ARRAY(r)->len;
        t.sited += yajl_tree_get(o, file, yajl_t_string) != nullptr;
        (void)yajl_tree_get(o, type, yajl_t_string);
    }
    yajl_tree_free(o);
}

static simdjson::dom::parser simd_parser;
static void simd(const char *p, size_t n, Totals &t)
{
    simdjson::dom::element o;
    if (simd_parser.parse(p, n, true).get(o) || !o.is_object()) { t.invalid++; return; }
    if (o["address"].error()) return;
    t.objects++;
    uint64_t m;
    if (!o["memsize"].get_uint64().get(m)) t.memsize += m;
    simdjson::dom::array r;
    if (!o["references"].get_array().get(r)) t.references += r.size();
    std::string_view f;
    t.sited += !o["file"].get_string().get(f);
    (void)o["type"];
}

int main(int argc, char **argv)
{
    if (argc < 3) { std::fprintf(stderr, "usage: json_scan DUMP ROUNDS\n"); return 2; }
    std::ifstream in(argv[1], std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string data = ss.str();
    int rounds = std::atoi(argv[2]);
    tok = json_tokener_new();
    std::vector<std::pair<const char *, Parser>> parsers = {
        {"heapcapture", hc_scanner}, {"simdjson", simd}, {"jansson", jansson_line}, {"json-c", json_c}, {"yajl", yajl}};
    for (int r = 0; r < rounds; r++) {
        for (size_t k = 0; k < parsers.size(); k++) {
            auto &pr = parsers[r % 2 ? parsers.size() - 1 - k : k]; // the order turns every round
            Totals t;
            auto t0 = std::chrono::steady_clock::now();
            const char *p = data.data(), *end = p + data.size();
            while (p < end) {
                const char *nl = static_cast<const char *>(std::memchr(p, '\n', (size_t)(end - p)));
                size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
                if (n) pr.second(p, n, t);
                p += n + 1;
            }
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::printf("%s %.4f %llu %llu %llu %llu %llu\n", pr.first, s, t.objects, t.memsize, t.references, t.invalid,
                        t.sited);
            std::fflush(stdout);
        }
    }
    json_tokener_free(tok);
    return 0;
}
