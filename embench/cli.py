"""The `embench` command: each verb parses its arguments, calls the library, prints, and exits."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .agents import make_agent
from .agents.bundle import bundled_agent
from .compare import Policy
from .entry import exit_code
from .errors import EXIT_JOBS_FAILED, EXIT_OK, EXIT_REGRESSED, EmbenchError, TransportError
from .inventory import BASELINE_NIGHTS, Device, Inventory, NightlyPolicy, load_inventory
from .plan import make_plan
from .regression import ALPHA, THRESHOLD
from .runtimes import RUNTIMES
from .scores import DEFAULT_LATENCY_BUDGET_MS
from .store import DEFAULT_STORE, RunInfo, Store, is_url, resolve_store_path
from .telemetry.detect import probe_roots, telemetry_lines
from .telemetry.external import ExternalMeter
from .text import printable, save
from .transports import open_transport
from .zoo import DEFAULT_MANIFEST, EDGETPU_COMPILER, KERAS_FORMATS, Zoo


def say(text: str, file: TextIO | None = None) -> None:
    """Print a line; what devices said is in it, so terminal escapes and control characters go."""
    print(printable(text), file=file or sys.stdout)


DEFAULT_REPORTS = Path("reports")


def _zoo_path(inventory: Inventory | None, cli: str | None) -> Path:
    if cli:
        return Path(cli)
    if os.environ.get("EMBENCH_ZOO"):
        return Path(os.environ["EMBENCH_ZOO"])
    if inventory is not None and inventory.zoo:
        return inventory.resolve(inventory.zoo)
    return DEFAULT_MANIFEST


DEFAULT_INVENTORY = Path("inventory.yaml")


def _inventory_store(inventory: Inventory | None) -> str | Path | None:
    """The inventory's store: a postgresql:// URL as written, a file relative to the inventory's folder."""
    if inventory is None or not inventory.store:
        return None
    return inventory.store if is_url(inventory.store) else inventory.resolve(inventory.store)


def _store(args: argparse.Namespace, inventory: Inventory | None = None) -> Store:
    """The store a sweep writes: --store, $EMBENCH_STORE, the inventory's store:, results/embench.sqlite."""
    return Store(resolve_store_path(args.store, _inventory_store(inventory)))


def _read_store(args: argparse.Namespace) -> Store:
    """The store a reading verb opens, resolved as a sweep's is (its --inventory, else ./inventory.yaml
    where there is one, gives store:); a missing file is an error, never a new empty database."""
    return Store(resolve_store_path(args.store, _inventory_store(_reading_inventory(args))), create=False)


def _reading_inventory(args: argparse.Namespace) -> Inventory | None:
    """The inventory whose store: a reading verb takes, if the store is not given otherwise."""
    if args.store or os.environ.get("EMBENCH_STORE"):
        return None
    if args.inventory:
        return load_inventory(args.inventory)
    return load_inventory(str(DEFAULT_INVENTORY)) if DEFAULT_INVENTORY.is_file() else None


def _store_words(store: Store) -> list[str]:
    """`--store PATH` for a printed command, unless the store is the default one."""
    return [] if store.path == DEFAULT_STORE else ["--store", store.where]


# ---------------------------------------------------------------------------- verbs


def cmd_sweep(args: argparse.Namespace) -> int:
    from .progress import make_reporter  # noqa: PLC0415 - rich is only needed here
    from .sweep import run_sweep  # noqa: PLC0415

    inventory = load_inventory(args.inventory)
    zoo = Zoo(_zoo_path(inventory, args.zoo))
    if getattr(args, "dry_run", False):
        return _dry_run(args, inventory, zoo)
    executor = _executor(args)  # a cluster it cannot reach: said before a store or a run is opened
    store = _store(args, inventory)
    reporter = make_reporter(args.quiet)
    with reporter:
        outcome = run_sweep(inventory, zoo, store, reporter, resume=args.resume, build=not args.no_build,
                            resume_command=_resume_command(args, store), label=getattr(args, "label", None),
                            executor=executor)  # fmt: skip
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.counts.items())) or "nothing new"
    done = f" ({outcome.skipped_done} already done)" if outcome.skipped_done else ""
    pushed = f"; pushed {outcome.pushed_bytes / 1e6:.1f} MB" if outcome.pushed_bytes else ""
    say(f"run {outcome.run_id}: {counts}{done}{pushed}; store {store.where}")
    for line in outcome.notes:
        say(f"  {line}", file=sys.stderr)
    for line in outcome.problems:
        say(f"  {line}", file=sys.stderr)
    if outcome.interrupted:
        resume = _resume_command(args, store).format(run=outcome.run_id)
        say(f"interrupted: finished results are stored; continue with `{resume}`", file=sys.stderr)
        return outcome.interrupted
    if not args.quiet:
        say(f"next: {shlex.join(['embench', 'report', '--run', outcome.run_id, *_store_words(store)])}"
            f" (or {shlex.join(['embench', 'show', outcome.run_id, *_store_words(store)])})")  # fmt: skip
    return EXIT_OK if outcome.all_succeeded else EXIT_JOBS_FAILED


