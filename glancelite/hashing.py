"""Hash a stream with several algorithms at once, one thread per algorithm.

hashlib releases the GIL on large buffers, so md5 and sha512 in two threads run at the
speed of the slower one instead of their sum. Each thread is fed through a small bounded
queue: memory stays at a few chunks and a slow hash slows the upload rather than
buffering it. The chunks are not copied: a caller reusing its buffers asks
wait_hashed() before overwriting one.
"""
import hashlib
import queue
import threading

_DONE = object()
_QUEUE_DEPTH = 4


class _HashThread(threading.Thread):
    def __init__(self, algorithm, progress):
        super().__init__(name=f"hash-{algorithm}", daemon=True)
        self.hasher = hashlib.new(algorithm, usedforsecurity=False)
        self.chunks = queue.Queue(maxsize=_QUEUE_DEPTH)
        self.progress = progress  # a Condition, notified after every chunk
        self.hashed = 0
        self.finished = False

    def run(self):
        try:
            while (chunk := self.chunks.get()) is not _DONE:
                self.hasher.update(chunk)
                with self.progress:
                    self.hashed += 1
                    self.progress.notify_all()
        finally:
            with self.progress:  # a waiting producer must never wait on a dead thread
                self.finished = True
                self.progress.notify_all()


class ParallelHashes:
    """Feed chunks with update(); hexdigests() waits for the threads and returns the digests."""

    def __init__(self, *algorithms):
        self.progress = threading.Condition()
        self.threads = {algorithm: _HashThread(algorithm, self.progress)
                        for algorithm in algorithms}
        for thread in self.threads.values():
            thread.start()

    def update(self, chunk):
        for thread in self.threads.values():
            thread.chunks.put(chunk)

    def wait_hashed(self, count):
        """Block until every algorithm has hashed the first `count` chunks."""
        with self.progress:
            self.progress.wait_for(lambda: all(thread.hashed >= count or thread.finished
                                               for thread in self.threads.values()))

    def _stop(self):
        for thread in self.threads.values():
            thread.chunks.put(_DONE)
        for thread in self.threads.values():
            thread.join()

    def hexdigests(self):
        self._stop()
        return {algorithm: thread.hasher.hexdigest() for algorithm, thread in self.threads.items()}

    def abandon(self):
        """Stop the threads after a failed transfer; the digests are not wanted."""
        self._stop()
