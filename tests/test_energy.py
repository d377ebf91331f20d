"""Energy maths against values computed by hand."""

from __future__ import annotations

import math

import pytest

from embench.telemetry import counter_delta, integrate, mean_power, net_joules, per_inference, summarize_telemetry
from embench_agent.protocol import Edge, Result, SourceTrace, Telemetry


def test_constant_power_over_the_window() -> None:
    e = integrate([(t / 2, 2.0) for t in range(7)], 0.0, 3.0)  # every 0.5 s
    assert e.joules == pytest.approx(6.0) and e.watts == pytest.approx(2.0)
    assert e.coverage == 1.0 and not e.sparse and e.samples_in_window == 7


def test_window_clipped_and_interpolated_at_the_edges() -> None:
    # power ramps 0 W at t=0 to 10 W at t=10; window [2.5, 7.5] → P(2.5)=2.5, P(7.5)=7.5
    samples = [(float(t), float(t)) for t in range(0, 11, 2)]  # samples every 2 s
    e = integrate(samples, 2.5, 7.5)
    assert e.joules == pytest.approx((2.5 + 7.5) / 2 * 5.0)  # exact for a linear ramp: 25 J
    assert e.samples_in_window == 2 and e.coverage == pytest.approx(1.0)


def test_step_profile_by_hand() -> None:
    # 1 W until t=1, then 3 W: trapezoids 0..1: 1 J, 1..1.1: 0.2 J, 1.1..2: 2.7 J
    e = integrate([(0.0, 1.0), (1.0, 1.0), (1.1, 3.0), (2.0, 3.0)], 0.0, 2.0)
    assert e.joules == pytest.approx(1.0 + 0.2 + 2.7)


def test_sparse_trace_is_flagged_not_used() -> None:
    e = integrate([(0.0, 5.0), (0.2, 5.0)], 0.0, 10.0)
    assert e.sparse and e.coverage == pytest.approx(0.02)
    gap = integrate([(0.0, 1.0), (0.5, 1.0), (9.5, 1.0), (10.0, 1.0)], 0.0, 10.0)
    assert gap.coverage == 1.0 and gap.max_gap_s == pytest.approx(9.0) and gap.sparse
    assert integrate([(1.0, 1.0)], 0.0, 2.0).sparse and math.isnan(integrate([], 0.0, 1.0).joules)


def test_partial_coverage_is_scaled_when_nearly_complete() -> None:
    # samples cover [0, 9.5] of [0, 10] at a constant 4 W: 95% coverage → scaled to the window
    e = integrate([(t / 2, 4.0) for t in range(20)], 0.0, 10.0)
    assert not e.sparse and e.coverage == pytest.approx(0.95) and e.joules == pytest.approx(40.0)


def test_counter_wraps() -> None:
    assert counter_delta(100, 250, None) == 150
    max_range = 262_143_328_850  # a real RAPL package max_energy_range_uj
    assert counter_delta(max_range - 1_000, 4_000, max_range) == 5_000
    with pytest.raises(ValueError, match="range is unknown"):
        counter_delta(10, 5, None)


def test_baseline_and_per_inference() -> None:
    idle = mean_power([(0.0, 1.0), (1.0, 1.0), (2.0, 2.0)])  # trapezoids 1 J + 1.5 J over 2 s
    assert idle == pytest.approx(1.25)
    assert net_joules(10.0, idle, 4.0) == pytest.approx(5.0)
    assert per_inference(5.0, 1000) == pytest.approx(0.005) and math.isnan(per_inference(1.0, 0))


def test_a_sample_stamped_at_the_idle_end_edge_is_not_idle() -> None:
    """Captured from a run on the stand-in phone under load: /proc/uptime ticks in 10 ms, and the first
    sample read after benchmark_model started carried the idle_end edge's own stamp. It is not idle."""
    idle = [(round(13917.9 + i / 10, 2), 1.755) for i in range(10)]  # 13917.90 .. 13918.80
    running = [(round(13918.91 + i / 10, 2), 3.51) for i in range(14)]  # from the idle_end tick on
    edges = {"idle_start": Edge(13917.9), "idle_end": Edge(13918.91), "window_start": Edge(13919.08),
             "window_end": Edge(13920.12)}  # fmt: skip
    source = SourceTrace(source="battery", label="battery", kind="power", unit="W", samples=(*idle, *running))
    s = summarize_telemetry(Result(job_id="j", status="ok", telemetry=Telemetry(edges=edges, sources=(source,))), 10)
    assert s.idle_watts == pytest.approx(1.755)  # was 1.84: the load's first sample counted as idle
    assert s.watts == pytest.approx(3.51)
