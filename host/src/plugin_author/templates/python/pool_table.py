"""The plugin's copy of the scheduler's pools, kept current by the host through the WIT
``pool-sync`` interface: a full sync (``clear``, then one ``upsert`` per pool) when the
instance is created, then only what changed (``upsert`` after a capability report,
``consume`` after a placement, ``remove``). A request names its candidates by id."""

from typing import List, Optional

from wit_world.imports.types import (
    Pool,
    PoolDelta,
    PoolDelta_Clear,
    PoolDelta_Consume,
    PoolDelta_Remove,
    PoolDelta_Upsert,
)


class PoolTable:
    def __init__(self) -> None:
        self.slots: List[Optional[Pool]] = []  # slots[id] = the pool, or None
        self.count = 0

    def apply(self, deltas: List[PoolDelta]) -> None:
        for delta in deltas:
            if isinstance(delta, PoolDelta_Upsert):
                pool = delta.value
                if pool.id >= len(self.slots):
                    self.slots.extend([None] * (pool.id + 1 - len(self.slots)))
                if self.slots[pool.id] is None:
                    self.count += 1
                self.slots[pool.id] = pool
            elif isinstance(delta, PoolDelta_Consume):
                c = delta.value
                pool = self.get(c.id)
                if pool is not None:  # unknown: ignored (the host checks pool-count)
                    pool.free_capacity_gb = c.free_capacity_gb
                    pool.allocated_capacity_gb = c.allocated_capacity_gb
                    pool.provisioned_capacity_gb = c.provisioned_capacity_gb
                    pool.total_volumes = c.total_volumes
            elif isinstance(delta, PoolDelta_Remove):
                if self.get(delta.value) is not None:
                    self.slots[delta.value] = None
                    self.count -= 1
            elif isinstance(delta, PoolDelta_Clear):
                self.slots = []
                self.count = 0

    def get(self, pool_id: int) -> Optional[Pool]:
        return self.slots[pool_id] if pool_id < len(self.slots) else None

    def __len__(self) -> int:
        return self.count
