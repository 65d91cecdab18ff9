//! Kiln's CapacityFilter in Zig: removes pools that cannot hold the requested size, with
//! Cinder's semantics (reserved %, thin/thick provisioning, max over-subscription ratio,
//! infinite/unknown capacities, extend needing only the growth). Answers exactly like the
//! Rust default in plugins/default/src/capacity_filter.rs.

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

const name = "CapacityFilter";

/// Whether `pool` can take `size` GiB. When it cannot and `why` is given, the reason is
/// written there; the hot path (`accept`) passes null and formats nothing.
fn fits(pool: *const pools.Pool, size: f64, thin: bool, why: ?*cap.Reason) bool {
    if (size == 0) return true; // Cinder's "manage existing" case
    if (pool.free_capacity_gb.tag != w.KILN_PLUGIN_TYPES_CAPACITY_GB) return true; // infinite / unknown
    const pct = pool.reserved_percentage;
    if (pool.total_capacity_gb.tag != w.KILN_PLUGIN_TYPES_CAPACITY_GB) {
        if (pct == 0) return true;
        const what = if (pool.total_capacity_gb.tag == w.KILN_PLUGIN_TYPES_CAPACITY_INFINITE) "infinite" else "unknown";
        if (why) |r| r.add("total capacity is {s}, cannot reserve {d}%", .{ what, pct });
        return false;
    }
    const total = pool.total_capacity_gb.val.gb;
    if (total <= 0) {
        if (why) |r| {
            r.add("total capacity is ", .{});
            r.gb(total);
            r.add(" GB", .{});
        }
        return false;
    }
    const usable = pool.free_capacity_gb.val.gb - cap.reservedGb(total, pct);
    const ratio = pool.max_over_subscription_ratio;

    if (thin and pool.thin_provisioning_support) {
        if (!(ratio >= 1.0)) {
            if (why) |r| {
                r.add("max over-subscription ratio ", .{});
                r.ratio(ratio);
                r.add(" is below 1.0", .{});
            }
            return false;
        }
        const provisioned = (pool.provisioned_capacity_gb + size) / total;
        if (provisioned > ratio) {
            if (why) |r| {
                r.add("provisioned ratio ", .{});
                r.ratio(provisioned);
                r.add(" would exceed max over-subscription ratio ", .{});
                r.ratio(ratio);
            }
            return false;
        }
        const virtual_free = usable * ratio;
        if (virtual_free >= size) return true;
        if (why) |r| {
            r.add("needs ", .{});
            r.gb(size);
            r.add(" GB, ", .{});
            r.gb(virtual_free);
            r.add(" GB virtual free (", .{});
            r.gb(usable);
            r.add(" GB free x ratio ", .{});
            r.ratio(ratio);
            if (pct > 0) r.add(", reserved {d}%", .{pct});
            r.add(")", .{});
        }
        return false;
    }
    if (usable < size) {
        if (why) |r| {
            r.add("needs ", .{});
            r.gb(size);
            r.add(" GB, ", .{});
            r.gb(usable);
            r.add(" GB free", .{});
            if (pct > 0) r.add(" (reserved {d}%)", .{pct});
        }
        return false;
    }
    return true;
}

/// A list of `n` items for the bindings to return: malloc'd, since they free it.
fn allocList(comptime T: type, n: usize) [*c]T {
    if (n == 0) return null;
    const raw = std.c.malloc(n * @sizeOf(T)) orelse @panic("out of memory");
    return @ptrCast(@alignCast(raw));
}

export fn exports_filter_name(ret: *w.filter_string_t) void {
    w.filter_string_dup(ret, name);
}

/// The hot path: pass or not per candidate, in order; a candidate we do not hold fails.
export fn exports_filter_accept(request: *w.filter_request_t, candidates: *w.filter_list_u32_t, ret: *w.filter_list_bool_t) void {
    defer w.filter_request_free(request); // the arguments are ours to free
    defer w.filter_list_u32_free(candidates);
    const size = cap.requestedGb(request);
    const thin = cap.thinRequested(request);
    ret.len = candidates.len;
    ret.ptr = allocList(bool, candidates.len);
    for (0..candidates.len) |i| {
        const pool = pools.get(candidates.ptr[i]);
        ret.ptr[i] = if (pool) |p| fits(p, size, thin, null) else false;
    }
}

/// One verdict per candidate with the reason for each rejection (asked only to explain).
export fn exports_filter_filter(request: *w.filter_request_t, candidates: *w.filter_list_u32_t, ret: *w.filter_list_verdict_t) void {
    defer w.filter_request_free(request);
    defer w.filter_list_u32_free(candidates);
    const size = cap.requestedGb(request);
    const thin = cap.thinRequested(request);
    ret.len = candidates.len;
    ret.ptr = allocList(w.filter_verdict_t, candidates.len);
    for (0..candidates.len) |i| {
        var why = cap.Reason{};
        const pass = if (pools.get(candidates.ptr[i])) |p| fits(p, size, thin, &why) else blk: {
            why.add("pool {d} is unknown to " ++ name, .{candidates.ptr[i]});
            break :blk false;
        };
        if (pass) {
            ret.ptr[i].tag = w.KILN_PLUGIN_TYPES_VERDICT_PASS;
        } else {
            ret.ptr[i].tag = w.KILN_PLUGIN_TYPES_VERDICT_REJECT;
            w.filter_string_dup_n(&ret.ptr[i].val.reject, why.text().ptr, why.len);
        }
    }
}
