"""Figure 8's account of the time beyond the ideal: start-up, between generations and tail add up to it."""

from __future__ import annotations

import pytest

from bench.async_v2 import idle_parts


def test_two_places_idle_at_the_start_between_generations_and_at_the_end() -> None:
    # Two places, generations of 1 s. Place A: accepted at 0.1 and 1.2 (idle 0.1 at the start, 0.1 between);
    # place B: at 0.3 and 1.4 (0.3 at the start, 0.1 between). Last input done at 2.5: A idle 0.3 at the end,
    # B 0.1. The makespan is 2.5 s against an ideal of 4 x 1 s / 2 = 2 s.
    start, between, tail = idle_parts([1.2, 0.1, 1.4, 0.3], 0.0, 2.5, 1.0, 2)
    assert (start, between, tail) == pytest.approx((0.2, 0.1, 0.2))
    assert start + between + tail == pytest.approx(2.5 - 2.0)
