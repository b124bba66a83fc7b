// bench/json_scan: jansson's parse of one dump line (a file of its own: its names clash with json-c's).
#include "json_scan.h"

#include <jansson.h>

void jansson_line(const char *p, size_t n, Totals &t)
{
    json_error_t e;
    json_t *o = json_loadb(p, n, JSON_ALLOW_NUL, &e);
    if (!o || !json_is_object(o)) { t.invalid++; if (o) json_decref(o); return; }
    if (json_object_get(o, "address")) {
        t.objects++;
        json_t *m = json_object_get(o, "memsize");
        if (json_is_integer(m)) t.memsize += (unsigned long long)json_integer_value(m);
        json_t *r = json_object_get(o, "references");
        if (json_is_array(r)) t.references += json_array_size(r);
        t.sited += json_is_string(json_object_get(o, "file"));
        json_t *type = json_object_get(o, "type");
        (void)type;
    }
    json_decref(o);
}

