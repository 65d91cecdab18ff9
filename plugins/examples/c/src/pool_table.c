// The pool table and the `pool-sync` export (see pool_table.h).
#include <stdlib.h>

#include "pool_table.h"

// slots[id] is the pool with that id (owned by the table), or NULL.
static kiln_plugin_types_pool_t **slots;
static size_t slots_len;
static uint32_t count;

static void put(kiln_plugin_types_pool_t *pool) {
    uint32_t id = pool->id;
    if (id >= slots_len) {
        size_t len = slots_len ? slots_len : 16;
        while (len <= id) len *= 2;
        slots = realloc(slots, len * sizeof *slots);
        if (!slots) abort();
        for (size_t i = slots_len; i < len; i++) slots[i] = NULL;
        slots_len = len;
    }
    kiln_plugin_types_pool_t *copy = malloc(sizeof *copy);
    if (!copy) abort();
    *copy = *pool; // takes ownership of the pool's strings and lists
    if (slots[id]) {
        kiln_plugin_types_pool_free(slots[id]);
        free(slots[id]);
    } else {
        count++;
    }
    slots[id] = copy;
}

static void drop(uint32_t id) {
    if (id < slots_len && slots[id]) {
        kiln_plugin_types_pool_free(slots[id]);
        free(slots[id]);
        slots[id] = NULL;
        count--;
    }
}

const kiln_plugin_types_pool_t *pool_table_get(uint32_t id) {
    return id < slots_len ? slots[id] : NULL;
}

uint32_t pool_table_count(void) {
    return count;
}

// pool-sync.apply: apply the deltas in order. The list and everything in it belong to us.
void exports_kiln_plugin_pool_sync_apply(exports_kiln_plugin_pool_sync_list_pool_delta_t *deltas) {
    for (size_t i = 0; i < deltas->len; i++) {
        kiln_plugin_types_pool_delta_t *delta = &deltas->ptr[i];
        switch (delta->tag) {
        case KILN_PLUGIN_TYPES_POOL_DELTA_UPSERT:
            put(&delta->val.upsert);
            break;
        case KILN_PLUGIN_TYPES_POOL_DELTA_CONSUME: {
            // A placement used capacity. A pool we do not hold is ignored (the host checks
            // pool-count and resynchronises if the tables ever drift apart).
            kiln_plugin_types_consumption_t *c = &delta->val.consume;
            kiln_plugin_types_pool_t *pool = c->id < slots_len ? slots[c->id] : NULL;
            if (pool) {
                pool->free_capacity_gb = c->free_capacity_gb;
                pool->allocated_capacity_gb = c->allocated_capacity_gb;
                pool->provisioned_capacity_gb = c->provisioned_capacity_gb;
                pool->total_volumes = c->total_volumes;
            }
            break;
        }
        case KILN_PLUGIN_TYPES_POOL_DELTA_REMOVE:
            drop(delta->val.remove);
            break;
        case KILN_PLUGIN_TYPES_POOL_DELTA_CLEAR:
            for (size_t id = 0; id < slots_len; id++) drop((uint32_t)id);
            break;
        }
    }
    free(deltas->ptr); // the upserted pools now live in the table; nothing else owns memory
}

// pool-sync.pool-count
uint32_t exports_kiln_plugin_pool_sync_pool_count(void) {
    return count;
}
