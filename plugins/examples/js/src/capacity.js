// What Kiln's CapacityFilter and CapacityWeigher share: the requested size, Cinder's
// thin/thick switch, the reserved share, and numbers formatted for reject reasons.

// The GiB a request needs: for an extend only the growth (0 is Cinder's "manage" case).
export function requestedGb(request) {
  if (request.operation === "extend" && request.newSizeGb != null) {
    return Math.max(0, request.newSizeGb - request.sizeGb);
  }
  return request.sizeGb;
}

// Thin provisioning applies unless the volume type says `provisioning:type` = `thick`.
export function thinRequested(request) {
  const type = request.volumeType;
  if (type == null) return true;
  for (const [key, value] of type.extraSpecs) {
    if (key === "provisioning:type") return value !== "thick";
  }
  return true;
}

// Cinder keeps floor(total × reserved%) of a pool free.
export function reservedGb(total, reservedPercentage) {
  return Math.floor((total * reservedPercentage) / 100);
}

// A size in a reason: at most two decimals, trailing zeros dropped (10 → "10").
export function gb(x) {
  if (!Number.isFinite(x)) return String(x);
  const cents = Math.round(Math.abs(x) * 100);
  const sign = x < 0 && cents !== 0 ? "-" : "";
  const whole = Math.floor(cents / 100);
  const frac = cents % 100;
  if (frac === 0) return `${sign}${whole}`;
  return `${sign}${whole}.${String(frac).padStart(2, "0").replace(/0$/, "")}`;
}

// A ratio in a reason: like `gb`, with at least one decimal (20 → "20.0").
export function ratio(x) {
  const s = gb(x);
  return Number.isFinite(x) && !s.includes(".") ? `${s}.0` : s;
}
