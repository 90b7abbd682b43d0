"""Micro-batching with a bounded queue.

Many clients each sending a few texts would make the model run on tiny batches; a
transformer is several times faster per text on a batch. So every request drops its
texts into one queue, and a single worker takes whatever has gathered (up to
`max_batch` texts), runs the model once, and hands each request its own rows back. One
worker also means the model is never called from two threads at once.

The worker never waits for company while the model is idle (continuous batching, as
Triton's dynamic batcher does by default): a lone request runs at once, and while the
model works on one batch the next one gathers by itself. Waiting `max_wait_ms` for more
requests only delays every batch: with 32 clients each waiting for its answer, a 5 ms
wait capped the server at 32 requests per (5 ms + a model call), 1,720 requests/s for
the linear model where it now answers many more.

The queue holds at most `max_queue` texts and a request waits in it at most
`max_queue_wait_s`: past either, the client hears "busy, retry" at once instead of
the server growing memory and latency without bound. A request whose client has gone, or
that is still queued when the server stops, leaves the queue at once (`watch`): a probe's
abandoned requests each cost the model a batch, and kept a live one waiting 9 s.

The model is never called on more than `max_batch` texts (what the option promises a GPU's
memory), and a larger request takes its turn like any other: each model call takes a part
of it, and the rest waits behind the requests queued meanwhile. Rated whole, one /explain
(256 texts) held a CPU server's model for 23 s while every other client got 503s.

A model that holds the GIL throughout (the linear one) rates a small batch on the event
loop itself: a thread would only add the hand-over. A batch of many characters goes to the
model's thread all the same, so that the loop, which switches to it every few milliseconds,
still answers /health and accepts connections (one /explain of a 20 KB review froze the
loop for 1.6 s; a dozen, for 23 s).
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .metrics import ServerMetrics


#: The ASGI scope extension (`scope["extensions"][WATCH]`, a `Watch`) through which the server
#: tells a request that its client went away or that it is stopping (`connections.py`).
WATCH = "reviewstars.watch"


class Watch:
    """A request's news from its connection, told once: its client went away, or the server is
    stopping. A hook added after the news (the body was still being parsed) is called at once."""

    __slots__ = ("hooks", "stopping")

    def __init__(self):
        self.hooks: list = []
        self.stopping: bool | None = None  # None: no news yet

    def add(self, hook) -> None:
        if self.stopping is None:
            self.hooks.append(hook)
        else:
            hook(self.stopping)

    def tell(self, stopping: bool) -> None:
        if self.stopping is None:
            self.stopping = stopping
            hooks, self.hooks = self.hooks, []
            for hook in hooks:
                hook(stopping)


class Overloaded(Exception):
    """The queue cannot take this request now; worth retrying later."""


class ClientGone(Exception):
    """The request's client closed its connection before its answer: nobody to answer."""


#: A batch of at most this many characters is rated on the event loop when the model holds
#: the GIL anyway (the linear model: a few milliseconds); a larger one on the model's thread.
INLINE_MAX_CHARS = 65_536


@dataclass(eq=False)
class Job:
    texts: list[str]
    future: asyncio.Future
    taken: bool = field(default=False)  # by the worker: from then on the request waits for its rows
    timer: asyncio.TimerHandle | None = None  # refuses the job if it is still queued at `max_queue_wait_s`
    sent: int = 0  # texts handed to the model so far: its next part starts here
    rows: list[np.ndarray] = field(default_factory=list)  # the rated parts, in order

    @property
    def left(self) -> int:
        return len(self.texts) - self.sent


@dataclass(frozen=True)
class Part:
    """Texts [start, stop) of a job, in one model call."""

    job: Job
    start: int
    stop: int

    @property
    def texts(self) -> list[str]:
        return self.job.texts[self.start : self.stop]