def _executor(args: argparse.Namespace) -> Any:
    """What runs the device queues: a lab's Dask cluster with --cluster (connected now), else this host's threads."""
    if not getattr(args, "cluster", None):
        return "threads"
    from .executors import EXECUTORS  # noqa: PLC0415

    return EXECUTORS["dask"](address=args.cluster, worker_wait=args.worker_wait)


def _resume_command(args: argparse.Namespace, store: Store | None = None) -> str:
    """The command that continues this sweep, as the user can paste it ({run}: the run id)."""
    words = ["embench", "sweep", args.inventory, "--resume", "{run}"]
    if getattr(args, "label", None):
        words = ["embench", "nightly", args.inventory, "--resume", "{run}"]
    store_path = store.where if store is not None and store.path != DEFAULT_STORE else args.store
    for flag, value in (("--store", store_path), ("--zoo", args.zoo), ("--cluster", getattr(args, "cluster", None))):
        if value:
            words += [flag, value]
    return " ".join(shlex.quote(w) if w != "{run}" else w for w in words)


def _dry_run(args: argparse.Namespace, inventory: Inventory, zoo: Zoo) -> int:
    """The jobs a sweep would run and what it would skip, and why; nothing is built, run or stored."""
    from .sweep import unavailable_artifacts  # noqa: PLC0415

    plan = make_plan(inventory, zoo)
    done: set[str] = set()
    if args.resume is not None:
        store = Store(resolve_store_path(args.store, _inventory_store(inventory)), create=False)
        run = store.find_run(args.resume or None)
        done = store.done_job_ids(run.run_id)
        say(
            f"resuming run {run.run_id} of {store.where}: {len(done & {j.job_id for j in plan.jobs})} job(s) already done"
        )
    unavailable, missing = unavailable_artifacts(zoo, plan)
    todo = 0
    for job in plan.jobs:
        why = "already done (--resume)" if job.job_id in done else unavailable.get(job.artifact_key)
        if why is None:
            todo += 1
        say(f"{'skip' if job.job_id in done else ('unsupported' if why else 'run'):11s} {job.label}"
            + (f": {why}" if why else ""))  # fmt: skip
    for line in plan.left_out:
        say(f"{'left out':11s} {line}")
    build = (
        f"; {len(missing)} model file(s) would be built first ({zoo.build_command(sorted({m for m, _, _ in missing}))})"
    )
    say(f"dry run: {len(plan.jobs)} job(s) planned on {len({j.device for j in plan.jobs})} device(s), {todo} to run,"
        f" {len(plan.jobs) - todo} skipped or unsupported, {len(plan.left_out)} combination(s) left out"
        + (build if missing else "") + "; nothing was run")  # fmt: skip
    return EXIT_OK


