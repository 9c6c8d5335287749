"""The run's trial order: counterbalanced, seeded, stored once when the run is created.

Slots (object, trial_index) run in rounds: round k holds every object's k-th placement in a
seeded shuffled order, so each object's placements are spread over the day. Within a slot every
method runs back-to-back on the same placement, in an order taken from a Williams design
(balanced Latin square) over a seeded permutation of the methods: each method holds each
position equally often and, over complete blocks, follows each other method equally often.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: pydantic stays out of readers such as `benchbot report`
    from benchbot.config.protocol import LoadedProtocol


@dataclass(frozen=True)
class TrialSpec:
    """One (object, trial_index, method) of a run, in the order it is run."""

    trial_id: str  # f"{object_id}/{trial_index}/{method}", unique within a run
    seq: int  # 0-based position in the run's order
    method: str
    object_id: str
    trial_index: int  # 1..trials_per_object
    placement_id: str  # f"{object_id}/{trial_index}", shared by every method of the slot
    placement_seed: int  # from (run seed, placement_id); same for every method of the slot


def placement_seed(seed: int, placement_id: str) -> int:
    """A stable 32-bit seed for one placement (sha256, not Python's salted hash())."""
    digest = hashlib.sha256(f"benchbot-placement:{seed}:{placement_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def williams_orders(n: int) -> list[list[int]]:
    """Orders of range(n) forming a Williams design: n rows for even n, 2n for odd n.

    The first n rows are a Latin square (and so are the last n for odd n), so any prefix of
    whole squares plus part of one keeps position counts within one of each other.
    """
    if n == 1:
        return [[0]]
    base = [0]
    lo, hi = 1, n - 1
    while len(base) < n:  # 0, 1, n-1, 2, n-2, ...
        base.append(lo)
        lo += 1
        if len(base) < n:
            base.append(hi)
            hi -= 1
    square = [[(b + i) % n for b in base] for i in range(n)]
    if n % 2 == 0:
        return square
    return square + [list(reversed(row)) for row in square]


def _slot_order(objects: list[str], trials: int, rng: random.Random) -> list[tuple[str, int]]:
    """Rounds over trial_index; objects shuffled per round, never the same object twice in a row."""
    slots: list[tuple[str, int]] = []
    for trial_index in range(1, trials + 1):
        order = list(objects)
        rng.shuffle(order)
        if slots and len(order) > 1 and order[0] == slots[-1][0]:
            swap = rng.randrange(1, len(order))
            order[0], order[swap] = order[swap], order[0]
        slots.extend((obj, trial_index) for obj in order)
    return slots


def _method_orders(methods: list[str], n_slots: int, rng: random.Random) -> list[list[str]]:
    """One method order per slot: blocks of the Williams design, rows shuffled within each square."""
    perm = list(methods)
    rng.shuffle(perm)
    rows = williams_orders(len(perm))
    squares = [rows[i:i + len(perm)] for i in range(0, len(rows), len(perm))]
    orders: list[list[str]] = []
    while len(orders) < n_slots:
        block = [list(sq) for sq in squares]
        rng.shuffle(block)
        for sq in block:
            rng.shuffle(sq)
            orders.extend([perm[i] for i in row] for row in sq)
    return orders[:n_slots]


def make_schedule(protocol: LoadedProtocol, seed: int | None = None) -> list[TrialSpec]:
    """Every (object, trial_index, method) exactly once, counterbalanced; deterministic per seed."""
    p = protocol.protocol
    seed = p.seed if seed is None else int(seed)
    rng = random.Random(f"benchbot-schedule:{seed}")  # local generator: str seeds hash stably
    slots = _slot_order(list(p.objects), p.trials_per_object, rng)
    orders = _method_orders(list(p.methods), len(slots), rng)
    specs: list[TrialSpec] = []
    for (obj, k), methods in zip(slots, orders, strict=True):
        pid = f"{obj}/{k}"
        pseed = placement_seed(seed, pid)
        for method in methods:
            specs.append(TrialSpec(f"{obj}/{k}/{method}", len(specs), method, obj, k, pid, pseed))
    return specs
