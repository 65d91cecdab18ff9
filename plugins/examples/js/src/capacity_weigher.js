// Kiln's CapacityWeigher in JavaScript: the raw weight is the pool's free capacity, or with
// thin provisioning its virtual free capacity (total × max over-subscription ratio −
// provisioned − reserved), as Cinder's weights/capacity.py. The host normalises the
// weights and applies the multiplier. Answers exactly like plugins/default's Rust weigher.

import config from "kiln:plugin/config@0.1.0";
import { PoolTable, poolSyncOf } from "./pool_table.js";
import { thinRequested, reservedGb } from "./capacity.js";

const NAME = "CapacityWeigher";
const pools = new PoolTable();

// Cinder's `capacity_weight_multiplier` (default 1.0): it decides the weight of a pool
// reporting infinite or unknown capacity, so it must equal the multiplier the host applies.
function multiplier() {
  const raw = config.get("capacity_weight_multiplier");
  const value = raw == null || raw.trim() === "" ? NaN : Number(raw);
  return Number.isNaN(value) ? 1.0 : value;
}

function weight(pool, thin, mult) {
  const free = pool.freeCapacityGb;
  const total = pool.totalCapacityGb;
  if (free.tag !== "gb" || total.tag !== "gb") {
    // Infinite or unknown: last place whatever the multiplier's sign.
    return mult > 0 ? -1.0 : Infinity;
  }
  const reserved = reservedGb(total.val, pool.reservedPercentage);
  const w =
    thin && pool.thinProvisioningSupport
      ? total.val * pool.maxOverSubscriptionRatio - pool.provisionedCapacityGb - reserved
      : free.val - reserved;
  return Number.isNaN(w) ? 0.0 : w; // the host refuses NaN
}

export const poolSync = poolSyncOf(pools);

export function name() {
  return NAME;
}

export function weigh(request, candidates) {
  const thin = thinRequested(request);
  const mult = multiplier();
  return candidates.map((id) => {
    const pool = pools.get(id);
    return pool === undefined ? 0.0 : weight(pool, thin, mult);
  });
}
