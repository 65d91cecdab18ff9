"""Kiln's CapacityFilter in Python: removes pools that cannot hold the requested size, with
Cinder's semantics (reserved %, thin/thick provisioning, max over-subscription ratio,
infinite/unknown capacities, extend needing only the growth). Answers exactly like the
Rust default in plugins/default/src/capacity_filter.rs."""

from typing import Callable, List, Optional, TypeVar

import wit_world
from wit_world import exports
from wit_world.imports.types import (
    Capacity_Gb,
    Capacity_Infinite,
    Pool,
    PoolDelta,
    Request,
    Verdict,
    Verdict_Pass,
    Verdict_Reject,
)

from capacity import gb, ratio, requested_gb, reserved_gb, thin_requested
from pool_table import PoolTable

NAME = "CapacityFilter"
POOLS = PoolTable()
T = TypeVar("T")


def rejection(pool: Pool, size: int, thin: bool) -> Optional[str]:
    """Why `pool` cannot take `size` GiB, or None when it can."""
    if size == 0:
        return None  # Cinder's "manage existing" case
    if not isinstance(pool.free_capacity_gb, Capacity_Gb):
        return None  # infinite / unknown free space always fits
    pct = pool.reserved_percentage
    if not isinstance(pool.total_capacity_gb, Capacity_Gb):
        if pct == 0:
            return None
        what = "infinite" if isinstance(pool.total_capacity_gb, Capacity_Infinite) else "unknown"
        return f"total capacity is {what}, cannot reserve {pct}%"
    total = pool.total_capacity_gb.value
    if total <= 0:
        return f"total capacity is {gb(total)} GB"
    usable = pool.free_capacity_gb.value - reserved_gb(total, pct)
    max_ratio = pool.max_over_subscription_ratio

    if thin and pool.thin_provisioning_support:
        if not max_ratio >= 1.0:
            return f"max over-subscription ratio {ratio(max_ratio)} is below 1.0"
        provisioned = (pool.provisioned_capacity_gb + size) / total
        if provisioned > max_ratio:
            return (
                f"provisioned ratio {ratio(provisioned)} would exceed "
                f"max over-subscription ratio {ratio(max_ratio)}"
            )
        virtual_free = usable * max_ratio
        if virtual_free >= size:
            return None
        reserved = f", reserved {pct}%" if pct > 0 else ""
        return (
            f"needs {gb(size)} GB, {gb(virtual_free)} GB virtual free "
            f"({gb(usable)} GB free x ratio {ratio(max_ratio)}{reserved})"
        )
    if usable < size:
        reserved = f" (reserved {pct}%)" if pct > 0 else ""
        return f"needs {gb(size)} GB, {gb(usable)} GB free{reserved}"
    return None


def per_candidate(
    request: Request, candidates: List[int], answer: Callable[[Optional[str]], T]
) -> List[T]:
    """One answer per candidate id, in order. A candidate we do not hold is rejected."""
    size = requested_gb(request)
    thin = thin_requested(request)
    out = []
    for pool_id in candidates:
        pool = POOLS.get(pool_id)
        if pool is None:
            out.append(answer(f"pool {pool_id} is unknown to {NAME}"))
        else:
            out.append(answer(rejection(pool, size, thin)))
    return out


class PoolSync(exports.PoolSync):
    def apply(self, deltas: List[PoolDelta]) -> None:
        POOLS.apply(deltas)

    def pool_count(self) -> int:
        return len(POOLS)


class WitWorld(wit_world.WitWorld):
    def name(self) -> str:
        return NAME

    # `accept` in the WIT (see build.sh for why the Python name differs).
    def kiln_accept(self, request: Request, candidates: List[int]) -> List[bool]:
        return per_candidate(request, candidates, lambda why: why is None)

    def filter(self, request: Request, candidates: List[int]) -> List[Verdict]:
        return per_candidate(
            request,
            candidates,
            lambda why: Verdict_Pass() if why is None else Verdict_Reject(why),
        )
