// The plugin's copy of the scheduler's pools, kept current by the host's deltas.
//
// The host owns the pool list and sends changes through the WIT `pool-sync` interface, which
// pool_table.c implements: a full sync (`clear`, then one `upsert` per pool) when the instance
// is created, then only what changed. A request then names its candidate pools by id, and the
// plugin looks them up with pool_table_get. Ids are small and dense (the host reuses freed
// ids), so an array indexed by id is the whole data structure.
//
// Copy pool_table.h and pool_table.c as they are into your own plugin.
#ifndef KILN_EXAMPLE_POOL_TABLE_H
#define KILN_EXAMPLE_POOL_TABLE_H

#include "world.h"

// The pool with this id, or NULL when the table does not hold it.
const kiln_plugin_types_pool_t *pool_table_get(uint32_t id);

// How many pools the table holds.
uint32_t pool_table_count(void);

#endif
