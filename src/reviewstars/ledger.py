"""Where a run's wall time went: one ledger per training run, every second in one entry.

A budget is only as good as the share of it spent learning. The ledger splits the wall
time of a run into named entries (loading the data, loading the model, tokenizing, the
speed probe, optimizer steps, waiting for the data loader, dev evaluations, checkpoints,
calibration, saving, scoring) and puts what no entry claimed under "other", so that the
entries always add up to the wall time: one run shows where a budget went.

Time is exclusive: while an inner entry is open the outer one does not count, so a dev
evaluation inside the training loop is not also counted as training. Code anywhere
below the job reads the run's ledger with `spent(entry)`; with no run open it records
nothing. The output's guard opens the ledger before the run (`open_ledger_ahead`): its
checks, its lock and the hashing of the data files are the run's seconds too, and the
run takes that ledger over instead of starting its own clock after them.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

#: A resumed run's earlier processes, up to the checkpoint it went on from: their seconds count in its wall time.
BEFORE_RESUME = "before --resume"
#: The Trainer's arguments (which open the device: a CUDA context takes seconds) and the Trainer itself.
STARTING_THE_TRAINER = "starting the trainer"
#: The entries, in the order a training run meets them (a ledger shows them in this order).
ENTRIES = (
    "checking the output", "hashing the data files", BEFORE_RESUME, "loading data", "loading libraries", "fitting the model",
    "loading the model", "learning the vocabulary", "tokenizing", STARTING_THE_TRAINER, "probing speed and batch size",
    "optimizer steps", "waiting for data", "dev evaluations", "checkpoints", "trainer bookkeeping", "calibration",
    "scoring held-out reviews", "saving the model",
)
OTHER = "other"


class TimeLedger:
    """Seconds per entry since the ledger opened; entries nest, each second counts once."""

    def __init__(self) -> None:
        self.opened = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self._open: list[tuple[str, float]] = []  # (entry, when it last started counting)
        self.elsewhere = 0.0  # seconds spent before this ledger opened (`add`): part of the wall time too
        self.awaits_its_run = False  # opened ahead of a run (`open_ledger_ahead`) that has not taken it over yet

    def begin(self, entry: str) -> None:
        now = time.perf_counter()
        if self._open:  # the enclosing entry pauses
            outer, since = self._open[-1]
            self.seconds[outer] = self.seconds.get(outer, 0.0) + now - since
        self._open.append((entry, now))

    def end(self, entry: str) -> None:
        """Close `entry` (and anything opened inside it that was left open)."""
        now = time.perf_counter()
        while self._open:
            name, since = self._open.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + now - since
            if name == entry:
                break
        if self._open:  # the enclosing entry counts again
            self._open[-1] = (self._open[-1][0], now)

    def add(self, entry: str, seconds: float) -> None:
        """Seconds spent outside this process (a resumed run's earlier ones), under `entry` and in the wall time."""
        self.seconds[entry] = self.seconds.get(entry, 0.0) + seconds
        self.elsewhere += seconds

    @contextmanager
    def spent(self, entry: str) -> Iterator[None]:
        self.begin(entry)
        try:
            yield
        finally:
            self.end(entry)

    def record(self) -> dict[str, float]:
        """Seconds per entry (known entries first), `other`, and `wall`: the entries and other add up to wall."""
        now = time.perf_counter()
        wall = round(now - self.opened + self.elsewhere, 3)
        counted = dict(self.seconds)
        for name, since in self._open:  # still open (a ledger read mid-run)
            counted[name] = counted.get(name, 0.0) + now - since
        ordered = {name: round(counted[name], 3) for name in ENTRIES if counted.get(name)}
        ordered.update({name: round(value, 3) for name, value in counted.items() if name not in ordered and value})
        ordered[OTHER] = round(max(wall - sum(ordered.values()), 0.0), 3)
        return {**ordered, "wall": wall}


_current: list[TimeLedger] = []


@contextmanager
def open_ledger() -> Iterator[TimeLedger]:
    """The ledger of the run in this block; `spent` anywhere below records into it. A ledger
    opened ahead of this run (`open_ledger_ahead`) is taken over, its seconds so far included."""
    ahead = current()
    if ahead is not None and ahead.awaits_its_run:
        ahead.awaits_its_run = False  # (a run nested inside this one, an ensemble's member, opens its own)
        yield ahead
        return
    ledger = TimeLedger()
    _current.append(ledger)
    try:
        yield ledger
    finally:
        _current.remove(ledger)


@contextmanager
def open_ledger_ahead() -> Iterator[TimeLedger]:
    """A ledger for the run that this block goes on to open: what comes first (the output's
    checks and lock) counts in that run's wall time, not outside it."""
    with open_ledger() as ledger:
        ledger.awaits_its_run = True
        yield ledger


def current() -> TimeLedger | None:
    return _current[-1] if _current else None


@contextmanager
def spent(entry: str) -> Iterator[None]:
    """Count the block's time under `entry` in the open run's ledger (nothing without one)."""
    ledger = current()
    if ledger is None:
        yield
        return
    with ledger.spent(entry):
        yield


def add_spent(entry: str, seconds: float) -> None:
    """Count `seconds` spent outside this process under `entry` in the open run's ledger (nothing without one)."""
    ledger = current()
    if ledger is not None:
        ledger.add(entry, seconds)


def share(record: dict[str, float], entry: str) -> float | None:
    """`entry`'s share of the wall time in a ledger's record."""
    wall = record.get("wall") or 0.0
    return round(record.get(entry, 0.0) / wall, 4) if wall > 0 else None


def ledger_line(record: dict[str, float], top: int = 5) -> str:
    """The largest entries in one line: 'optimizer steps 162.1 s (90%), dev evaluations 8.2 s (5%), ...'."""
    wall = record.get("wall") or 0.0
    entries = sorted(((k, v) for k, v in record.items() if k != "wall" and v > 0), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{name} {seconds:.1f} s ({seconds / wall:.0%})" for name, seconds in entries) if wall > 0 else ""
