"""`embench nightly`: one lock per store (two nightlies never overlap), the sweep, tonight judged
against the history (the last K good nights, or the pinned baseline), and the verdict files."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .compare import Comparison, Policy, SeriesKey, compare, series_key
from .errors import EXIT_BUSY, EmbenchError
from .history import Point, Step, change_points, histories, nightly_runs
from .inventory import BASELINE_NIGHTS
from .regression import HISTORY_NIGHTS
from .report import verdicts
from .store import PlanEntry, RunBusy, RunInfo, Store

NIGHTLY = "nightly"  # the label of the runs `embench nightly` makes
BASELINE_KEY = "baseline"  # the store's meta key of the pinned baseline run
DEFAULT_NIGHTS = BASELINE_NIGHTS


class NightlyBusy(EmbenchError):
    exit_code = EXIT_BUSY


@contextlib.contextmanager
def nightly_lock(store: Store) -> Iterator[None]:
    """Held for the whole nightly; the kernel (SQLite) or the server (PostgreSQL) drops it if the process dies."""
    if not store.try_hold("nightly", note=f"{os.getpid()}\n"):
        holder = store.holder_note("nightly")
        raise NightlyBusy(
            f"another `embench nightly` on {store.where} is running"
            + (f" (pid {holder})" if holder else "")
            + "; this one does not start: let it finish, or stop it (it keeps what it measured)"
        )
    try:
        yield
    finally:
        store.release("nightly")


def pinned_baseline(store: Store) -> RunInfo | None:
    run_id = store.get_meta(BASELINE_KEY)
    if not run_id:
        return None
    found = [r for r in store.runs() if r.run_id == run_id]
    if not found:  # deleted by hand, or with the Python API: `runs prune` never deletes it
        raise EmbenchError(f"the pinned baseline {run_id} is no longer in {store.where}: pin another"
                           " (`embench baseline set RUN`) or go back to the last good nights (`embench baseline"
                           " clear`)")  # fmt: skip
    return found[0]


def set_baseline(store: Store, run: str | None) -> tuple[RunInfo | None, str]:
    """Pin a run as the baseline every nightly is judged against (None: back to the last good nights);
    (the run, a warning where some of its jobs did not measure). A run that is not finished, or that
    measured nothing, is refused: every nightly would be judged against it."""
    if run is None:
        store.set_meta(BASELINE_KEY, None)
        return None, ""
    info = store.find_run(run)
    if info.state != "finished":
        resume = shlex.join(["embench", "nightly" if info.label == NIGHTLY else "sweep", info.inventory, "--resume",
                             info.run_id, "--store", store.where])  # fmt: skip
        raise EmbenchError(f"run {info.run_id} in {store.where} is {info.state} ({info.recorded}/{info.planned} jobs)"
                           f" and cannot be the baseline: finish it (`{resume}`, from the folder it was swept in)"
                           " or pin a finished run (`embench runs`)")  # fmt: skip
    results = store.results(info.run_id)
    measured = sum(1 for s in results if s.result.measured)
    if not measured:
        raise EmbenchError(f"run {info.run_id} in {store.where} measured nothing ({len(results)} job(s), none"
                           " measured) and cannot be the baseline: pin a run that measured (`embench runs`)")  # fmt: skip
    store.set_meta(BASELINE_KEY, info.run_id)
    planned = max(info.planned, len(results))
    missing = planned - measured - sum(1 for s in results if s.result.status == "unsupported")  # failed, never run
    warning = (f"{missing} of {planned} jobs of {info.run_id} did not measure: their series are not comparable"
               " while it is pinned") if missing else ""  # fmt: skip
    return info, warning


def baseline_runs(store: Store, tonight: str, nights: int = DEFAULT_NIGHTS,
                  series: Iterable[SeriesKey] = ()) -> tuple[list[RunInfo], str, int | None]:  # fmt: skip
    """(the runs to judge against, oldest first; in words; how many of them each series is judged on).
    The pinned baseline, else the last `nights` good nightly runs before tonight and, for a series of
    tonight's (`series`) that missed some of them (its board away for repair, its model left out of a
    few sweeps), its own last `nights` before them; as far back as its noise is measured (HISTORY_NIGHTS)."""
    pinned = pinned_baseline(store)
    if pinned is not None:
        return [pinned], f"the pinned baseline {pinned.run_id}", None
    good, measured = _good_nights(store, tonight)
    chosen = _series_nights(good, measured, max(nights, HISTORY_NIGHTS), series)
    if not chosen:
        return [], "nothing (no earlier good night)", None
    lab = good[-nights:]
    words = f"the last {len(lab)} good night(s): {', '.join(r.run_id for r in lab)}"
    if len(_series_nights(good, measured, nights, series)) > len(lab):
        words += f"; series that missed some of them: their own last {nights}"
    return chosen, words, nights


def good_nights(store: Store, tonight: str) -> list[RunInfo]:
    """The nightly runs before tonight, oldest first, that finished and measured something. Each series is
    judged on those of them it measured on (compare): a board that failed or was lost one night leaves
    that night out for its own series only, not for the whole lab's."""
    return _good_nights(store, tonight)[0]


def _good_nights(store: Store, tonight: str) -> tuple[list[RunInfo], dict[str, set[SeriesKey]]]:
    """The good nights, and what each nightly run measured (one query, no samples loaded)."""
    measured = store.measured_series(NIGHTLY)
    return [run for run in nightly_runs(store, before=tonight) if measured.get(run.run_id)], measured


