// The plugin's copy of the scheduler's pools, kept current by the host through the WIT
// `pool-sync` interface (pool_table.c implements it): a full sync (`clear`, then one `upsert`
// per pool) when the instance is created, then only what changed (`upsert` after a capability
// report, `consume` after a placement, `remove`). A request names its candidates by id.
#ifndef KILN_POOL_TABLE_H
#define KILN_POOL_TABLE_H

#include "world.h"

// The pool with this id, or NULL when the table does not hold it.
const kiln_plugin_types_pool_t *pool_table_get(uint32_t id);

#endif
