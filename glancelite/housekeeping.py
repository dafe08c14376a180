"""Periodic work each API process does in the background: reap expired upload leases and
scrub pending_delete images.

One daemon thread per process runs the jobs, each every `interval` seconds give or take
half of it (jitter), so the workers of many hosts do not all query the database at the
same moment. The jobs are safe to run anywhere at once (they compare-and-set in SQL), so
there is no leader to elect. `start()` is idempotent and fork-aware: glancelite-api calls
it when a worker boots, and every request calls it too (any WSGI server).
"""
import logging
import os
import random
import threading
import time

LOG = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self):
        self.jobs = []  # (name, interval seconds, function)
        self._pid = None
        self._lock = threading.Lock()

    def every(self, name, interval, function):
        """Run `function()` about every `interval` seconds; an interval of 0 disables it."""
        if interval > 0:
            self.jobs.append((name, interval, function))

    def start(self):
        if not self.jobs or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="housekeeping", daemon=True).start()

    def _run(self):
        now = time.monotonic()
        due = {name: now + _jittered(interval) for name, interval, _ in self.jobs}
        while True:
            name, interval, function = min(self.jobs, key=lambda job: due[job[0]])
            time.sleep(max(due[name] - time.monotonic(), 0))
            try:
                function()
            except Exception:  # the database or the store is away: next round
                LOG.exception("background %s failed", name)
            due[name] = time.monotonic() + _jittered(interval)


def _jittered(interval):
    return interval * random.uniform(0.5, 1.5)