def _number(parse: Callable[[str], float], ok: Callable[[float], bool], what: str) -> Callable[[str], float]:
    """An argparse type: `parse` the text, and refuse in one line what is not `what`."""

    def convert(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return convert


_positive_ms = _number(float, lambda v: v > 0, "a latency in milliseconds above 0, e.g. 30")
_ratio = _number(float, lambda v: v >= 1, "a ratio of 1 or more, e.g. 1.05")
_probability = _number(float, lambda v: 0 < v < 1, "a probability between 0 and 1, e.g. 0.01")
_count = _number(int, lambda v: v >= 1, "a number of nights of 1 or more, e.g. 10")
_seconds = _number(float, lambda v: v > 0, "a number of seconds above 0, e.g. 60")


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report  # noqa: PLC0415 - matplotlib and pandas load only here

    store = _read_store(args)
    paths = write_report(store, args.run, Path(args.out), args.latency_budget, args.op_files)
    for kind, path in paths.items():
        say(f"{kind:9s} {path}")
    return EXIT_OK


def cmd_study(args: argparse.Namespace) -> int:
    """The study's Markdown on stdout (its headline first); --out also writes study.md and study.html."""
    from .api import report_data  # noqa: PLC0415
    from .report.pages import study_page  # noqa: PLC0415
    from .report.study import build_study  # noqa: PLC0415
    from .report.study_render import study_markdown  # noqa: PLC0415

    store = _read_store(args)
    data = report_data(store, args.run)
    if data.results.empty:
        raise EmbenchError(f"run {data.run.run_id} in {store.where} holds no results: nothing to study")
    study = build_study(data)
    text = study_markdown(data, study)
    if args.out:
        folder = Path(args.out) / data.run.run_id
        try:
            folder.mkdir(parents=True, exist_ok=True)
            save(folder / "study.md", text)
            save(folder / "study.html", study_page(data, study))
        except OSError as exc:
            raise EmbenchError(f"cannot write the study under {folder}: {exc.strerror or exc}; pass --out a"
                               " writable folder") from None  # fmt: skip
        say(f"study     {folder / 'study.html'}", file=sys.stderr)
    say(text)
    return EXIT_OK


def _study_verb(
    verb: Callable[..., argparse.ArgumentParser], reading: Callable[[argparse.ArgumentParser], None]
) -> None:
    sp = verb("study", cmd_study, "which architecture suits which processor: speedups with intervals, compatibility,"
              " and where the time goes (op classes from per-op profiles)")  # fmt: skip
    sp.add_argument("run", nargs="?", help="run id or a unique prefix (default: the latest run)")
    reading(sp)
    sp.add_argument("--out", help="also write study.md and study.html under OUT/<run>/")


def _policy(args: argparse.Namespace, inventory: Inventory | None = None) -> Policy:
    """The inventory's nightly: section, with what the command line sets on top."""
    n = inventory.nightly if inventory is not None else NightlyPolicy()
    return Policy(threshold=args.threshold if args.threshold is not None else n.threshold,
                  alpha=args.alpha if args.alpha is not None else n.alpha, fdr_q=n.fdr_q,
                  thresholds=dict(n.thresholds), target=n.target, noise_floor=n.noise_floor)  # fmt: skip


def _writable(folder: Path, what: str) -> None:
    """Before the work: `folder` (an --out) can be made and written to; a typo there should not cost a
    night's measurements, nor end in a traceback after them."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".embench-probe-"):
            pass
    except OSError as exc:
        reason = "it is not a folder" if folder.exists() and not folder.is_dir() else exc.strerror or exc
        raise EmbenchError(f"cannot write {what} under {folder}: {reason}; pass --out a writable folder") from None


def cmd_compare(args: argparse.Namespace) -> int:
    from .nightly import judge, pinned_baseline  # noqa: PLC0415
    from .report.verdicts import markdown  # noqa: PLC0415

    store = _read_store(args)
    before = pinned_baseline(store) if args.before == "baseline" else store.find_run(args.before)
    if before is None:
        raise EmbenchError(f"no baseline is pinned in {store.where}; pin one with `embench baseline set RUN`")
    after = store.find_run(args.after)
    if after.run_id == before.run_id:
        first = "the pinned baseline" if args.before == "baseline" else args.before
        second = "the latest run" if args.after is None else args.after
        others = [r.run_id for r in store.runs() if r.run_id != after.run_id]
        fix = "no other run is there: sweep again first"
        if others:
            words = shlex.join(["embench", "compare", args.before, others[-1], *_store_words(store)])
            fix = f"compare it with another, e.g. `{words}`"
        raise EmbenchError(f"{first} and {second} are the same run ({after.run_id}) in {store.where}; {fix}")
    out = Path(args.out or DEFAULT_REPORTS / "compare")
    _writable(out, "the verdict files")
    folder = out / f"{before.run_id}_vs_{after.run_id}"
    result = judge(store, after.run_id, folder, policy=_policy(args), baseline=[before])
    if args.json:
        say(result.paths["json"].read_text().rstrip())
    else:
        say(markdown(result.night).rstrip())
        say(f"files: {result.paths['markdown'].parent}")
    return EXIT_OK


def cmd_nightly(args: argparse.Namespace) -> int:
    from .nightly import NIGHTLY, judge, nightly_lock, pinned_baseline, prune_nights  # noqa: PLC0415
    from .regression import MIN_REPETITIONS, over  # noqa: PLC0415

    inventory = load_inventory(args.inventory)
    store = _store(args, inventory)
    out = Path(args.out or DEFAULT_REPORTS / "nightly")
    _writable(out, "the verdict files")
    pinned = pinned_baseline(store)  # a pinned baseline that is gone is said before the night, not after it
    resumed = _resumed_night(args, store, pinned)
    if inventory.sweep.run.repetitions < MIN_REPETITIONS:
        say(f"embench: warning: {args.inventory}: sweep.run.repetitions is {inventory.sweep.run.repetitions}; a"
            f" nightly verdict needs {MIN_REPETITIONS} or more (10 is a good start, docs/nightly.md): tonight is"
            " stored, and its series are judged inconclusive", file=sys.stderr)  # fmt: skip
    with nightly_lock(store):
        args.label = NIGHTLY
        swept = cmd_sweep(args)
        if swept not in (EXIT_OK, EXIT_JOBS_FAILED):
            return swept
        nights = args.nights if args.nights is not None else inventory.nightly.nights
        tonight = resumed or store.find_run(None).run_id
        folder = out / tonight
        result = judge(store, tonight, folder, nights, _policy(args, inventory))
        pruned = prune_nights(store, inventory.nightly.keep) if inventory.nightly.keep else []
    counts = ", ".join(f"{n} {v}" for v, n in result.night.counts.most_common()) or "no series"
    able, judged = result.night.coverage
    can = f"; {able}/{judged} series can find {over(result.night.target)}" if judged else ""
    say(f"nightly {result.night.run_id}: {counts}{can}; judged against {result.night.baseline}")
    for c in result.night.regressed:
        say(f"  REGRESSED {c.label}: {c.why}" + (f"; changed: {'; '.join(c.changes)}" if c.changes else ""))
    for kind, path in result.paths.items():
        say(f"{kind:9s} {path}")
    if pruned:
        say(f"pruned {len(pruned)} old nightly run(s) (nightly.keep: {inventory.nightly.keep})")
    if result.night.regressed:
        return EXIT_REGRESSED
    return swept


def _resumed_night(args: argparse.Namespace, store: Store, pinned: RunInfo | None) -> str | None:
    """The run `nightly --resume` continues (None for a new night): a nightly one, said before it sweeps.
    A plain sweep's run resumed as a night would be judged, yet never be a later night's baseline."""
    from .nightly import NIGHTLY  # noqa: PLC0415

    if args.resume is None:
        return None
    run = store.find_run(args.resume or None)
    if run.label != NIGHTLY:
        words = shlex.join(["embench", "sweep", args.inventory, "--resume", run.run_id, *_store_words(store)])
        raise EmbenchError(f"run {run.run_id} in {store.where} is a sweep, not a nightly run: continue it with"
                           f" `{words}`, then judge it with `embench compare`; or start tonight's with"
                           f" `embench nightly {shlex.quote(args.inventory)}`")  # fmt: skip
    if pinned is not None and pinned.run_id == run.run_id:
        raise EmbenchError(f"run {run.run_id} is the pinned baseline of {store.where}: a night is not judged against"
                           " itself; pin another (`embench baseline set RUN`) or `embench baseline clear`")  # fmt: skip
    return run.run_id


def cmd_baseline(args: argparse.Namespace) -> int:
    from .nightly import pinned_baseline, set_baseline  # noqa: PLC0415

    store = _read_store(args)
    if args.action == "set":
        if not args.run:
            raise EmbenchError("`embench baseline set` needs a run: `embench baseline set RUN` (see `embench runs`)")
        info, warning = set_baseline(store, args.run)
        say(f"baseline: {info.run_id if info else '-'} (every nightly is now judged against it)")
        if warning:
            say(f"embench: warning: {warning}", file=sys.stderr)
    elif args.action == "clear":
        set_baseline(store, None)
        say("baseline: none (nightlies are judged against the last good nights)")
    else:
        pinned = pinned_baseline(store)
        say(f"baseline: {pinned.run_id if pinned else 'none (the last good nights)'}")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from .compare import series_label  # noqa: PLC0415
    from .history import change_points, histories, matches, nightly_runs  # noqa: PLC0415
    from .report.verdicts import history_png  # noqa: PLC0415

    store = _read_store(args)
    runs = nightly_runs(store, label=None if args.all_runs else "nightly")
    every = histories(store, "*", runs)  # read once: what matches, and what there is for the message
    found = {key: points for key, points in every.items() if matches(key, args.series)}
    if not found:
        which = "runs" if args.all_runs else "nightly runs"
        if not runs:
            raise EmbenchError(f"{store.where} has no finished {which}: run `embench nightly INVENTORY` first"
                               + ("" if args.all_runs else ", or pass --all-runs to read every run"))  # fmt: skip
        labels = [series_label(key) for key in every]
        example = "'mobilenet_v2/*/t1'"
        if labels:
            _, model, *_, threads = labels[0].split("/")
            example = f"'{labels[0]}', or '{model}/*/{threads}'"
        raise EmbenchError(f"no series matches {args.series!r} in the finished {which} of {store.where}"
                           + ("" if args.all_runs else " (--all-runs for every run)") + f"; {len(labels)} series are"
                           f" there, named device/model/precision/runtime:delegate/tN, e.g. {example}")  # fmt: skip
    out = Path(args.out) if args.out else None
    if out is not None:
        _writable(out, "the figures")
    from .report.pages import file_slugs  # noqa: PLC0415

    names = file_slugs([series_label(key) for key in found], fallback="series")
    for key, points in found.items():
        steps = change_points(points)
        label = series_label(key)
        say(f"{label}")
        marks = {s.index: s for s in steps}
        for i, p in enumerate(points):
            step = f"  ← step ×{marks[i].ratio:.3f}" if i in marks else ""
            say(f"  {p.run_id}  {p.median_ms:9.4g} ms  [{p.low_ms:.4g}, {p.high_ms:.4g}]  R={p.repetitions}{step}")
        if out is not None:
            path = out / f"{names[label]}.png"
            path.write_bytes(history_png(label, points, steps))
            say(f"  figure {path}")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    store = _read_store(args)
    if args.action == "prune":
        from .nightly import prune_runs  # noqa: PLC0415

        if args.keep is None:
            raise EmbenchError("`embench runs prune` needs --keep N: the newest N runs are kept, the rest deleted")
        pruned = prune_runs(store, int(args.keep))
        say(f"pruned {len(pruned)} run(s) of {store.where}, kept the newest {int(args.keep)} (and a pinned baseline):"
            f" {', '.join(pruned) or 'nothing to prune'}")  # fmt: skip
        return EXIT_OK
    runs = store.runs()
    if args.json:
        print(json.dumps([r.__dict__ for r in runs], indent=1))
        return EXIT_OK
    for run in runs:
        label = f" [{run.label}]" if run.label else ""
        say(f"{run.run_id}  {run.state:11s} {run.recorded:4d}/{run.planned:<4d} {run.inventory}{label}")
    if not runs:
        say(f"no runs in {store.where} yet")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """A run in the terminal: its facts, each device's jobs by status with the fastest configurations,
    and every job that did not succeed."""
    from .api import report_data  # noqa: PLC0415
    from .report.render import run_facts  # noqa: PLC0415
    from .report.tables import config_label  # noqa: PLC0415

    store = _read_store(args)
    data = report_data(store, args.run)
    frame = data.results
    for key, value in run_facts(data):
        say(f"{key:9s} {value}")
    for device, rows in frame.groupby("device", sort=True):
        counts = ", ".join(f"{n} {s}" for s, n in rows["status"].value_counts().items())
        say(f"\n{device}: {len(rows)} job(s): {counts}")
        measured = rows[rows["median_ms"].notna()]
        for model, group in measured.groupby("model", sort=True):
            best = group.sort_values("median_ms").iloc[0]
            speed = f", {best['speedup']:.2f}× the baseline" if best["speedup"] == best["speedup"] else ""
            say(f"  {model:24s} fastest {best['median_ms']:9.4g} ms  {best['precision']} {config_label(best)}{speed}")
        for _, row in rows[~rows["status"].isin(["ok"])].iterrows():
            say(
                f"  {row['model']} {row['precision']} {config_label(row)}: {row['status']}: {row['message'] or row['notes']}"
            )
    words = ["embench", "report", "--run", data.run.run_id, *_store_words(store)]
    say(f"\nnext: {shlex.join(words)}")
    return EXIT_OK


def cmd_devices(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory)
    unreachable = 0
    for device in inventory.devices:
        transport = open_transport(device)
        try:
            info = make_agent(device, transport).probe(_all_libraries(device), timeout=args.timeout,
                                                       roots=probe_roots(device))  # fmt: skip
        except TransportError as exc:
            if args.json:
                print(json.dumps({"device": device.name, "reachable": False, "error": printable(str(exc))}))
            else:
                say(f"{device.name:16s} {device.transport:6s} UNREACHABLE: {exc}")
            unreachable += 1
            continue
        finally:
            transport.close()
        if args.json:
            # JSON escapes control characters: no printable() needed
            print(json.dumps({"device": device.name, "reachable": True, **info.to_dict()}))
            continue
        f = info.facts
        mem = f"{f.mem_total_kb / 1048576:.1f} GiB" if f.mem_total_kb else "?"
        say(f"{device.name:16s} {device.transport:6s} reachable · {f.board or f.cpu} · {f.cores} cores · {mem}")
        say(f"{'':23s} {f.os} · kernel {f.kernel} · Python {f.python}")
        for name, rt in info.runtimes.items():
            detail = rt.error or f"{rt.package} {rt.version}"
            extra = f" · providers {', '.join(rt.providers)}" if rt.providers else ""
            say(f"{'':23s} {name}: {detail}{extra}")
        for name, lib in info.delegates.items():
            state = "loads" if lib.loadable else f"not loadable ({lib.error})"
            say(f"{'':23s} delegate {name}: {lib.library} {state}")
        meters = [ExternalMeter(device.name, t.options) for t in device.meters()]
        for line in telemetry_lines(device, info.telemetry, {m.label: m.check() for m in meters}):
            say(f"{'':23s} {line}")
    return EXIT_JOBS_FAILED if unreachable else EXIT_OK  # a lab check in a script must see a dead device


def _all_libraries(device: Device) -> dict[str, str]:
    """Every delegate library any runtime may load on this device, to check whether each loads."""
    out = {}
    for rt in RUNTIMES.values():
        names = [*rt.DELEGATES, *(device.delegate_libraries if rt.CUSTOM_LIBRARIES else ())]
        out.update({name: lib for name in names if (lib := rt.library(name, device.delegate_libraries))})
    return out


def cmd_cache(args: argparse.Namespace) -> int:
    """Delete files from the devices' caches that the inventory's sweep no longer needs."""
    inventory = load_inventory(args.inventory)
    zoo = Zoo(_zoo_path(inventory, args.zoo))
    plan = make_plan(inventory, zoo)
    needed: dict[str, set[str]] = {}
    for job in plan.jobs:
        artifact = zoo.artifact(*job.artifact_key)
        if artifact is not None:
            needed.setdefault(job.device, set()).add(artifact.sha256)
    _, agent_sha = bundled_agent()
    for device in inventory.selected_devices():
        transport = open_transport(device)
        try:
            files, freed = transport.prune_cache(needed.get(device.name, set()) | {agent_sha})
        except TransportError as exc:
            say(f"{device.name}: {exc}", file=sys.stderr)
            continue
        finally:
            transport.close()
        say(f"{device.name}: removed {files} file(s), {freed / 1e6:.1f} MB")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory) if args.inventory else None
    zoo = Zoo(_zoo_path(inventory, args.zoo))
    names = args.names or zoo.names
    for name in names:
        zoo.entry(name)  # unknown names fail before anything is built
    if args.action == "build":
        _build_models(zoo, names, args.force, args.quiet)
    for name in names:
        for artifact in zoo.artifacts_of(name):
            fmt, _, precision = artifact.partition("-")
            built = zoo.artifact(name, fmt, precision)
            failed = zoo.failure(name, fmt, precision)
            if failed is not None:
                say(f"{name:24s} {artifact:20s} cannot be built: {failed}")
            elif built is None and fmt == "tflite_edgetpu" and not shutil.which(EDGETPU_COMPILER):
                say(f"{name:24s} {artifact:20s} not built (needs {EDGETPU_COMPILER}, or supply files.{artifact})")
            elif built is None:
                say(f"{name:24s} {artifact:20s} not built (embench models build {name})")
            else:
                say(f"{name:24s} {artifact:20s} {built.size / 1e6:7.2f} MB  sha256 {built.sha256[:12]}  {built.path}")
    return EXIT_OK


def _build_models(zoo: Zoo, names: list[str], force: bool, quiet: bool) -> None:
    """Build what is missing, with the sweep's display: a bar on a terminal, `[build i/N]` lines otherwise."""
    from .progress import make_reporter  # noqa: PLC0415
    from .zoo_build import build_model  # noqa: PLC0415

    work = []
    for name in names:
        if zoo.entry(name).files:
            continue
        wanted = [(f, p) for f, ps in KERAS_FORMATS.items() for p in ps]
        if shutil.which(EDGETPU_COMPILER):
            wanted.append(("tflite_edgetpu", "int8"))
        if not force:
            wanted = [(f, p) for f, p in wanted if zoo.artifact(name, f, p) is None and zoo.failure(name, f, p) is None]
        if wanted:
            work.append((name, wanted))
    total = sum(len(w) for _, w in work)
    if not total:
        return
    done = 0

    def step(label: str) -> None:
        nonlocal done
        reporter.building(label, done, total)
        done += 1

    with make_reporter(quiet) as reporter:
        for name, wanted in work:
            build_model(zoo, name, wanted, step)
        reporter.building("done", total, total)


# ---------------------------------------------------------------------------- parser


def _cluster_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--cluster", metavar="ADDRESS", default=os.environ.get("EMBENCH_CLUSTER") or None,
                    help="run the jobs on a lab's Dask cluster, e.g. tcp://lab:8786, whose `embench worker`s drive the"
                         " devices (default: $EMBENCH_CLUSTER, else this host runs them; docs/lab.md)")  # fmt: skip
    sp.add_argument("--worker-wait", type=_seconds, default=60.0, metavar="SECONDS",
                    help="--cluster: how long a device's jobs wait for a worker that offers it before they are left"
                         " for --resume (default: %(default)g)")  # fmt: skip