def _series_nights(good: list[RunInfo], measured: dict[str, set[SeriesKey]], nights: int,
                   series: Iterable[SeriesKey]) -> list[RunInfo]:  # fmt: skip
    """The last `nights` good nights, and each of `series`' own last `nights` good nights it measured on,
    oldest first: a series is judged on its own nights (compare's own_nights), not lost for having missed
    the lab's last few."""
    chosen = {run.run_id for run in good[-nights:]}
    for key in set(series):
        chosen.update([run.run_id for run in good if key in measured[run.run_id]][-nights:])
    return [run for run in good if run.run_id in chosen]


@dataclass(frozen=True)
class Judgement:
    night: verdicts.Night
    paths: dict[str, Path]


def judge(store: Store, tonight: str, folder: Path, nights: int = DEFAULT_NIGHTS, policy: Policy | None = None,
          baseline: list[RunInfo] | None = None) -> Judgement:  # fmt: skip
    """Tonight against its baseline (given, or the pinned one, or the last good nights); the verdict
    files in `folder`."""
    words, compared_with = "", baseline
    results = store.results(tonight)
    own_nights: int | None = None  # the nights each series is judged on: its own last ones (None: all given)
    if baseline is None:
        baseline, words, own_nights = baseline_runs(store, tonight, nights, {series_key(s.job) for s in results})
        # the baseline runs reach back to each series' noise nights; a pinned one: the noise of the last nights
        noise_runs = baseline if own_nights else good_nights(store, tonight)[-HISTORY_NIGHTS:]
    else:
        words = ", ".join(r.run_id for r in baseline)
        started = store.find_run(tonight).started_unix
        if any(r.started_unix > started for r in baseline):  # `compare NEW OLD`
            words += f", which ran after it: `slower` means {tonight} was slower than that later run"
        noise_runs = baseline
    loaded = {r.run_id: store.results(r.run_id) for r in [*baseline, *noise_runs]}
    comparisons = compare([loaded[r.run_id] for r in baseline], results, policy,
                          history=[loaded[r.run_id] for r in noise_runs], own_nights=own_nights)  # fmt: skip
    not_run = _not_run(store.plan(tonight), {s.job.job_id for s in results},
                       tonight if store.being_swept(tonight) else None)  # fmt: skip
    comparisons += not_run
    failed = sum(c.job_failed for c in comparisons)  # each a JUnit <error>: the summary counts the same jobs
    night = verdicts.Night(tonight, words, comparisons, failed, _regressed_histories(store, comparisons, tonight),
                           (policy or Policy()).target, "nightly" if compared_with is None else "compare")  # fmt: skip
    try:
        paths = verdicts.write(night, folder)
    except OSError as exc:
        again = ""  # `compare` measured nothing: the same command with another --out
        if night.verb == "nightly":
            command = shlex.join(["embench", "nightly", store.find_run(tonight).inventory, "--resume", tonight])
            again = f" (run {tonight} is stored: `{command} --out DIR` judges it again)"
        raise EmbenchError(f"cannot write the verdict files under {folder}: {exc.strerror or exc}; pass --out a"
                           f" writable folder{again}") from None  # fmt: skip
    return Judgement(night, paths)


def _not_run(plan: list[PlanEntry], recorded: set[str], sweeping: str | None = None) -> list[Comparison]:
    """The series tonight planned and never ran (their device could not be used, or the sweep was cut):
    each is `not comparable` and counts as a failed job, so a lost board is in the summary and the JUnit
    file, not silently missing from them. Of a run another process is still sweeping (`sweeping`, its
    id: a `compare` of a night under way) they are only not measured yet."""
    out = []
    for entry in plan:
        if entry.job_id in recorded:
            continue
        key: SeriesKey = (entry.device, entry.model, entry.precision, entry.runtime, entry.delegate, entry.threads)
        if sweeping:
            why = f"tonight: not measured yet (run {sweeping} is still being swept)"
        else:
            why = "tonight: not run (its device could not be used, or the sweep was cut: see the sweep's output)"
        out.append(Comparison(key, (), (), "not comparable", why, after_job_id=entry.job_id,
                              job_failed=sweeping is None))  # fmt: skip
    return out


def _regressed_histories(
    store: Store, comparisons: list[Comparison], tonight: str
) -> dict[str, tuple[list[Point], list[Step]]]:
    """Each regressed series' history over the nightly runs and tonight, each run read once."""
    slower = {c.key: c.label for c in comparisons if c.verdict == "slower"}
    if not slower:
        return {}
    runs = [*nightly_runs(store, before=tonight), store.find_run(tonight)]
    found = histories(store, "*", runs)
    return {label: (found[key], change_points(found[key])) for key, label in slower.items() if key in found}


def prune_nights(store: Store, keep: int) -> list[str]:
    """Delete the nightly runs older than the newest `keep` (never the pinned baseline); their ids."""
    return prune_runs(store, keep, NIGHTLY)


def prune_runs(store: Store, keep: int, label: str | None = None) -> list[str]:
    """Delete the runs (of `label`, or all) older than the newest `keep`: never the pinned baseline, nor a
    run another embench is sweeping right now; their ids."""
    pinned = store.get_meta(BASELINE_KEY)
    runs = [r for r in store.runs() if label is None or r.label == label]
    old = [r.run_id for r in runs[:-keep] if r.run_id != pinned] if keep < len(runs) else []
    pruned = []
    for run_id in old:
        try:
            store.hold_run(run_id)
        except RunBusy:
            continue
        store.delete_run(run_id)
        pruned.append(run_id)
    return pruned