class MicroBatcher:
    """Gathers texts from concurrent requests into batched calls of `predict_proba`."""

    def __init__(self, predict_proba: Callable[[Sequence[str]], np.ndarray], metrics: ServerMetrics, max_batch: int = 64,
                 max_wait_ms: float = 0.0, max_queue: int = 1024, max_queue_wait_s: float = 10.0, inline: bool = False):
        self.predict_proba, self.metrics, self.inline = predict_proba, metrics, inline
        self.max_batch, self.max_wait = max(1, max_batch), max_wait_ms / 1000
        self.max_queue, self.max_queue_wait = max_queue, max_queue_wait_s
        self.pending: deque[Job] = deque()
        self.queued_texts = 0
        self.arrived: asyncio.Event | None = None
        self.worker: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reviewstars-model")

    async def start(self) -> None:
        self.arrived = asyncio.Event()
        self.worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, texts: list[str], watch: Watch | None = None) -> np.ndarray:
        """The rows of `texts`; raises `Overloaded` when the queue is full or the wait too long.
        `watch`: the request's news from its connection (`WATCH`): its client went away (raises
        `ClientGone`) or the server is stopping (`Overloaded`), while it is still queued."""
        # An empty queue takes any request, so one larger than `max_queue` is slow, never refused forever.
        if self.queued_texts and self.queued_texts + len(texts) > self.max_queue:
            raise Overloaded(f"the queue holds {self.queued_texts:,} texts (limit {self.max_queue:,}); retry shortly")
        loop = asyncio.get_running_loop()
        job = Job(texts, loop.create_future())
        job.timer = loop.call_later(self.max_queue_wait, self._expire, job)  # a timer, not a task per request
        self.pending.append(job)
        self.queued_texts += len(texts)
        if watch is not None:
            watch.add(lambda stopping: self._drop(job, stopping))
        self.arrived.set()
        try:
            return await job.future
        finally:
            job.timer.cancel()
            self._unqueue(job)  # refused in the queue, its client went away, or a part of it failed

    def _unqueue(self, job: Job) -> None:
        if job in self.pending:  # (by identity)
            self.pending.remove(job)
            self.queued_texts -= job.left

    def _expire(self, job: Job) -> None:
        """Still queued after `max_queue_wait_s`: refused (a job the model has taken waits on for its rows)."""
        if not job.taken and not job.future.done():
            job.future.set_exception(Overloaded(f"waited {self.max_queue_wait:g} s in the queue without reaching the model; "
                                                "retry shortly"))

    def _drop(self, job: Job, stopping: bool) -> None:
        """Its client went away, or the server is stopping: out of the queue now, unless the model
        has taken it (begun on it). A large request whose client went is not rated further; one
        the model has begun is answered before the server stops, as any request at the model."""
        if (not job.taken or (job.left and not stopping)) and not job.future.done():
            job.future.set_exception(Overloaded("the server is stopping; retry shortly") if stopping else ClientGone())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_for_work(deadline=None)
            parts: list[Part] = []
            size, deadline = 0, loop.time() + self.max_wait
            while size < self.max_batch and (self.pending or (self.max_wait > 0 and await self._wait_for_work(deadline))):
                if parts and self.pending[0].left > self.max_batch - size:
                    break  # the next request waits whole for the next call: only one that starts a call is cut
                part = self._take(self.max_batch - size)
                if part is not None:
                    parts.append(part)
                    size += part.stop - part.start
            if not parts:
                continue
            await self._answer(parts)
            for job in (part.job for part in parts if part.job.left):  # the rest of a request queues again,
                if job.future.done():                                   # behind those that came meanwhile
                    self.queued_texts -= job.left  # failed, or its client went: not rated
                else:
                    self.pending.append(job)

    def _take(self, room: int) -> Part | None:
        """The next queued request's next part, of at most `room` texts (out of the queue until
        that part is rated). None for a request dropped (its client went) in this very turn."""
        job = self.pending.popleft()
        if job.future.done():
            self.queued_texts -= job.left
            return None
        if not job.taken:
            job.taken = True
            job.timer.cancel()
        part = Part(job, job.sent, job.sent + min(room, job.left))
        self.queued_texts -= part.stop - part.start
        job.sent = part.stop
        return part

    async def _wait_for_work(self, deadline: float | None) -> bool:
        """True once a job is pending; False if `deadline` (loop time) passes first."""
        loop = asyncio.get_running_loop()
        while not self.pending:
            self.arrived.clear()
            timeout = None if deadline is None else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                return False
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout)
            except asyncio.TimeoutError:
                return False
        return True

    async def _answer(self, parts: list[Part]) -> None:
        """One model call for all `parts`; if it raises, each part alone, so one bad request fails only itself."""
        texts = [text for part in parts for text in part.texts]
        try:
            if self.inline and sum(map(len, texts)) <= INLINE_MAX_CHARS:
                proba = self.predict_proba(texts)
                await asyncio.sleep(0)  # the loop's other work (accepting, /health) between two batches
            else:
                proba = await asyncio.get_running_loop().run_in_executor(self.executor, self.predict_proba, texts)
        except Exception as error:
            if len(parts) == 1:
                job = parts[0].job
                if not job.future.done():  # its client may have gone
                    job.future.set_exception(error)
            else:
                for part in parts:
                    if not part.job.future.done():
                        await self._answer([part])
            return
        self.metrics.observe_batch(len(texts))
        at = 0
        for part in parts:
            job = part.job
            job.rows.append(proba[at : at + part.stop - part.start])
            at += part.stop - part.start
            if part.stop == len(job.texts) and not job.future.done():  # its client may have gone
                job.future.set_result(job.rows[0] if len(job.rows) == 1 else np.concatenate(job.rows))
