// What Kiln's CapacityFilter and CapacityWeigher share: the requested size, Cinder's
// thin/thick switch, the reserved share, and numbers formatted for reject reasons.
#ifndef KILN_EXAMPLE_CAPACITY_H
#define KILN_EXAMPLE_CAPACITY_H

#include <stddef.h>

#include "world.h"

// The GiB a request needs: for an extend only the growth (0 is Cinder's "manage" case).
double requested_gb(const kiln_plugin_types_request_t *request);

// Thin provisioning applies unless the volume type says `provisioning:type` = `thick`.
bool thin_requested(const kiln_plugin_types_request_t *request);

// Cinder keeps floor(total x reserved%) of a pool free.
double reserved_gb(double total, uint8_t reserved_percentage);

// A reject reason, built piece by piece. (Not snprintf: wasi-libc's stdio would import
// WASI file functions, which Kiln does not grant a filter.)
typedef struct {
    char text[256];
    size_t len;
} reason_t;

// Append text.
void reason_add(reason_t *r, const char *text);
// Append an integer.
void reason_uint(reason_t *r, unsigned long long v);
// Append a size: at most two decimals, trailing zeros dropped (10 -> "10", 2.50 -> "2.5").
void reason_gb(reason_t *r, double x);
// Append a ratio: like reason_gb, with at least one decimal (20 -> "20.0").
void reason_ratio(reason_t *r, double x);

#endif
