"""What Kiln's CapacityFilter and CapacityWeigher share: the requested size, Cinder's
thin/thick switch, the reserved share, and numbers formatted for reject reasons."""

import math

from wit_world.imports.types import Operation, Request


def requested_gb(request: Request) -> int:
    """The GiB a request needs: for an extend only the growth (0: Cinder's "manage")."""
    if request.operation == Operation.EXTEND and request.new_size_gb is not None:
        return max(0, request.new_size_gb - request.size_gb)
    return request.size_gb


def thin_requested(request: Request) -> bool:
    """Thin provisioning applies unless the volume type says provisioning:type = thick."""
    if request.volume_type is None:
        return True
    for key, value in request.volume_type.extra_specs:
        if key == "provisioning:type":
            return value != "thick"
    return True


def reserved_gb(total: float, reserved_percentage: int) -> float:
    """Cinder keeps floor(total x reserved%) of a pool free."""
    share = total * reserved_percentage / 100.0
    return float(math.floor(share)) if math.isfinite(share) else share


def gb(x: float) -> str:
    """A size in a reason: at most two decimals, trailing zeros dropped (10 -> "10")."""
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    cents = math.floor(abs(x) * 100 + 0.5)
    sign = "-" if x < 0 and cents else ""
    whole, frac = divmod(cents, 100)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:02d}".rstrip("0")


def ratio(x: float) -> str:
    """A ratio in a reason: like gb, with at least one decimal (20 -> "20.0")."""
    s = gb(x)
    return s + ".0" if math.isfinite(x) and "." not in s else s
