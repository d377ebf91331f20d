"""What a Result's telemetry says: energy per inference, power, temperatures. Pure: no I/O."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from embench_agent.protocol import Result, SourceTrace, Telemetry

from .energy import counter_delta, integrate, mean_power, net_joules, per_inference

NO_POWER = "no power source"
# Samples from a meter on the host are placed on the device's clock within ± an uncertainty (half
# the best probe's round trip); more than this share of the window, and they are not used.
MAX_ALIGN_SHARE = 0.02
NAN = math.nan


@dataclass(frozen=True)
class TelemetrySummary:
    """One job's telemetry reduced to figures; NaN where a figure cannot be had (energy_note says why)."""

    energy_note: str = NO_POWER
    errors: tuple[str, ...] = ()
    power_source: str = ""
    coverage: float = NAN
    samples_in_window: int = 0
    joules: float = NAN  # gross, over the timed window
    watts: float = NAN
    idle_watts: float = NAN
    net_joules: float = NAN  # gross minus the idle baseline over the same time
    joules_per_inference: float = NAN
    per_inference_basis: str = ""
    max_c: dict[str, float] = field(default_factory=dict)  # per temperature source
    start_c: dict[str, float] = field(default_factory=dict)
    trip_c: float | None = None
    freq_min_mhz: float = NAN
    freq_max_mhz: float = NAN
    sampler_cpu_seconds: float | None = None

    @property
    def has_energy(self) -> bool:
        return not math.isnan(self.joules)

    @property
    def temp_max_c(self) -> float:
        return max(self.max_c.values(), default=NAN)


def _idle_watts(samples: list[tuple[float, float]], idle: tuple[float, float] | None) -> float:
    """Mean power over the idle window: integrated from its start edge (interpolated) to the last
    sample inside it. Not interpolated past that sample: the model starts loading right at the end
    edge, and the next sample already shows it. A sample stamped *at* the end edge is not inside:
    a phone's clock (/proc/uptime) ticks in 10 ms, and a sample read just after the model started
    can carry the edge's own stamp."""
    if idle is None:
        return NAN
    inside = [(t, v) for t, v in samples if idle[0] <= t < idle[1]]
    if len(inside) < 2:
        return NAN
    energy = integrate(samples, idle[0], inside[-1][0])
    return energy.watts if not energy.sparse and energy.seconds > 0 else mean_power(inside)


def _from_power(
    tel: Telemetry, src: SourceTrace, window: tuple[float, float], out: TelemetrySummary
) -> TelemetrySummary:
    samples = list(src.samples)
    energy = integrate(samples, *window)
    out = dataclasses.replace(out, power_source=f"{src.source}:{src.label}", coverage=energy.coverage,
                              samples_in_window=energy.samples_in_window)  # fmt: skip
    if energy.sparse:
        return dataclasses.replace(
            out, energy_note=f"{src.source} power samples too sparse (coverage {energy.coverage:.0%})"
        )
    uncertainty = src.facts.get("clock_uncertainty_s")  # a meter on the host
    if uncertainty is not None and uncertainty > MAX_ALIGN_SHARE * energy.seconds:
        note = f"{src.source} clock alignment ±{uncertainty * 1e3:.0f} ms is too coarse for a {energy.seconds:.2f} s window"
        return dataclasses.replace(out, energy_note=note)
    idle_w = _idle_watts(samples, tel.window("idle_start", "idle_end"))
    net = net_joules(energy.joules, idle_w, energy.seconds) if not math.isnan(idle_w) else NAN
    return dataclasses.replace(out, joules=energy.joules, watts=energy.watts, idle_watts=idle_w, net_joules=net,
                               energy_note="")  # fmt: skip


def _from_counter(
    tel: Telemetry, src: SourceTrace, window: tuple[float, float], out: TelemetrySummary
) -> TelemetrySummary:
    start = tel.edges["window_start"].counters.get(src.source)
    end = tel.edges["window_end"].counters.get(src.source)
    if start is None or end is None:
        return out
    wrap = src.facts.get("max_energy_range_uj")
    try:
        joules = counter_delta(int(start), int(end), wrap) / 1e6
    except ValueError as exc:  # went backwards with no known range: no energy from it, and say why
        return dataclasses.replace(out, energy_note=f"{src.source}:{src.label}: {exc}")
    return dataclasses.replace(out, power_source=f"{src.source}:{src.label}", joules=joules,
                               watts=joules / (window[1] - window[0]), energy_note="")  # fmt: skip


def _energy(tel: Telemetry, out: TelemetrySummary) -> TelemetrySummary:
    """The first power source that gives an energy figure wins."""
    window = tel.window("window_start", "window_end")
    if window is None:
        return out
    for src in tel.sources:
        if src.kind == "power":
            out = _from_power(tel, src, window, out)
        elif src.kind == "counter":
            out = _from_counter(tel, src, window, out)
        if out.has_energy:
            break
    return out


def _per_inference(out: TelemetrySummary, inferences: int) -> TelemetrySummary:
    if not out.has_energy:
        return out
    if math.isnan(out.net_joules):
        base, basis = out.joules, "gross"
    elif out.net_joules < 0:
        # The idle baseline drew more than the run: a noisy baseline, not negative work.
        base, basis = out.joules, "gross: the idle baseline was above the run"
    else:
        base, basis = out.net_joules, "net of idle"
    return dataclasses.replace(out, joules_per_inference=per_inference(base, inferences), per_inference_basis=basis)


def _temperatures(tel: Telemetry, out: TelemetrySummary) -> TelemetrySummary:
    max_c, start_c, trip = dict(out.max_c), dict(out.start_c), out.trip_c
    freqs: list[float] = []
    for src in tel.sources:
        values = src.values()
        if src.kind == "temperature" and values:
            max_c[src.source], start_c[src.source] = max(values), values[0]
            trip = src.facts.get("trip_c") if src.facts.get("trip_c") is not None else trip
        elif src.kind == "frequency" and values:
            freqs.extend(values)
    return dataclasses.replace(out, max_c=max_c, start_c=start_c, trip_c=trip,
                               freq_min_mhz=min(freqs, default=NAN), freq_max_mhz=max(freqs, default=NAN))  # fmt: skip


def summarize_telemetry(result: Result, inferences: int) -> TelemetrySummary:
    """Energy (J, gross and net of the idle baseline), watts, J per inference, temperatures, frequencies."""
    tel = result.telemetry
    if tel is None:
        return TelemetrySummary()
    out = TelemetrySummary(errors=tel.errors, sampler_cpu_seconds=tel.sampler_cpu_seconds)
    out = _per_inference(_energy(tel, out), inferences)
    return _temperatures(tel, out)
