"""Rebuild throughput: a fresh generation from a log of realistic events.

    python -m bench.rebuild [--events 1000000] [--backends sqlite,postgresql] [--rounds 3]

Per backend: appends a realistic synthetic forum stream (bench/ingest.py's generator:
structure, roles, thousands of members, Markdown bodies, edits, deletes, moderation,
reactions, duplicates) to a fresh log and projects it into generation 1, as a running
appview would have. Then, in a child process of its own (so its peak memory is the
rebuild's alone), measures in the same run:

- baseline: reading and decoding the whole log (``iter_from``), the floor of any rebuild;
- rebuild: ``RebuildManager.run()``: generation 2 from position 0, catch-up, switch
  (events/s of log events and wall time up to the switch; retiring generation 1 after
  its grace period is not counted), peak RSS of the process and of the replay's worker
  process (REBUILD_WORKER=auto puts a replay of this size in one, ADR 0007).

The pair runs ``--rounds`` times, alternated (baseline, rebuild, baseline, rebuild, ...;
each rebuild builds the next generation from position 0 after the previous one's
retirement is over); every round is printed, and the verdicts are on the medians: one
read-and-decode pass varies by half from one run to the next on a shared machine, so a
single pair's ratio said more about the machine's minute than about the code.

Each round also times each projection's replay (the worker replays them one after the
other): the search projection's share is its replay over the rest of the rebuild.

Targets (2 cores, 1,000,000 events): >= 20,000 events/s on SQLite, >= 12,000 on
PostgreSQL, peak memory < 500 MB, rebuild rate >= 0.4 of the read-and-decode baseline,
the search projection's share <= 0.25.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from appview.bootstrap import Services, bootstrap
from appview.rebuilds import RebuildRun
from appview.settings import Settings
from bench.ingest import PG_URL, _drop_schemas, generate
from bench.settle import settle, vacuum
from projections.generations import GenerationalReadModels
from projections.runner import project_from_start

TARGETS = {"sqlite": 20_000, "postgresql": 12_000}
MEMORY_TARGET_MB = 500
RATIO_TARGET = 0.4
SEARCH_SHARE_TARGET = 0.25  # the search projection adds at most a quarter to a rebuild


def settings_for(backend: str, workdir: Path, schema: str, forum_did: str) -> Settings:
    if backend == "sqlite":
        return Settings(data_dir=workdir / schema, forum_did=forum_did)
    return Settings(data_dir=workdir / schema, database_url=PG_URL, database_schema=schema,
                    forum_did=forum_did)


def prepare(settings: Settings, lines: list[str]) -> int:
    services = bootstrap(settings)
    try:
        appender = services.appender(batch_size=2000)
        for number, line in enumerate(lines, start=1):
            appender.feed(line, number)
        appender.flush()
        # as `atbb project` projects a fresh appview's log: a bulk load, its batches
        # prepared by child processes
        project_from_start(services.event_log, services.projections, services.read_models,
                           batch_size=10_000, open_log=services.open_log)
        stored = services.event_log.count()
    finally:
        services.close()
    vacuum(settings.database_url, settings.database_schema or "")
    return stored


def peak_rss_kb() -> int:
    """This process's own peak resident set. Not ``ru_maxrss``: Linux carries the
    parent's peak across fork and exec into it, and the parent holds the whole generated
    stream (2.3 KB a line), which made a 1M-event rebuild look 2.2 GB large."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: an upper bound


def measure(settings: Settings, rounds: int) -> list[dict[str, float]]:
    """In the child: ``rounds`` times the baseline, then the rebuild; each round's
    figures as a dict (peak memory is the process's so far)."""
    services = bootstrap(settings)
    try:
        figures: list[dict[str, float]] = []
        for _ in range(rounds):
            figures.append(measure_round(services, settings))
            # the retired generation's grace period and drop are not the next round's
            models = services.read_models
            assert isinstance(models, GenerationalReadModels)
            models.settle()
    finally:
        services.close()
    return figures


