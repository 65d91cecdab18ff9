// Helpers shared by the capacity filter and weigher (see capacity.h).
#include <math.h>
#include <string.h>

#include "capacity.h"

double requested_gb(const kiln_plugin_types_request_t *request) {
    if (request->operation == KILN_PLUGIN_TYPES_OPERATION_EXTEND && request->new_size_gb.is_some) {
        uint64_t new_size = request->new_size_gb.val;
        return new_size > request->size_gb ? (double)(new_size - request->size_gb) : 0.0;
    }
    return (double)request->size_gb;
}

static bool is(const world_string_t *s, const char *text) {
    return s->len == strlen(text) && memcmp(s->ptr, text, s->len) == 0;
}

bool thin_requested(const kiln_plugin_types_request_t *request) {
    if (!request->volume_type.is_some) return true;
    const kiln_plugin_types_volume_type_t *type = &request->volume_type.val;
    for (size_t i = 0; i < type->extra_specs.len; i++) {
        if (is(&type->extra_specs.ptr[i].f0, "provisioning:type")) {
            return !is(&type->extra_specs.ptr[i].f1, "thick");
        }
    }
    return true;
}

double reserved_gb(double total, uint8_t reserved_percentage) {
    return floor(total * reserved_percentage / 100.0);
}

void reason_add(reason_t *r, const char *text) {
    while (*text && r->len + 1 < sizeof r->text) r->text[r->len++] = *text++;
    r->text[r->len] = '\0';
}

void reason_uint(reason_t *r, unsigned long long v) {
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char text[24];
    for (size_t i = 0; i < n; i++) text[i] = digits[n - 1 - i];
    text[n] = '\0';
    reason_add(r, text);
}

void reason_gb(reason_t *r, double x) {
    if (!isfinite(x)) {
        reason_add(r, isnan(x) ? "NaN" : (x > 0 ? "inf" : "-inf"));
        return;
    }
    unsigned long long cents = (unsigned long long)llround(fabs(x) * 100.0);
    if (x < 0 && cents != 0) reason_add(r, "-");
    reason_uint(r, cents / 100);
    unsigned frac = (unsigned)(cents % 100);
    if (frac != 0) {
        char text[4] = {'.', (char)('0' + frac / 10), (char)('0' + frac % 10), '\0'};
        if (frac % 10 == 0) text[2] = '\0';
        reason_add(r, text);
    }
}

void reason_ratio(reason_t *r, double x) {
    size_t start = r->len;
    reason_gb(r, x);
    if (isfinite(x) && !memchr(r->text + start, '.', r->len - start)) reason_add(r, ".0");
}
