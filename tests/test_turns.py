"""Turns on the device: visitors round-robin, decided by recorded order (each waiter says when it waits)."""

from __future__ import annotations

import threading

from editing.turns import Turns


def _queue(turns: Turns, visitor: str, order: list[str], ahead: dict[str, int]) -> threading.Thread:
    """A thread that asks for one turn for `visitor`, once it is known to wait (its `waiting` call came)."""
    asked = threading.Event()

    def waiting(n: int) -> None:
        ahead[visitor] = n
        asked.set()

    def step() -> None:
        with turns(visitor, waiting):
            order.append(visitor)

    thread = threading.Thread(target=step)
    thread.start()
    assert asked.wait(30), f"{visitor} never waited"
    return thread


def test_a_visitor_waits_for_one_step_of_each_other_visitor_not_for_their_queues():
    turns, order, ahead = Turns(), [], {}
    with turns("big"):  # the big edit's first step has the device; its next steps queue up behind it
        threads = [_queue(turns, "big", order, ahead) for _ in range(3)]
        threads.append(_queue(turns, "small", order, ahead))
        threads.append(_queue(turns, "other", order, ahead))
    for thread in threads:
        thread.join(30)
    assert order == ["small", "other", "big", "big", "big"]
    assert ahead["small"] == 1  # the step that held the device; big's queued steps do not count
    assert ahead["other"] == 2  # that step and small's


def test_a_silent_waiter_without_others_gets_the_device_at_once():
    turns, calls = Turns(), []
    with turns("alone", calls.append):
        pass
    assert calls == []  # nothing to wait for, nothing reported
