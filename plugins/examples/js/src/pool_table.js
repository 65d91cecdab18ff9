// The plugin's copy of the scheduler's pools, kept current by the host's deltas.
//
// The host owns the pool list and sends changes (the WIT `pool-sync` interface): a full
// sync (`clear` then one `upsert` per pool) when the instance is created, then only what
// changed. A request then names its candidate pools by id, and the plugin looks them up
// here. Ids are small and dense (the host reuses freed ids), so an array indexed by id
// is the whole data structure.
//
// Copy this file as it is into your own plugin.

export class PoolTable {
  constructor() {
    this.slots = []; // slots[id] = the WIT `pool` record, or undefined
    this.count = 0;
  }

  // Apply a list of WIT `pool-delta`s, in order.
  apply(deltas) {
    for (const delta of deltas) {
      switch (delta.tag) {
        case "upsert": {
          const pool = delta.val;
          if (this.slots[pool.id] === undefined) this.count += 1;
          this.slots[pool.id] = pool;
          break;
        }
        case "consume": {
          // A placement used capacity; a pool we do not hold is ignored (the host checks
          // `poolCount` and resynchronises if the tables ever drift apart).
          const c = delta.val;
          const pool = this.slots[c.id];
          if (pool !== undefined) {
            pool.freeCapacityGb = c.freeCapacityGb;
            pool.allocatedCapacityGb = c.allocatedCapacityGb;
            pool.provisionedCapacityGb = c.provisionedCapacityGb;
            pool.totalVolumes = c.totalVolumes;
          }
          break;
        }
        case "remove": {
          if (this.slots[delta.val] !== undefined) {
            this.slots[delta.val] = undefined;
            this.count -= 1;
          }
          break;
        }
        case "clear":
          this.slots = [];
          this.count = 0;
          break;
        default:
          throw new Error(`unknown pool delta ${delta.tag}`);
      }
    }
  }

  // The pool with this id, or undefined.
  get(id) {
    return this.slots[id];
  }

  // How many pools are held (the WIT `pool-count`).
  size() {
    return this.count;
  }
}

// The `pool-sync` export for a plugin whose pools live in `table`.
export function poolSyncOf(table) {
  return {
    apply(deltas) {
      table.apply(deltas);
    },
    poolCount() {
      return table.size();
    },
  };
}
