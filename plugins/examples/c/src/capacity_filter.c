// Kiln's CapacityFilter in C: removes pools that cannot hold the requested size, with
// Cinder's semantics (reserved %, thin/thick provisioning, max over-subscription ratio,
// infinite/unknown capacities, extend needing only the growth). Answers exactly like the
// Rust default in plugins/default/src/capacity_filter.rs.
#include <stdlib.h>

#include "capacity.h"
#include "pool_table.h"

#define NAME "CapacityFilter"

// Whether `pool` can take `size` GiB. When it cannot and `why` is not NULL, the reason is
// written there; the hot path (`accept`) passes NULL and formats nothing.
static bool fits(const kiln_plugin_types_pool_t *pool, double size, bool thin, reason_t *why) {
    if (size == 0) return true; // Cinder's "manage existing" case
    if (pool->free_capacity_gb.tag != KILN_PLUGIN_TYPES_CAPACITY_GB) return true; // infinite / unknown
    unsigned pct = pool->reserved_percentage;
    if (pool->total_capacity_gb.tag != KILN_PLUGIN_TYPES_CAPACITY_GB) {
        if (pct == 0) return true;
        if (why) {
            bool infinite = pool->total_capacity_gb.tag == KILN_PLUGIN_TYPES_CAPACITY_INFINITE;
            reason_add(why, infinite ? "total capacity is infinite" : "total capacity is unknown");
            reason_add(why, ", cannot reserve ");
            reason_uint(why, pct);
            reason_add(why, "%");
        }
        return false;
    }
    double total = pool->total_capacity_gb.val.gb;
    if (total <= 0) {
        if (why) {
            reason_add(why, "total capacity is ");
            reason_gb(why, total);
            reason_add(why, " GB");
        }
        return false;
    }
    double usable = pool->free_capacity_gb.val.gb - reserved_gb(total, pool->reserved_percentage);
    double ratio = pool->max_over_subscription_ratio;

    if (thin && pool->thin_provisioning_support) {
        if (!(ratio >= 1.0)) {
            if (why) {
                reason_add(why, "max over-subscription ratio ");
                reason_ratio(why, ratio);
                reason_add(why, " is below 1.0");
            }
            return false;
        }
        double provisioned = (pool->provisioned_capacity_gb + size) / total;
        if (provisioned > ratio) {
            if (why) {
                reason_add(why, "provisioned ratio ");
                reason_ratio(why, provisioned);
                reason_add(why, " would exceed max over-subscription ratio ");
                reason_ratio(why, ratio);
            }
            return false;
        }
        double virtual_free = usable * ratio;
        if (virtual_free >= size) return true;
        if (why) {
            reason_add(why, "needs ");
            reason_gb(why, size);
            reason_add(why, " GB, ");
            reason_gb(why, virtual_free);
            reason_add(why, " GB virtual free (");
            reason_gb(why, usable);
            reason_add(why, " GB free x ratio ");
            reason_ratio(why, ratio);
            if (pct > 0) {
                reason_add(why, ", reserved ");
                reason_uint(why, pct);
                reason_add(why, "%");
            }
            reason_add(why, ")");
        }
        return false;
    }
    if (usable < size) {
        if (why) {
            reason_add(why, "needs ");
            reason_gb(why, size);
            reason_add(why, " GB, ");
            reason_gb(why, usable);
            reason_add(why, " GB free");
            if (pct > 0) {
                reason_add(why, " (reserved ");
                reason_uint(why, pct);
                reason_add(why, "%)");
            }
        }
        return false;
    }
    return true;
}

void exports_filter_name(filter_string_t *ret) {
    filter_string_dup(ret, NAME);
}

// The hot path: pass or not per candidate, in order; a candidate we do not hold fails.
void exports_filter_accept(filter_request_t *request, filter_list_u32_t *candidates, filter_list_bool_t *ret) {
    double size = requested_gb(request);
    bool thin = thin_requested(request);
    ret->len = candidates->len;
    ret->ptr = candidates->len ? malloc(candidates->len * sizeof *ret->ptr) : NULL;
    if (candidates->len && !ret->ptr) abort();
    for (size_t i = 0; i < candidates->len; i++) {
        const kiln_plugin_types_pool_t *pool = pool_table_get(candidates->ptr[i]);
        ret->ptr[i] = pool != NULL && fits(pool, size, thin, NULL);
    }
    filter_request_free(request); // the arguments are ours to free
    filter_list_u32_free(candidates);
}

// One verdict per candidate with the reason for each rejection (asked only to explain).
void exports_filter_filter(filter_request_t *request, filter_list_u32_t *candidates, filter_list_verdict_t *ret) {
    double size = requested_gb(request);
    bool thin = thin_requested(request);
    ret->len = candidates->len;
    ret->ptr = candidates->len ? malloc(candidates->len * sizeof *ret->ptr) : NULL;
    if (candidates->len && !ret->ptr) abort();
    for (size_t i = 0; i < candidates->len; i++) {
        reason_t why = {.len = 0};
        const kiln_plugin_types_pool_t *pool = pool_table_get(candidates->ptr[i]);
        bool pass = pool != NULL && fits(pool, size, thin, &why);
        if (pool == NULL) {
            reason_add(&why, "pool ");
            reason_uint(&why, candidates->ptr[i]);
            reason_add(&why, " is unknown to " NAME);
        }
        if (pass) {
            ret->ptr[i].tag = KILN_PLUGIN_TYPES_VERDICT_PASS;
        } else {
            ret->ptr[i].tag = KILN_PLUGIN_TYPES_VERDICT_REJECT;
            filter_string_dup_n(&ret->ptr[i].val.reject, why.text, why.len);
        }
    }
    filter_request_free(request);
    filter_list_u32_free(candidates);
}
