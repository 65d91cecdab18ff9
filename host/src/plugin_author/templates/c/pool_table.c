// The pool table and the `pool-sync` export. Ids are small and dense (the host reuses freed
// ids), so an array indexed by id is the whole data structure.
#include "pool_table.h"

static kiln_plugin_types_pool_t **slots; // slots[id]: owned by the table, or NULL
static size_t slots_len;
static uint32_t count;

static void drop(uint32_t id) {
    if (id < slots_len && slots[id]) {
        kiln_plugin_types_pool_free(slots[id]);
        free(slots[id]);
        slots[id] = NULL;
        count--;
    }
}

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
    drop(id);
    slots[id] = copy;
    count++;
}

const kiln_plugin_types_pool_t *pool_table_get(uint32_t id) {
    return id < slots_len ? slots[id] : NULL;
}

// pool-sync.apply: the deltas in order. The list and what it holds are ours.
void exports_kiln_plugin_pool_sync_apply(exports_kiln_plugin_pool_sync_list_pool_delta_t *deltas) {
    for (size_t i = 0; i < deltas->len; i++) {
        kiln_plugin_types_pool_delta_t *d = &deltas->ptr[i];
        switch (d->tag) {
        case KILN_PLUGIN_TYPES_POOL_DELTA_UPSERT:
            put(&d->val.upsert);
            break;
        case KILN_PLUGIN_TYPES_POOL_DELTA_CONSUME: {
            kiln_plugin_types_consumption_t *c = &d->val.consume;
            kiln_plugin_types_pool_t *p = c->id < slots_len ? slots[c->id] : NULL;
            if (p) { // an unknown pool is ignored: the host checks pool-count and resyncs
                p->free_capacity_gb = c->free_capacity_gb;
                p->allocated_capacity_gb = c->allocated_capacity_gb;
                p->provisioned_capacity_gb = c->provisioned_capacity_gb;
                p->total_volumes = c->total_volumes;
            }
            break;
        }
        case KILN_PLUGIN_TYPES_POOL_DELTA_REMOVE:
            drop(d->val.remove);
            break;
        case KILN_PLUGIN_TYPES_POOL_DELTA_CLEAR:
            for (size_t id = 0; id < slots_len; id++) drop((uint32_t)id);
            break;
        }
    }
    free(deltas->ptr); // upserted pools now live in the table
}

// pool-sync.pool-count: the host checks it after a full sync.
uint32_t exports_kiln_plugin_pool_sync_pool_count(void) {
    return count;
}
