"""Background PNG writer: encoding and saving overlap sampling (PIL's zlib encoder releases the GIL)."""

import collections
import concurrent.futures
import os

from edm_bdia.files.images import save_png


class ImageWriteError(OSError):
    """An image could not be written (a full disk, no permission, a file where a folder must go)."""


def _write_png(array_hwc, path):
    """Save one PNG, creating its folder; any failure is one ImageWriteError naming the image and the reason."""
    try:
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        save_png(array_hwc, path)
    except OSError as exc:
        reason = f'{exc.filename}: {exc.strerror}' if exc.filename and exc.strerror else str(exc)
        raise ImageWriteError(f'cannot write an image to {path} ({reason}); check the output folder and its free '
                              'space') from None


class ImageWriter:
    """Writes (uint8 HWC array, path) pairs on worker threads, creating their folders. At most `max_pending` images
    wait in memory; `submit` blocks beyond that. The first write error (an ImageWriteError) is re-raised by
    `submit`, `flush` or `close`."""

    def __init__(self, num_threads=2, max_pending=256):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=num_threads,
                                                           thread_name_prefix='edm-bdia-writer')
        self._pending = collections.deque()
        self._max_pending = max_pending

    def _collect(self, keep):
        """Wait until at most `keep` writes are pending; raise the first error met."""
        while len(self._pending) > keep or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()

    def submit(self, array_hwc, path):
        self._collect(self._max_pending - 1)
        self._pending.append(self._pool.submit(_write_png, array_hwc, path))

    def flush(self):
        self._collect(0)

    def close(self):
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:  # already failing: finish the queued writes, but let the original error through
            self._pool.shutdown(wait=True)
