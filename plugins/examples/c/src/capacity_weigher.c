// Kiln's CapacityWeigher in C: the raw weight is the pool's free capacity, or with thin
// provisioning its virtual free capacity (total x max over-subscription ratio - provisioned -
// reserved), as Cinder's weights/capacity.py. The host normalises the weights and applies the
// multiplier. Answers exactly like plugins/default's Rust weigher.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "capacity.h"
#include "pool_table.h"

// Cinder's capacity_weight_multiplier (default 1.0). It decides the weight of a pool
// reporting infinite or unknown capacity, so it must equal the multiplier the host applies.
static double multiplier(void) {
    weigher_string_t key, value;
    weigher_string_set(&key, "capacity_weight_multiplier");
    if (!kiln_plugin_config_get(&key, &value)) return 1.0;
    char text[64] = "";
    if (value.len < sizeof text) memcpy(text, value.ptr, value.len);
    weigher_string_free(&value);
    char *end;
    double m = strtod(text, &end);
    return (end == text || *end != '\0' || isnan(m)) ? 1.0 : m;
}

static double weight(const kiln_plugin_types_pool_t *pool, bool thin, double mult) {
    if (pool->free_capacity_gb.tag != KILN_PLUGIN_TYPES_CAPACITY_GB ||
        pool->total_capacity_gb.tag != KILN_PLUGIN_TYPES_CAPACITY_GB) {
        // Infinite or unknown: last place whatever the multiplier's sign.
        return mult > 0 ? -1.0 : INFINITY;
    }
    double total = pool->total_capacity_gb.val.gb;
    double reserved = reserved_gb(total, pool->reserved_percentage);
    double w = thin && pool->thin_provisioning_support
                   ? total * pool->max_over_subscription_ratio - pool->provisioned_capacity_gb - reserved
                   : pool->free_capacity_gb.val.gb - reserved;
    return isnan(w) ? 0.0 : w; // the host refuses NaN
}

void exports_weigher_name(weigher_string_t *ret) {
    weigher_string_dup(ret, "CapacityWeigher");
}

// One raw weight per candidate, in order; a candidate we do not hold weighs 0.
void exports_weigher_weigh(weigher_request_t *request, weigher_list_u32_t *candidates, weigher_list_f64_t *ret) {
    bool thin = thin_requested(request);
    double mult = multiplier();
    ret->len = candidates->len;
    ret->ptr = candidates->len ? malloc(candidates->len * sizeof *ret->ptr) : NULL;
    if (candidates->len && !ret->ptr) abort();
    for (size_t i = 0; i < candidates->len; i++) {
        const kiln_plugin_types_pool_t *pool = pool_table_get(candidates->ptr[i]);
        ret->ptr[i] = pool ? weight(pool, thin, mult) : 0.0;
    }
    weigher_request_free(request); // the arguments are ours to free
    weigher_list_u32_free(candidates);
}
