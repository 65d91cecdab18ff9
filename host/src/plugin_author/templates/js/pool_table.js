// The plugin's copy of the scheduler's pools, kept current by the host through the WIT
// `pool-sync` interface: a full sync (`clear`, then one `upsert` per pool) when the instance
// is created, then only what changed (`upsert` after a capability report, `consume` after a
// placement, `remove`). A request names its candidates by id.

export class PoolTable {
  constructor() {
    this.slots = []; // slots[id] = the WIT `pool` record, or undefined
    this.count = 0;
  }

  apply(deltas) {
    for (const delta of deltas) {
      switch (delta.tag) {
        case "upsert":
          if (this.slots[delta.val.id] === undefined) this.count += 1;
          this.slots[delta.val.id] = delta.val;
          break;
        case "consume": {
          const c = delta.val;
          const pool = this.slots[c.id];
          if (pool !== undefined) { // unknown: ignored (the host checks poolCount)
            pool.freeCapacityGb = c.freeCapacityGb;
            pool.allocatedCapacityGb = c.allocatedCapacityGb;
            pool.provisionedCapacityGb = c.provisionedCapacityGb;
            pool.totalVolumes = c.totalVolumes;
          }
          break;
        }
        case "remove":
          if (this.slots[delta.val] !== undefined) {
            this.slots[delta.val] = undefined;
            this.count -= 1;
          }
          break;
        case "clear":
          this.slots = [];
          this.count = 0;
          break;
      }
    }
  }

  get(id) {
    return this.slots[id];
  }
}

// The `pool-sync` export for a plugin whose pools live in `table`.
export function poolSyncOf(table) {
  return {
    apply(deltas) {
      table.apply(deltas);
    },
    poolCount() {
      return table.count;
    },
  };
}