def _lab_verbs(verb: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser],
               reading: Callable[[argparse.ArgumentParser], None]) -> None:  # fmt: skip
    """worker and store: the verbs of docs/lab.md."""
    sp = verb("worker", cmd_worker, "serve this lab host's devices to a Dask scheduler (one thread per device)")
    sp.add_argument("inventory", help="the lab's inventory.yaml")
    sp.add_argument("--scheduler", required=True, metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://lab:8786")
    sp.add_argument("--devices", metavar="A,B", help="the devices this host drives (default: every device whose"
                    " host: is this host's name, --name)")  # fmt: skip
    sp.add_argument("--name", help="this worker's name, unique in the lab (default: the host's name)")

    sp = verb("store", cmd_store, "upgrade a results store's tables in place to this embench's schema")
    sp.add_argument("action", choices=["upgrade", "version"])
    reading(sp)


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import serve, worker_devices  # noqa: PLC0415 - imports Dask

    inventory = load_inventory(args.inventory)
    name = args.name or socket.gethostname()
    devices = worker_devices(inventory, args.devices, name)
    return serve(args.scheduler, devices, name)


def cmd_store(args: argparse.Namespace) -> int:
    from .store_schema import STORE_SCHEMA_VERSION  # noqa: PLC0415

    inventory = _reading_inventory(args)
    target = resolve_store_path(args.store, _inventory_store(inventory))
    if args.action == "version":
        store = Store(target, create=False, upgrade=False)
        now = store.stale if store.stale is not None else STORE_SCHEMA_VERSION
        say(f"{store.where}: store schema {now}; this embench writes {STORE_SCHEMA_VERSION}")
        return EXIT_OK
    store = Store(target, create=False, upgrade=True)
    if store.upgraded_from is None:
        say(f"{store.where}: already at store schema {STORE_SCHEMA_VERSION}; nothing to do")
    else:
        say(
            f"{store.where}: upgraded from store schema {store.upgraded_from} to {STORE_SCHEMA_VERSION}, every run kept"
        )
    return EXIT_OK


def _nightly_verbs(verb: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser],
                   reading: Callable[[argparse.ArgumentParser], None]) -> None:  # fmt: skip
    """compare, nightly, baseline, history: the verbs of docs/nightly.md."""

    def verdict_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--threshold", type=_ratio, metavar="RATIO", help="a slowdown smaller than this ratio is"
                        f" not called (default: the inventory's nightly.threshold, else {THRESHOLD:g})")  # fmt: skip
        sp.add_argument("--alpha", type=_probability, help="each series' one-sided tests (default: the inventory's"
                        f" nightly.alpha, else {ALPHA:g})")  # fmt: skip
        sp.add_argument("--out", help="folder for the verdict files (default: reports/nightly/RUN/ for nightly,"
                        " reports/compare/A_vs_B/ for compare)")  # fmt: skip

    sp = verb("compare", cmd_compare, "compare two runs series by series: ratio with its CI, p, verdict, what changed")
    sp.add_argument("before", help="run id or unique prefix, or 'baseline' for the pinned baseline")
    sp.add_argument("after", nargs="?", help="run id or unique prefix (default: the latest run)")
    reading(sp)
    sp.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")
    verdict_options(sp)

    sp = verb("nightly", cmd_nightly, "sweep, then judge tonight against the last good nights or the pinned baseline"
              " (exit 5 when a series regressed, 3 when jobs failed, 6 when another nightly runs)")  # fmt: skip
    sp.add_argument("inventory", help="inventory.yaml")
    sp.add_argument("--store", help="results database (default: $EMBENCH_STORE, the inventory's store:, or"
                    " results/embench.sqlite)")  # fmt: skip
    sp.add_argument("--zoo", help="model zoo manifest (default: the inventory's zoo:, else models/zoo.yaml)")
    sp.add_argument("--nights", type=_count, help="judge against the last N good nights (default: the inventory's"
                    f" nightly.nights, else {BASELINE_NIGHTS})")  # fmt: skip
    sp.add_argument("--resume", nargs="?", const="", metavar="RUN", help="continue an interrupted nightly run")
    sp.add_argument("--no-build", action="store_true", help="do not build missing models")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output (for cron)")
    _cluster_options(sp)
    verdict_options(sp)

    sp = verb("baseline", cmd_baseline, "pin the run every nightly is judged against, clear it, or show it")
    sp.add_argument("action", choices=["set", "clear", "show"])
    sp.add_argument("run", nargs="?", help="run id or unique prefix (for set)")
    reading(sp)

    sp = verb("history", cmd_history, "a series' medians over the nightly runs, with CIs and change points")
    sp.add_argument("series", help="device/model/precision/runtime:delegate/tN, a glob, or any part of it")
    reading(sp)
    sp.add_argument("--all-runs", action="store_true", help="every finished run, not only nightly ones")
    sp.add_argument("--out", help="also draw one figure per series into this folder")


