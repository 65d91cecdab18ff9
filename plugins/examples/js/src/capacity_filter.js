// Kiln's CapacityFilter in JavaScript: removes pools that cannot hold the requested size,
// with Cinder's semantics (reserved %, thin/thick provisioning, max over-subscription
// ratio, infinite/unknown capacities, extend needing only the growth). Answers exactly
// like the Rust default in plugins/default/src/capacity_filter.rs.

import { PoolTable, poolSyncOf } from "./pool_table.js";
import { requestedGb, thinRequested, reservedGb, gb, ratio } from "./capacity.js";

const NAME = "CapacityFilter";
const pools = new PoolTable();

// Why `pool` cannot take `size` GiB, or null when it can.
function rejection(pool, size, thin) {
  if (size === 0) return null; // Cinder's "manage existing" case
  const free = pool.freeCapacityGb;
  if (free.tag !== "gb") return null; // infinite / unknown free space always fits
  const pct = pool.reservedPercentage;
  const total = pool.totalCapacityGb;
  if (total.tag !== "gb") {
    return pct === 0 ? null : `total capacity is ${total.tag}, cannot reserve ${pct}%`;
  }
  if (total.val <= 0) return `total capacity is ${gb(total.val)} GB`;
  const usable = free.val - reservedGb(total.val, pct);
  const max = pool.maxOverSubscriptionRatio;

  if (thin && pool.thinProvisioningSupport) {
    if (!(max >= 1)) return `max over-subscription ratio ${ratio(max)} is below 1.0`;
    const provisioned = (pool.provisionedCapacityGb + size) / total.val;
    if (provisioned > max) {
      return `provisioned ratio ${ratio(provisioned)} would exceed max over-subscription ratio ${ratio(max)}`;
    }
    const virtualFree = usable * max;
    if (virtualFree >= size) return null;
    const reserved = pct > 0 ? `, reserved ${pct}%` : "";
    return `needs ${gb(size)} GB, ${gb(virtualFree)} GB virtual free (${gb(usable)} GB free x ratio ${ratio(max)}${reserved})`;
  }
  if (usable < size) {
    const reserved = pct > 0 ? ` (reserved ${pct}%)` : "";
    return `needs ${gb(size)} GB, ${gb(usable)} GB free${reserved}`;
  }
  return null;
}

// One answer per candidate id, in order; `answer(reason)` turns a rejection (or null)
// into what the caller returns. A candidate we do not hold is rejected.
function perCandidate(request, candidates, answer) {
  const size = requestedGb(request);
  const thin = thinRequested(request);
  return candidates.map((id) => {
    const pool = pools.get(id);
    if (pool === undefined) return answer(`pool ${id} is unknown to ${NAME}`);
    return answer(rejection(pool, size, thin));
  });
}

export const poolSync = poolSyncOf(pools);

export function name() {
  return NAME;
}

export function accept(request, candidates) {
  return perCandidate(request, candidates, (why) => why === null);
}

export function filter(request, candidates) {
  return perCandidate(request, candidates, (why) =>
    why === null ? { tag: "pass" } : { tag: "reject", val: why },
  );
}
