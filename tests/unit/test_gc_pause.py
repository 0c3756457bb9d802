"""The cyclic-GC pause of prepare and commit (pipeline.no_cyclic_gc) holds while any pause runs, on any thread."""

from __future__ import annotations

import gc
import threading

import pytest

from ledger.ingest.pipeline import no_cyclic_gc


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_pause_ending_first_on_another_thread_leaves_the_collector_off():
    """A commit that began first and ends first does not switch the collector back on under the prepare beside it."""
    entered, leave = threading.Event(), threading.Event()

    def commit():
        with no_cyclic_gc():
            entered.set()
            leave.wait(5)

    thread = threading.Thread(target=commit)
    thread.start()
    assert entered.wait(5)
    with no_cyclic_gc():  # the prepare of the next batch
        leave.set()
        thread.join(5)
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_stays_off_while_a_pause_begun_later_still_runs():
    """When the first pause ends, a later one on another thread keeps the collector off until it ends too."""
    entered, leave, done = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def commit():
        with no_cyclic_gc():
            entered.set()
            leave.wait(5)
            seen.append(gc.isenabled())
        done.set()

    thread = threading.Thread(target=commit)
    with no_cyclic_gc():
        thread.start()
        assert entered.wait(5)
    assert not gc.isenabled()  # the commit's pause still runs
    leave.set()
    assert done.wait(5)
    thread.join(5)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off():
    """A pause never switches on a collector the application had switched off, even after an error."""
    gc.disable()
    with pytest.raises(RuntimeError), no_cyclic_gc():
        raise RuntimeError("boom")
    assert not gc.isenabled()
    gc.enable()
    with pytest.raises(RuntimeError), no_cyclic_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()