def _zoo_verbs(verb: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]) -> None:
    """cache and models: the device caches and the zoo."""
    sp = verb("cache", cmd_cache, "prune the devices' model caches to what the sweep needs")
    sp.add_argument("action", choices=["prune"])
    sp.add_argument("inventory", help="inventory.yaml")
    sp.add_argument("--zoo", help="model zoo manifest (default: the inventory's zoo:, else models/zoo.yaml)")

    sp = verb("models", cmd_models, "list or build the model zoo")
    sp.add_argument("action", choices=["list", "build"])
    sp.add_argument("names", nargs="*", help="models (default: all in the manifest)")
    sp.add_argument("--zoo", help="zoo manifest (default: models/zoo.yaml of this repository)")
    sp.add_argument("--inventory", help="take the zoo: of this inventory")
    sp.add_argument("--force", action="store_true", help="rebuild even if up to date")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


class _Verb(argparse.ArgumentParser):
    """A verb's parser that keeps its options by name (argparse keeps them privately): what
    `_inventory_as_option` reads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: dict[str, argparse.Action] = {}  # before argparse adds -h through add_argument
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options.update(dict.fromkeys(action.option_strings, action))
        return action


def _parser() -> tuple[argparse.ArgumentParser, dict[str, _Verb]]:
    """The parser, and each verb's own by name."""
    p = argparse.ArgumentParser(prog="embench", description="How a model really runs on each device of a lab.")
    p.add_argument("--version", action="version", version=f"embench {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Verb)
    verbs: dict[str, _Verb] = {}

    def verb(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = verbs[name] = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    store_help = "results database (default: $EMBENCH_STORE, the inventory's store:, or results/embench.sqlite)"

    def reading(sp: argparse.ArgumentParser) -> None:
        """--store and --inventory of a verb that reads the store (and never creates one)."""
        sp.add_argument("--store", help=store_help)
        sp.add_argument("--inventory", help="take the store: of this inventory (default: ./inventory.yaml, where"
                        " there is one); a bare word ending in .yaml is taken as this")  # fmt: skip

    sp = verb("sweep", cmd_sweep, "run every job of an inventory's sweep and store the results")
    sp.add_argument("inventory", help="inventory.yaml")
    sp.add_argument("--store", help=store_help)
    sp.add_argument("--zoo", help="model zoo manifest (default: the inventory's zoo:, else models/zoo.yaml)")
    sp.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="RUN",
        help="continue a run (default: the latest), skipping finished jobs",
    )
    sp.add_argument(
        "--no-build", action="store_true", help="do not build missing models; fail and say which command builds them"
    )
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress output (for cron)")
    _cluster_options(sp)
    sp.add_argument("--dry-run", action="store_true", help="list the jobs it would run and what it would skip, and"
                    " why; build, run and store nothing")  # fmt: skip

    sp = verb("report", cmd_report, "write the HTML, Markdown and CSV report of a run")
    sp.add_argument("--run", help="run id or a unique prefix (default: the latest run)")
    reading(sp)
    sp.add_argument("--out", default=str(DEFAULT_REPORTS), help="folder for reports (default: reports/)")
    sp.add_argument("--latency-budget", type=_positive_ms, default=DEFAULT_LATENCY_BUDGET_MS, metavar="MS",
                    help="the best accuracy within this median latency, per device (default: %(default)g ms,"
                         " as LPIRC's mobile track)")  # fmt: skip
    sp.add_argument("--op-files", action="store_true", help="write ops.csv and the Model Explorer node data at any"
                    " size (default: for runs of up to 24 device × model pairs)")  # fmt: skip

    _study_verb(verb, reading)
    _nightly_verbs(verb, reading)
    _lab_verbs(verb, reading)

    sp = verb("runs", cmd_runs, "list the runs in the results database, or prune old ones")
    sp.add_argument("action", nargs="?", choices=["list", "prune"], default="list",
                    help="list (default), or prune: delete all but the newest --keep runs")  # fmt: skip
    sp.add_argument("--keep", type=_count, metavar="N", help="prune: how many of the newest runs to keep")
    sp.add_argument("--json", action="store_true", help="list as JSON")
    reading(sp)

    sp = verb("show", cmd_show, "a run's summary in the terminal: each device's jobs, fastest configurations, failures")
    sp.add_argument("run", nargs="?", help="run id or a unique prefix (default: the latest run)")
    reading(sp)

    sp = verb(
        "devices",
        cmd_devices,
        "list the inventory's devices with reachability, facts and runtimes (exit 3 when one is unreachable)",
    )
    sp.add_argument("inventory", nargs="?", default="inventory.yaml", help="inventory.yaml (default: ./inventory.yaml)")
    sp.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each device (default: 60)")
    sp.add_argument("--json", action="store_true", help="one JSON object per device")

    _zoo_verbs(verb)
    return p, verbs


YAML_SUFFIXES = (".yaml", ".yml")


def _inventory_as_option(verbs: dict[str, _Verb], argv: Sequence[str]) -> list[str]:
    """`embench report inventory.yaml`, typed as `embench sweep inventory.yaml` is: a verb that takes the
    inventory by --inventory (report, show, compare, history, …) takes a YAML file given where a run,
    a series or nothing is expected as that --inventory. Only bare words ending in .yaml/.yml move;
    an option's value (`--out x.yaml`, `--inv lab.yaml` as argparse abbreviates) does not, and nothing
    moves when --inventory is given."""
    words = list(argv)
    sub = verbs.get(words[0]) if words else None
    options = sub.options if sub is not None else {}
    if "--inventory" not in options:
        return words

    def option(word: str) -> argparse.Action | None:  # as argparse reads it: the name, or a unique prefix of one
        name = word.split("=", 1)[0]
        hits = {a for s, a in options.items() if s == name or (name.startswith("--") and s.startswith(name))}
        return hits.pop() if len(hits) == 1 else None

    if any(option(w) is options["--inventory"] for w in words[1:] if w.startswith("--")):
        return words
    moved: list[str] = []
    kept, i = [words[0]], 1
    while i < len(words):
        word = words[i]
        action = option(word) if word.startswith("-") else None
        if action is not None and action.nargs != 0 and "=" not in word and i + 1 < len(words):  # and its value
            kept += [word, words[i + 1]]
            i += 2
            continue
        if word == "--":
            kept += words[i:]
            break
        (moved if not word.startswith("-") and word.lower().endswith(YAML_SUFFIXES) else kept).append(word)
        i += 1
    if len(moved) != 1:  # none, or two inventories: argparse says what it makes of them
        return words
    return [*kept, "--inventory", moved[0]]


def main(argv: Sequence[str] | None = None) -> int:
    parser, verbs = _parser()
    args = parser.parse_args(_inventory_as_option(verbs, sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except EmbenchError as exc:
        say(f"embench: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        say("embench: interrupted", file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
