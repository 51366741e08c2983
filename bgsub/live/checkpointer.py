"""Saving the model while a camera or a stream runs (``--save-model``).

:class:`Checkpointer` is a pipeline consumer: every *every* seconds it copies
the model's state and writes it as a checkpoint
(:mod:`bgsub.model.checkpoint`) from a thread of its own.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..files import SinkError, write_atomically
from ..model.checkpoint import encode

if TYPE_CHECKING:
    from ..model.masker import MixtureMasker
    from ..model.step import FrameResult


class Checkpointer:
    """A pipeline consumer that saves the model every *every* seconds, in a thread.

    The model's state is copied under the masker's lock (milliseconds even
    for 1080p), then hashed and written atomically by a thread of its own, so
    that masking never waits for the disk.  ``close()`` waits for a save in
    progress; a save that failed raises :class:`~bgsub.files.SinkError`
    naming *option* and *path*.
    """

    def __init__(self, masker: Callable[[], MixtureMasker], path: Path, every: float,
                 option: str = "--save-model") -> None:
        self.masker = masker
        self.path = Path(path)
        self.every = every
        self.option = option
        self.saves = 0
        self._last = time.monotonic()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, result: FrameResult) -> None:
        self._raise()
        if self.every <= 0 or time.monotonic() - self._last < self.every:
            return
        if self._thread is not None and self._thread.is_alive():
            return  # the last save is still being written: the next frame will do
        self._last = time.monotonic()
        state = self.masker().__getstate__()
        self._thread = threading.Thread(target=self._save, args=(state,),
                                        name="bgsub-checkpoint", daemon=True)
        self._thread.start()

    def _save(self, state: dict[str, Any]) -> None:
        try:
            write_atomically(self.path, encode(state))
            self.saves += 1
        except OSError as exc:
            self._error = SinkError(f"{self.option} {self.path}: cannot be written "
                                    f"({exc.strerror})")

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._raise()
