"""Kiln's CapacityWeigher in Python: the raw weight is the pool's free capacity, or with thin
provisioning its virtual free capacity (total x max over-subscription ratio - provisioned -
reserved), as Cinder's weights/capacity.py. The host normalises the weights and applies the
multiplier. Answers exactly like plugins/default's Rust weigher."""

import math
from typing import List

import wit_world
from wit_world import exports
from wit_world.imports import config
from wit_world.imports.types import Capacity_Gb, Pool, PoolDelta, Request

from capacity import reserved_gb, thin_requested
from pool_table import PoolTable

NAME = "CapacityWeigher"
POOLS = PoolTable()


def multiplier() -> float:
    """Cinder's capacity_weight_multiplier (default 1.0). It decides the weight of a pool
    reporting infinite or unknown capacity, so it must equal the multiplier the host applies."""
    raw = config.get("capacity_weight_multiplier")
    try:
        value = float(raw) if raw is not None else 1.0
    except ValueError:
        return 1.0
    return 1.0 if math.isnan(value) else value


def weight(pool: Pool, thin: bool, mult: float) -> float:
    free, total = pool.free_capacity_gb, pool.total_capacity_gb
    if not isinstance(free, Capacity_Gb) or not isinstance(total, Capacity_Gb):
        # Infinite or unknown: last place whatever the multiplier's sign.
        return -1.0 if mult > 0 else math.inf
    reserved = reserved_gb(total.value, pool.reserved_percentage)
    if thin and pool.thin_provisioning_support:
        w = total.value * pool.max_over_subscription_ratio - pool.provisioned_capacity_gb - reserved
    else:
        w = free.value - reserved
    return 0.0 if math.isnan(w) else w  # the host refuses NaN


class PoolSync(exports.PoolSync):
    def apply(self, deltas: List[PoolDelta]) -> None:
        POOLS.apply(deltas)

    def pool_count(self) -> int:
        return len(POOLS)


class WitWorld(wit_world.WitWorld):
    def name(self) -> str:
        return NAME

    def weigh(self, request: Request, candidates: List[int]) -> List[float]:
        thin = thin_requested(request)
        mult = multiplier()
        out = []
        for pool_id in candidates:
            pool = POOLS.get(pool_id)
            out.append(0.0 if pool is None else weight(pool, thin, mult))
        return out
