"""The worker behind ``manage.py process_attachments``.

It only orchestrates: one claimer (the calling thread) takes due jobs from
``queue`` while it has a free slot, runs them (``processing.run``) inline or on
``concurrency`` threads, keeps their locks fresh, puts back jobs of dead
workers, and stops cleanly on SIGINT/SIGTERM. Threads, not processes: Pillow
releases the GIL while decoding, resampling and encoding, so image jobs run in
parallel, and threads need neither a second Django start-up nor a copy of
every job's data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as stdlib_queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, cast

from django.db import DatabaseError, connections, router

from . import housekeeping, processing, queue, stats
from .conf import conf
from .heartbeat import Heartbeat
from .models import Job
from .routing import QueueOrder
from .wakeup import Waiter, waiter_for

logger = logging.getLogger("attachments")

_STATS_EVERY = 60.0  # seconds between progress lines of a long-running worker
# The longest the main thread blocks in one wait while stopping. A signal's
# Python handler runs in the main thread between bytecodes: one that lands just
# before a wait (or on another thread) runs only when that wait returns, and a
# second Ctrl-C must not go unheard for the whole shutdown timeout.
_SIGNAL_LATENCY = 0.25


@dataclass(frozen=True)
class Tally:
    """What a worker did over a stretch of time: its counts, and how long it had work."""

    processed: int = 0
    failed: int = 0
    busy: float = 0.0  # seconds with at least one job running
    elapsed: float = 0.0

    def __sub__(self, earlier: Tally) -> Tally:
        return Tally(
            self.processed - earlier.processed,
            self.failed - earlier.failed,
            self.busy - earlier.busy,
            self.elapsed - earlier.elapsed,
        )

    @property
    def rate(self) -> float:
        """Jobs per second of busy time: an idle hour does not dilute it."""
        return self.processed / self.busy if self.busy > 0 else 0.0

    def __str__(self) -> str:
        noun = "job" if self.processed == 1 else "jobs"
        text = f"{self.processed} {noun} processed, {self.failed} failed"
        if self.processed:
            text += f"; {self.rate:.1f} j/s over {duration(self.busy)} busy"
        return f"{text} of {duration(self.elapsed)}"


def duration(seconds: float) -> str:
    """Say how long ``seconds`` is, briefly: ``0.42 s``, ``42 s``, ``3 min``, ``2 h 5 min``."""
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


@dataclass
class Stats:
    """A worker's running tally; its threads report each job's start and end."""

    processed: int = 0
    failed: int = 0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    started: float = field(default=-1.0)
    per_minute: stats.MinuteCounts = field(
        default_factory=stats.MinuteCounts, repr=False, compare=False
    )
    _busy: float = field(default=0.0, repr=False)
    _active: int = field(default=0, repr=False)
    _busy_since: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def begin(self) -> None:
        """Count a job as running from now."""
        with self._lock:
            if not self._active:
                self._busy_since = self.clock()
            self._active += 1

    def end(self, outcome: processing.Outcome | None) -> None:
        """Count a job as ended, with its outcome (None: handed back unsettled)."""
        failed = outcome in (processing.Outcome.FAILED, processing.Outcome.RETRYING)
        with self._lock:
            self._active -= 1
            if not self._active:
                self._busy += self.clock() - self._busy_since
            if outcome is not None:
                self.processed += 1
                self.failed += failed
        if outcome is not None:
            self.per_minute.add(failed=failed)

    def tally(self) -> Tally:
        """Return the counts and times so far, a job still running counting as busy."""
        with self._lock:
            now = self.clock()
            busy = self._busy + (now - self._busy_since if self._active else 0.0)
            return Tally(self.processed, self.failed, busy, now - self.started)

    @property
    def rate(self) -> float:
        return self.tally().rate

    def __str__(self) -> str:
        return str(self.tally())


class Worker:
    """Claim and run jobs until stopped, or until nothing is due when ``burst``."""

    def __init__(
        self,
        *,
        queues: QueueOrder | Sequence[str] = (),
        burst: bool = False,
        concurrency: int = 1,
        poll_interval: float | None = None,
        min_priority: int | None = None,
        max_priority: int | None = None,
        shutdown_timeout: float | None = None,
        worker_id: str | None = None,
        run: Callable[[Job], processing.Outcome] = processing.run,
        hold_signals: bool = False,
    ) -> None:
        self.queues = queues if isinstance(queues, QueueOrder) else QueueOrder(tuple(queues))
        self.burst = burst
        self.concurrency = concurrency
        self.poll_interval = conf.POLL_INTERVAL if poll_interval is None else poll_interval
        self.min_priority, self.max_priority = min_priority, max_priority
        self.shutdown_timeout = (
            conf.SHUTDOWN_TIMEOUT if shutdown_timeout is None else shutdown_timeout
        )
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = Stats()
        self.forced = False  # stopped by a second signal or the shutdown timeout
        self.signalled = False  # told to stop by SIGINT/SIGTERM
        # Leave SIGINT/SIGTERM blocked when run() returns, for a process that
        # exits next: one landing then stays pending (see stop_signal_pending)
        # instead of killing it with status 143 halfway through its exit.
        self.hold_signals = hold_signals
        self.handed_back: list[Job] = []  # running jobs a forced stop put back in the queue
        # True while an inline job runs in the main thread: only then does a
        # second signal interrupt it (elsewhere it would cut short the clean-up).
        self._interruptible = False
        self._run_job = run
        self._stopping = threading.Event()  # also set by the clean-up of a burst
        self._stop_requested = False  # by stop(): a signal after it is a second one
        self._running: dict[int, tuple[Job, float]] = {}  # job id -> (job, started)
        self._changed = threading.Condition()  # notified whenever a job ends
        # Ids of done jobs whose rows the next claim deletes (guarded by _changed).
        self._done: list[int] = []
        self._inbox: stdlib_queue.SimpleQueue[Job | None] = stdlib_queue.SimpleQueue()
        self._next_housekeeping = self._next_stats = time.monotonic()
        self._housekeeping = housekeeping.Housekeeping()
        self._last_tally = Tally()  # as of the last progress line
        self._drained = False  # a burst found nothing more to do

    def stop(self) -> None:
        """Stop claiming; ``run`` returns once running jobs end (or the timeout passes)."""
        self._stop_requested = True
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def run(self) -> Stats:
        """Work until stopped; return what was done."""
        using = router.db_for_write(Job)
        logger.info("Worker %s started: %s, concurrency %s", self.id, self.queues, self.concurrency)
        waiter = waiter_for(using, self._stopping)
        threads = [
            threading.Thread(target=self._serve, name=f"attachments-{i}", daemon=True)
            for i in range(self.concurrency if self.concurrency > 1 else 0)
        ]
        # Heartbeats go on until every job is settled or handed back, through
        # the drain, or live jobs would be taken over meanwhile.
        heartbeat = Heartbeat(self.id, self._due_heartbeats)
        heartbeat.start()
        for thread in threads:
            thread.start()
        # The handlers stay in place through the clean-up: a second signal
        # landing after the last job ended only makes the stop a forced one,
        # instead of killing the process halfway through it.
        with _SignalHandlers(self):
            try:
                self._loop(waiter)
                self._drain()
            except KeyboardInterrupt:
                if not self._stopping.is_set():
                    raise
                self.forced = True
            finally:
                self._stopping.set()
                for job, _ in list(self._running.values()):
                    self._hand_back(job)  # only jobs still running after the timeout remain
                if self.forced:
                    self._report_handed_back()
                self._complete_done()
                heartbeat.stop()
                for _ in threads:
                    self._inbox.put(None)
                waiter.close()
                _refresh_connections()
                self._flush_stats()
            logger.info("Worker %s stopped: %s", self.id, self.stats)
        return self.stats

    def _hand_back(self, job: Job) -> None:
        queue.release(job)
        self.handed_back.append(job)

    def force(self, why: str) -> None:
        """Stop at once: running jobs are handed back instead of waited for."""
        if not self.forced:
            logger.warning("%s: stopping at once.", why)
        self.forced = True
        self.stop()

    def _report_handed_back(self) -> None:
        if not self.handed_back:
            logger.warning("Stopped at once; no job was running.")
            return
        jobs = ", ".join(f"{job.pk} ({job.target}#{job.object_id})" for job in self.handed_back)
        logger.warning(
            "Stopped at once; handed %s job(s) back to the queue: %s.", len(self.handed_back), jobs
        )

    def _loop(self, waiter: Waiter) -> None:
        failures = 0
        while not (self._stopping.is_set() or self._drained):
            try:
                self._step(waiter)
                failures = 0
            except DatabaseError:
                # The database went away (restart, failover, killed connection):
                # drop the broken connection and try again, backing off.
                failures += 1
                delay = min(0.1 * 2**failures, 5.0)
                logger.warning("Database error; retrying in %.1fs.", delay, exc_info=True)
                _refresh_connections()
                self._stopping.wait(delay)

    def _step(self, waiter: Waiter) -> None:
        """Claim and start one job, or wait; raises DatabaseError when the database fails."""
        _refresh_connections()
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._housekeeping.run()  # the jobs it queues again are ours to claim
            self._next_housekeeping = now + housekeeping.interval()
        if self.stats.per_minute.due():
            self._flush_stats()
        if not self.burst and now >= self._next_stats:
            tally = self.stats.tally()
            if (tally - self._last_tally).processed:
                logger.info("Progress: %s", tally - self._last_tally)
            self._last_tally = tally
            self._next_stats = now + _STATS_EVERY
        if len(self._running) >= self._capacity:
            with self._changed:
                self._changed.wait_for(
                    lambda: len(self._running) < self._capacity or self._stopping.is_set(),
                    timeout=self.poll_interval,
                )
            return
        with self._changed:
            done = list(self._done)
        job = queue.claim(
            self.id,
            self.queues.order(),
            min_priority=self.min_priority,
            max_priority=self.max_priority,
            finished=done,
        )
        with self._changed:
            del self._done[: len(done)]  # only this thread removes; others append
        if job is not None:
            self._start(job)
        elif self.burst and not self._running:
            self._drained = True
        elif self.burst:
            with self._changed:
                self._changed.wait(timeout=self.poll_interval)
        else:
            waiter.wait(self.poll_interval)

    @property
    def _capacity(self) -> int:
        """Jobs held at once: with threads, one more, claimed ahead.

        A thread that finishes a job takes the next from the inbox at once,
        instead of waiting for this thread to wake (for the GIL, behind the
        other threads' Python) and claim it: at concurrency 2 those waits left
        each thread idle about 1-2 ms per job, 2-4% of the run.
        """
        return self.concurrency + 1 if self.concurrency > 1 else 1

    def _start(self, job: Job) -> None:
        self._running[job.pk] = (job, time.monotonic())
        if self.concurrency > 1:
            self._inbox.put(job)
        else:
            self._execute(job)

    def _serve(self) -> None:
        _leave_signals_to_the_main_thread()
        while (job := self._inbox.get()) is not None:
            _refresh_connections()
            if self._stopping.is_set():
                self._put_back(job)
            else:
                self._execute(job)
        connections.close_all()

    def _put_back(self, job: Job) -> None:
        """Release a job claimed ahead that no thread started: the worker is stopping."""
        with contextlib.suppress(DatabaseError):  # else its lock expires and it is recovered
            queue.release(job)
        with self._changed:
            self._running.pop(job.pk, None)
            self._changed.notify_all()

    def _execute(self, job: Job) -> None:
        self.stats.begin()
        started = time.monotonic()
        outcome = None
        inline = threading.current_thread() is threading.main_thread()
        try:
            self._interruptible = inline
            outcome = self._run_job(job)
            self._interruptible = False
        except Exception:
            # The database failed under the job, so its outcome could not be
            # recorded: hand it back (or, if even that fails, leave the lock to
            # expire and be recovered), and go on working.
            logger.exception("Job %s could not be settled; handing it back.", job.pk)
            _refresh_connections()
            with contextlib.suppress(DatabaseError):
                queue.release(job)
            return
        except BaseException:
            # Interrupted (second signal): hand the job back rather than leave it locked.
            self._hand_back(job)
            raise
        finally:
            self._interruptible = False
            with self._changed:
                if outcome is not None and outcome.done:
                    self._done.append(job.pk)
                self._running.pop(job.pk, None)
                self._changed.notify_all()
            self.stats.end(outcome)
        logger.info(
            "Job %s %s#%s %s in %.0f ms",
            job.pk,
            job.target,
            job.object_id,
            outcome.value,
            (time.monotonic() - started) * 1000,
        )

    def _drain(self) -> None:
        """Give running jobs up to the shutdown timeout to finish."""
        with contextlib.suppress(stdlib_queue.Empty):
            while True:  # only jobs in the inbox yet: the threads' stop comes after
                self._put_back(cast(Job, self._inbox.get_nowait()))
        if not self._running:
            return
        logger.info(
            "Waiting up to %ss for %s running job(s).", self.shutdown_timeout, len(self._running)
        )
        deadline = time.monotonic() + self.shutdown_timeout
        with self._changed:
            while self._running and not self.forced and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(min(left, _SIGNAL_LATENCY))
        if self._running and not self.forced:
            self.force(f"Running jobs outlived the shutdown timeout ({self.shutdown_timeout}s)")

    def _complete_done(self) -> None:
        """Delete the rows of done jobs that no claim has taken along."""
        if not self._done:
            return
        try:
            _refresh_connections()
            queue.complete(self.id, self._done)
        except DatabaseError:
            # Their locks expire and they run again, which finds them done.
            logger.warning("Could not delete %s done job(s).", len(self._done), exc_info=True)
        self._done.clear()

    def _due_heartbeats(self, interval: float) -> list[int]:
        """Running jobs older than one interval: short jobs never cost a write."""
        now = time.monotonic()
        return [pk for pk, (_, started) in list(self._running.items()) if now - started >= interval]

    def _flush_stats(self) -> None:
        try:
            self.stats.per_minute.flush(self.id)
        except DatabaseError:
            # Only the dashboard's figures are late: the counts stay in memory
            # for the next flush, and jobs must not wait for them.
            logger.warning("Could not save worker stats; will retry.", exc_info=True)


def _refresh_connections() -> None:
    # A worker keeps its connections for life (reconnecting per job would cost
    # more than the job's queries) and closes only those a failure broke, so
    # the next query reconnects. Never inside a transaction: a caller running
    # the worker in one (tests, embedding code) keeps its connection.
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block or connection.connection is None:
            continue
        if connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _leave_signals_to_the_main_thread() -> None:
    """Block SIGINT/SIGTERM in this (worker-owned) thread.

    The kernel gives a signal sent to the process to any thread not blocking
    it. With every other thread blocking them, they reach the main thread,
    whose handler acts on them and whose blocking waits they interrupt; and
    once the main thread holds them back too (``hold_signals``), a late one
    stays pending instead of killing the process through another thread.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


def stop_signal_pending() -> bool:
    """Say whether a SIGINT/SIGTERM held back by ``Worker(hold_signals=True)`` is pending."""
    return bool(signal.sigpending() & _STOP_SIGNALS)


class _SignalHandlers:
    """First SIGINT/SIGTERM: stop claiming, let running jobs finish. Second: stop now."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.previous: dict[int, Any] = {}
        self.cancelled = threading.Event()  # the shutdown timer's
        self.timed_out = False

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        self.cancelled.set()
        if self.worker.hold_signals and self.previous:
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        worker = self.worker
        if worker._stop_requested:
            if self.timed_out:
                why = f"Running job outlived the shutdown timeout ({worker.shutdown_timeout}s)"
            else:
                why = f"Received {signal.Signals(signum).name} again"
            worker.force(why)
            # Only an inline job is interrupted: threads' jobs are handed back
            # by the drain, and the clean-up must run to its end.
            if worker._interruptible:
                worker._interruptible = False
                raise KeyboardInterrupt
            return
        # Stop first: a second signal arriving while we log must count as the second.
        worker.stop()
        worker.signalled = True
        logger.info("Received %s: finishing running jobs.", signal.Signals(signum).name)
        if worker.concurrency <= 1:
            # An inline job cannot be waited for with a timeout: interrupt it
            # when the timeout is up, which hands it back to the queue. Armed
            # even with no job running: the signal may have come between a
            # claim and the job's start.
            threading.Thread(
                target=self._interrupt, name="attachments-timeout", daemon=True
            ).start()

    def _interrupt(self) -> None:
        _leave_signals_to_the_main_thread()
        if not self.cancelled.wait(self.worker.shutdown_timeout) and self.worker._running:
            self.timed_out = True
            # A real signal, unlike interrupt_main(), also breaks a blocking system call.
            signal.pthread_kill(cast(int, threading.main_thread().ident), signal.SIGINT)
