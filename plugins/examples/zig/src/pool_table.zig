//! The plugin's copy of the scheduler's pools, kept current by the host's deltas, and the
//! WIT `pool-sync` export that applies them.
//!
//! The host owns the pool list and sends changes: a full sync (`clear`, then one `upsert` per
//! pool) when the instance is created, then only what changed. A request then names its
//! candidate pools by id, and the plugin looks them up with `get`. Ids are small and dense
//! (the host reuses freed ids), so an array indexed by id is the whole data structure.
//!
//! `w` is the world's C bindings (wit-bindgen's header, translated by `zig translate-c`);
//! the WIT types have the same names in both worlds, so this file serves the filter and the
//! weigher. Copy it as it is into your own plugin.

const std = @import("std");
const w = @import("world");

pub const Pool = w.kiln_plugin_types_pool_t;

/// slots[id] is the pool with that id (owned by the table), or null.
var slots: std.ArrayList(?*Pool) = .empty;
var count: u32 = 0;
const gpa = std.heap.c_allocator;

/// The pool with this id, or null when the table does not hold it.
pub fn get(id: u32) ?*const Pool {
    return if (id < slots.items.len) slots.items[id] else null;
}

fn put(pool: *const Pool) void {
    const id: usize = pool.id;
    if (id >= slots.items.len) {
        const old = slots.items.len;
        slots.resize(gpa, id + 1) catch @panic("out of memory");
        @memset(slots.items[old..], null);
    }
    const copy = gpa.create(Pool) catch @panic("out of memory");
    copy.* = pool.*; // takes ownership of the pool's strings and lists
    if (slots.items[id]) |held| {
        w.kiln_plugin_types_pool_free(held);
        gpa.destroy(held);
    } else {
        count += 1;
    }
    slots.items[id] = copy;
}

fn drop(id: u32) void {
    if (id >= slots.items.len) return;
    if (slots.items[id]) |held| {
        w.kiln_plugin_types_pool_free(held);
        gpa.destroy(held);
        slots.items[id] = null;
        count -= 1;
    }
}

/// pool-sync.apply: apply the deltas in order. The list and everything in it belong to us.
export fn exports_kiln_plugin_pool_sync_apply(deltas: *w.exports_kiln_plugin_pool_sync_list_pool_delta_t) void {
    for (deltas.ptr[0..deltas.len]) |*delta| {
        switch (delta.tag) {
            w.KILN_PLUGIN_TYPES_POOL_DELTA_UPSERT => put(&delta.val.upsert),
            w.KILN_PLUGIN_TYPES_POOL_DELTA_CONSUME => {
                // A placement used capacity. A pool we do not hold is ignored (the host
                // checks pool-count and resynchronises if the tables ever drift apart).
                const c = &delta.val.consume;
                if (c.id < slots.items.len) {
                    if (slots.items[c.id]) |pool| {
                        pool.free_capacity_gb = c.free_capacity_gb;
                        pool.allocated_capacity_gb = c.allocated_capacity_gb;
                        pool.provisioned_capacity_gb = c.provisioned_capacity_gb;
                        pool.total_volumes = c.total_volumes;
                    }
                }
            },
            w.KILN_PLUGIN_TYPES_POOL_DELTA_REMOVE => drop(delta.val.remove),
            w.KILN_PLUGIN_TYPES_POOL_DELTA_CLEAR => {
                for (0..slots.items.len) |id| drop(@intCast(id));
            },
            else => unreachable,
        }
    }
    // The upserted pools now live in the table; only the list itself is left to free.
    if (deltas.len > 0) std.c.free(deltas.ptr);
}

/// pool-sync.pool-count
export fn exports_kiln_plugin_pool_sync_pool_count() u32 {
    return count;
}
