"""The plugin's copy of the scheduler's pools, kept current by the host's deltas.

The host owns the pool list and sends changes (the WIT ``pool-sync`` interface): a full
sync (``clear`` then one ``upsert`` per pool) when the instance is created, then only what
changed. A request then names its candidate pools by id, and the plugin looks them up
here. Ids are small and dense (the host reuses freed ids), so a list indexed by id is the
whole data structure.

Copy this file as it is into your own plugin.
"""

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
        """Apply the host's deltas, in order."""
        for delta in deltas:
            if isinstance(delta, PoolDelta_Upsert):
                pool = delta.value
                if pool.id >= len(self.slots):
                    self.slots.extend([None] * (pool.id + 1 - len(self.slots)))
                if self.slots[pool.id] is None:
                    self.count += 1
                self.slots[pool.id] = pool
            elif isinstance(delta, PoolDelta_Consume):
                # A placement used capacity. A pool we do not hold is ignored (the host
                # checks pool_count and resynchronises if the tables ever drift apart).
                c = delta.value
                pool = self.get(c.id)
                if pool is not None:
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
            else:
                raise ValueError(f"unknown pool delta {delta!r}")

    def get(self, pool_id: int) -> Optional[Pool]:
        """The pool with this id, or None."""
        if pool_id < len(self.slots):
            return self.slots[pool_id]
        return None

    def __len__(self) -> int:
        return self.count
