//! What Kiln's CapacityFilter and CapacityWeigher share: the requested size, Cinder's
//! thin/thick switch, the reserved share, and numbers formatted for reject reasons.

const std = @import("std");
const w = @import("world");

pub const Request = w.kiln_plugin_types_request_t;

/// A WIT string as a Zig slice.
pub fn str(s: anytype) []const u8 {
    return if (s.len == 0) "" else s.ptr[0..s.len];
}

/// The GiB a request needs: for an extend only the growth (0 is Cinder's "manage" case).
pub fn requestedGb(request: *const Request) f64 {
    if (request.operation == w.KILN_PLUGIN_TYPES_OPERATION_EXTEND and request.new_size_gb.is_some) {
        const new_size = request.new_size_gb.val;
        return if (new_size > request.size_gb) @floatFromInt(new_size - request.size_gb) else 0;
    }
    return @floatFromInt(request.size_gb);
}

/// Thin provisioning applies unless the volume type says `provisioning:type` = `thick`.
pub fn thinRequested(request: *const Request) bool {
    if (!request.volume_type.is_some) return true;
    const specs = request.volume_type.val.extra_specs;
    if (specs.len == 0) return true;
    for (specs.ptr[0..specs.len]) |spec| {
        if (std.mem.eql(u8, str(spec.f0), "provisioning:type")) {
            return !std.mem.eql(u8, str(spec.f1), "thick");
        }
    }
    return true;
}

/// Cinder keeps floor(total × reserved%) of a pool free.
pub fn reservedGb(total: f64, reserved_percentage: u8) f64 {
    return @floor(total * @as(f64, @floatFromInt(reserved_percentage)) / 100.0);
}

/// A reject reason, built piece by piece into a fixed buffer.
pub const Reason = struct {
    buf: [256]u8 = undefined,
    len: usize = 0,

    pub fn text(self: *const Reason) []const u8 {
        return self.buf[0..self.len];
    }

    /// Append `fmt` formatted with `args` (cut at the buffer's end).
    pub fn add(self: *Reason, comptime fmt: []const u8, args: anytype) void {
        const out = std.fmt.bufPrint(self.buf[self.len..], fmt, args) catch return;
        self.len += out.len;
    }

    /// Append a size: at most two decimals, trailing zeros dropped (10 → "10").
    pub fn gb(self: *Reason, x: f64) void {
        if (std.math.isNan(x)) return self.add("NaN", .{});
        if (std.math.isInf(x)) return self.add("{s}", .{if (x > 0) "inf" else "-inf"});
        const cents: u64 = @intFromFloat(@round(@abs(x) * 100.0));
        if (x < 0 and cents != 0) self.add("-", .{});
        self.add("{d}", .{cents / 100});
        const frac = cents % 100;
        if (frac == 0) return;
        if (frac % 10 == 0) self.add(".{d}", .{frac / 10}) else self.add(".{d:0>2}", .{frac});
    }

    /// Append a ratio: like `gb`, with at least one decimal (20 → "20.0").
    pub fn ratio(self: *Reason, x: f64) void {
        const start = self.len;
        self.gb(x);
        if (std.math.isFinite(x) and std.mem.indexOfScalar(u8, self.buf[start..self.len], '.') == null) {
            self.add(".0", .{});
        }
    }
};
