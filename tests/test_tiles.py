"""The tile runner: every tile exactly once, errors surface, concurrent callers are safe."""

import threading

import numpy as np
import pytest

from bgsub.tiles import TileRunner


def count_tiles(counts, t_start, t_stop):
    for t in range(t_start, t_stop):
        counts[t] += 1


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("n_tiles", [1, 15, 16, 17, 1000, 8101])
def test_every_tile_is_processed_once(threads, n_tiles):
    runner = TileRunner(threads)
    for _ in range(3):  # the helpers are reused across frames
        counts = np.zeros(n_tiles, np.int64)
        runner.run(count_tiles, (counts,), n_tiles)
        assert np.all(counts == 1)


def test_an_error_in_any_chunk_reaches_the_caller():
    def failing(counts, t_start, t_stop):
        if t_start <= 500 < t_stop:
            raise ValueError("tile 500")
        count_tiles(counts, t_start, t_stop)

    runner = TileRunner(2)
    with pytest.raises(ValueError, match="tile 500"):
        runner.run(failing, (np.zeros(1000, np.int64),), 1000)
    counts = np.zeros(1000, np.int64)
    runner.run(count_tiles, (counts,), 1000)  # still usable
    assert np.all(counts == 1)


def test_callers_on_two_threads_each_get_all_their_tiles():
    runner = TileRunner(2)
    results = []

    def frames():
        for _ in range(50):
            counts = np.zeros(3000, np.int64)
            runner.run(count_tiles, (counts,), 3000)
            results.append(bool(np.all(counts == 1)))

    threads = [threading.Thread(target=frames) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 100
