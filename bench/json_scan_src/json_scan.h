// bench/json_scan's parsers share these (jansson's and json-c's headers clash: one file each).
#pragma once
#include <cstddef>

struct Totals {
    unsigned long long objects = 0, memsize = 0, references = 0, invalid = 0, sited = 0;
};

void jansson_line(const char *p, size_t n, Totals &t);
