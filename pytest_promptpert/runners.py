"""Daemon threads that run model calls, reused from one call to the next.

A call runs in a thread of its own so that it can be abandoned at its deadline (see
``LiteLLMBackend._within_deadline``). Starting a thread for every call costs a hand-off of the
GIL and a tenth of a millisecond or more; here an idle thread takes the next call, and a new one
is started only when none is idle (an abandoned call keeps its thread until it ends). The
threads are daemons: a call abandoned on a server that never stops sending does not keep the
interpreter from exiting. One set per process: their number is the most calls ever in flight
at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Runners:
    """Runs jobs in idle daemon threads, starting a thread only when none is idle."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: threads waiting for a job that no earlier :meth:`run` has counted on
        self._idle = 0

    def run(self, job: Callable[[], object]) -> None:
        """Start *job* in another thread; it reports its own outcome, errors included."""
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that thread takes this job (or another's: all are alike)
        self._jobs.put(job)
        if start:
            threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def _work(self) -> None:
        while True:
            # A job that raises ends its thread (threading reports it), never counted idle.
            self._jobs.get()()
            with self._lock:
                self._idle += 1


#: the threads that send the plugin's own model calls
CALLS = Runners("promptpert-call")
