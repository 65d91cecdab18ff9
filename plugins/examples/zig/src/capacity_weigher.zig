//! Kiln's CapacityWeigher in Zig: the raw weight is the pool's free capacity, or with thin
//! provisioning its virtual free capacity (total × max over-subscription ratio − provisioned −
//! reserved), as Cinder's weights/capacity.py. The host normalises the weights and applies
//! the multiplier. Answers exactly like plugins/default's Rust weigher.

const std = @import("std");
const w = @import("world");
const cap = @import("capacity.zig");
const pools = @import("pool_table.zig");

comptime {
    _ = pools; // its `export fn`s implement the pool-sync interface
}

/// A panic traps (the host then replaces the instance). Zig's default handler would print a
/// stack trace to stderr, pulling in WASI imports that Kiln does not grant.
pub const panic = std.debug.no_panic;

/// Cinder's capacity_weight_multiplier (default 1.0). It decides the weight of a pool
/// reporting infinite or unknown capacity, so it must equal the multiplier the host applies.
fn multiplier() f64 {
    var key: w.weigher_string_t = undefined;
    w.weigher_string_set(&key, "capacity_weight_multiplier");
    var value: w.weigher_string_t = undefined;
    if (!w.kiln_plugin_config_get(&key, &value)) return 1.0;
    defer w.weigher_string_free(&value);
    const m = std.fmt.parseFloat(f64, cap.str(value)) catch return 1.0;
    return if (std.math.isNan(m)) 1.0 else m;
}

fn weight(pool: *const pools.Pool, thin: bool, mult: f64) f64 {
    if (pool.free_capacity_gb.tag != w.KILN_PLUGIN_TYPES_CAPACITY_GB or
        pool.total_capacity_gb.tag != w.KILN_PLUGIN_TYPES_CAPACITY_GB)
    {
        // Infinite or unknown: last place whatever the multiplier's sign.
        return if (mult > 0) -1.0 else std.math.inf(f64);
    }
    const total = pool.total_capacity_gb.val.gb;
    const reserved = cap.reservedGb(total, pool.reserved_percentage);
    const wt = if (thin and pool.thin_provisioning_support)
        total * pool.max_over_subscription_ratio - pool.provisioned_capacity_gb - reserved
    else
        pool.free_capacity_gb.val.gb - reserved;
    return if (std.math.isNan(wt)) 0.0 else wt; // the host refuses NaN
}

export fn exports_weigher_name(ret: *w.weigher_string_t) void {
    w.weigher_string_dup(ret, "CapacityWeigher");
}

/// One raw weight per candidate, in order; a candidate we do not hold weighs 0.
export fn exports_weigher_weigh(request: *w.weigher_request_t, candidates: *w.weigher_list_u32_t, ret: *w.weigher_list_f64_t) void {
    defer w.weigher_request_free(request); // the arguments are ours to free
    defer w.weigher_list_u32_free(candidates);
    const thin = cap.thinRequested(request);
    const mult = multiplier();
    ret.len = candidates.len;
    ret.ptr = if (candidates.len == 0) null else @ptrCast(@alignCast(std.c.malloc(candidates.len * @sizeOf(f64)) orelse @panic("out of memory")));
    for (0..candidates.len) |i| {
        ret.ptr[i] = if (pools.get(candidates.ptr[i])) |p| weight(p, thin, mult) else 0.0;
    }
}