def measure_round(services: Services, settings: Settings) -> dict[str, float]:
    settle(settings.database_url)
    started = time.perf_counter()
    decoded = sum(1 for _ in services.event_log.iter_from(0, page=10_000))
    decode_seconds = time.perf_counter() - started
    assert services.rebuilds is not None
    switched: list[float] = []
    replayed: list[float] = []
    # when each projection's replay ended: the worker replays them one after the other,
    # each over the whole log, so the k-th has ended when k shares of the total are done
    names = [projection.name for projection in services.projections]
    ended: dict[str, float] = {}

    def note(run: RebuildRun) -> None:
        if run.phase == "replaying" and run.events_total:
            share = run.events_total / len(names)
            for k, name in enumerate(names, start=1):
                if name not in ended and run.events_done >= k * share:
                    ended[name] = time.perf_counter()
        # reported once readers are switched, before the old generation's retirement
        # waits out its grace period (which is not rebuild work)
        if run.phase == "switching" and not switched:
            switched.append(time.perf_counter())
        # every event applied: what follows is the end of the bulk load (indexes,
        # recounts, statistics), the catch-up and the switch
        if (run.phase == "replaying" and not replayed and run.events_total
                and run.events_done >= run.events_total):
            replayed.append(time.perf_counter())

    settle(settings.database_url)
    started = time.perf_counter()
    run = services.rebuilds.run(reason="bench", on_progress=note)
    rebuild_seconds = switched[0] - started
    replay_seconds = (replayed or switched)[0] - started
    if run.status != "completed":
        raise RuntimeError(f"rebuild failed: {run.error}")
    # the replay runs in a worker process of its own at this size (ADR 0007): its peak
    # (ru_maxrss of the waited-for children, which starts from ours at its fork: an
    # upper bound) counts as much as ours
    peak_kb = max(peak_rss_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    spans, last = {}, started
    for name in names:
        spans[name] = ended.get(name, last) - last
        last = ended.get(name, last)
    search = spans.get("search", 0.0)
    return {"events": decoded, "decode_rate": decoded / decode_seconds,
            **{f"{name}_seconds": seconds for name, seconds in spans.items()},
            "search_share": search / max(1e-9, rebuild_seconds - search),
            "rebuild_rate": decoded / rebuild_seconds, "rebuild_seconds": rebuild_seconds,
            "replay_seconds": replay_seconds,
            "peak_mb": peak_kb / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline and rebuild pairs, alternated; verdicts on medians")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child's settings
    args = parser.parse_args(argv)
    if args.measure:
        given = json.loads(args.measure)
        settings = Settings(**{**given, "data_dir": Path(given["data_dir"])})
        print(json.dumps(measure(settings, args.rounds)))
        return 0

    started = time.perf_counter()
    lines, forum_did = generate(args.events)
    print(f"generated {len(lines):,} Jetstream lines in {time.perf_counter() - started:.1f}s")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="atbb-bench-rebuild-") as tmp:
        for backend in args.backends.split(","):
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            settings = settings_for(backend, Path(tmp), schema, forum_did)
            try:
                started = time.perf_counter()
                stored = prepare(settings, lines)
                print(f"\n{backend}: {stored:,} events in the log and generation 1 "
                      f"(prepared in {time.perf_counter() - started:.0f}s)")
                child = subprocess.run(
                    [sys.executable, "-m", "bench.rebuild", "--rounds", str(args.rounds),
                     "--measure", json.dumps({
                        "data_dir": str(settings.data_dir),
                        "database_url": settings.database_url,
                        "database_schema": settings.database_schema,
                        "forum_did": forum_did})],
                    capture_output=True, text=True)
                if child.returncode != 0:
                    raise RuntimeError(f"the measuring child failed:\n{child.stderr}")
                rounds = json.loads(child.stdout.strip().splitlines()[-1])
            finally:
                if backend == "postgresql":
                    _drop_schemas(schema)
            for number, r in enumerate(rounds, start=1):
                r["ratio"] = r["rebuild_rate"] / r["decode_rate"]
                spans = ", ".join(f"{key.removesuffix('_seconds')} {value:.1f} s"
                                  for key, value in r.items()
                                  if key.endswith("_seconds") and key not in
                                  ("rebuild_seconds", "replay_seconds"))
                print(f"  round {number}: rebuild {r['rebuild_rate']:,.0f} ev/s in "
                      f"{r['rebuild_seconds']:.1f} s (every event applied at "
                      f"{r['replay_seconds']:.1f} s; replays: {spans}), baseline "
                      f"{r['decode_rate']:,.0f} ev/s, ratio {r['ratio']:.2f}")
            f = {key: statistics.median(r[key] for r in rounds)
                 for key in ("rebuild_rate", "rebuild_seconds", "replay_seconds",
                             "decode_rate", "ratio", "search_share")}
            f["peak_mb"] = max(r["peak_mb"] for r in rounds)
            ratio = f["ratio"]
            target = TARGETS[backend]
            if len(rounds) > 1:
                print(f"  medians of {len(rounds)} rounds (peak memory: the greatest):")
            verdicts = [f["rebuild_rate"] >= target, f["peak_mb"] < MEMORY_TARGET_MB,
                        ratio >= RATIO_TARGET]
            print(f"  rebuild                 {f['rebuild_rate']:>9,.0f} ev/s "
                  f"target {target:,}  {'ok' if verdicts[0] else 'MISSED'}")
            print(f"  wall time               {f['rebuild_seconds']:>9,.1f} s"
                  f" (every event applied at {f['replay_seconds']:.1f} s; then the end of"
                  " the load, catch-up, switch)")
            print(f"  peak memory (child RSS) {f['peak_mb']:>9,.0f} MB "
                  f"target < {MEMORY_TARGET_MB}  {'ok' if verdicts[1] else 'MISSED'}")
            print(f"  baseline read+decode    {f['decode_rate']:>9,.0f} ev/s "
                  f"(rebuild/decode {ratio:.2f}, target >= {RATIO_TARGET}  "
                  f"{'ok' if verdicts[2] else 'MISSED'})")
            share_ok = f["search_share"] <= SEARCH_SHARE_TARGET
            verdicts.append(share_ok)
            print(f"  search's share          {f['search_share']:>9.2f}   "
                  f"(its replay over the rest of the rebuild, target <= "
                  f"{SEARCH_SHARE_TARGET}  {'ok' if share_ok else 'MISSED'})")
            failures += verdicts.count(False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
