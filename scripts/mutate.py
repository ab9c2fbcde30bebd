"""A small AST mutation runner: does the test suite notice when the retry, rate-limit and
pipeline code is broken on purpose?

For a module it enumerates mutants (``mutation/operators.py``: a comparison flipped, ``and``/``or``
swapped, a ``not`` dropped, ``+``/``-`` swapped, a constant changed, ``max``/``min`` swapped, a
class dropped from an ``isinstance``, a statement or an ``if`` branch dropped; never docstrings,
logging, annotations), then runs pytest once per mutant (``mutation/runner.py``) and records
whether a test failed (killed), none did (survived), or the run hung (timeout, counted as killed).

A first, unmutated run records which lines of the module each test executes; a mutant then runs
only the tests that reach its lines, fastest first, and stops at the first failure. Nothing is
written to the source tree: each run is a child forked from a process that has already imported
pytest and the heavy dependencies, and an import hook in the child hands Python the mutated code
object, so the file on disk, its ``.pyc`` and parallel runs never see it (Ctrl-C leaves nothing to
restore).

    python scripts/mutate.py                       # every module in MODULES, 2 jobs
    python scripts/mutate.py --module vpsbg_support/_retry.py --jobs 1
    python scripts/mutate.py --module vpsbg_support/_retry.py --list
    python scripts/mutate.py --module vpsbg_support/_retry.py --tests tests/test_retry_policy.py

Exits 1 when a gated module scores below ``--min-score`` (default 95%).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mutation.operators import Mutant, enumerate_mutants
from mutation.runner import ROOT, Outcome, preload, run_all, score_of, select_tests

# Module -> the tests that guard it, fastest first (-x stops at the first failure), and which
# functions/classes to mutate (all of the module when empty).
# "equivalent" names survivors that no test can kill, with the reason (printed beside them; they
# still count against the score).


@dataclass(frozen=True)
class Target:
    tests: tuple[str, ...]
    only: tuple[str, ...] = ()
    equivalent: dict[str, str] = field(default_factory=dict)
    #: Below --min-score fails the run (False: reported only).
    gated: bool = True


FAST = ("tests/test_retry_policy.py", "tests/test_retry_mutants.py", "tests/test_pipeline_parts.py")
# The pipeline's own loopback tests; test_hostile.py is left out: its child processes (RSS limits,
# Ctrl-C) take ~50 s and never see the mutant.
PIPELINE = (
    *FAST,
    "tests/test_pipeline_mutants.py",
    "tests/test_resilience.py",
    "tests/test_client_wire.py",
    "tests/test_errors.py",
    # What the pipeline shows and takes: request ids, hooks, extra headers and query, logs, TLS.
    "tests/test_request_ids_and_hooks.py",
    "tests/test_raw_responses.py",
    "tests/test_steering.py",
    "tests/test_log_env.py",
)

MODULES: dict[str, Target] = {
    "vpsbg_support/_retry.py": Target(
        tests=FAST,
        equivalent={
            "parse_retry_after: value = value.strip() -> pass": "float() and"
            " parsedate_to_datetime() both ignore surrounding whitespace",
            "parse_retry_after: return None -> pass": "a blank value fails float() and"
            " parsedate_to_datetime() alike, which also give None",
            "backoff_delay: 32 -> 33": "the exponent cap only prevents overflow; it shows only"
            " when max_delay > initial_delay * 2**32 (136 years for a 1 s initial delay)",
        },
    ),
    "vpsbg_support/_ratelimit.py": Target(tests=PIPELINE),
    "vpsbg_support/_pipeline.py": Target(
        tests=PIPELINE,
        equivalent={
            "Pipeline.request: False -> True": "restartable is read only when a DownloadError"
            " is thrown back into the attempts, which only download() does",
            "Pipeline.stream: False -> True": "same: a stream's reader raises out of the context"
            " manager, never back into the attempts",
        },
    ),
    # Only the classification: which transport errors prove nothing was sent, which are timeouts.
    # Six mutants: one equivalent alone puts it under 95%, so it is reported, not gated.
    "vpsbg_support/_http.py": Target(
        tests=PIPELINE,
        only=("never_sent", "is_timeout"),
        gated=False,
        equivalent={
            "is_timeout: isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError)"
            " -> isinstance(exc, asyncio.TimeoutError)": "aiohttp.ServerTimeoutError is a"
            " subclass of asyncio.TimeoutError",
        },
    ),
    "vpsbg_support/_failures.py": Target(
        tests=PIPELINE,
        equivalent={
            "body_failure: 0 -> 1": "the default limit is read only for too_large, and every"
            " too_large caller passes its limit",
        },
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="module file (repeatable)")
    parser.add_argument("--tests", nargs="+", help="test files/ids instead of the module's map")
    parser.add_argument("--only", nargs="+", help="qualified names to mutate (default: the map)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: from baseline)")
    parser.add_argument(
        "--test-timeout",
        type=float,
        default=5.0,
        help="seconds per test (pytest-timeout): a mutant that hangs one test fails it fast",
    )
    parser.add_argument("--min-score", type=float, default=95.0)
    parser.add_argument(
        "--all-tests",
        action="store_true",
        help="run every test for each mutant (default: only the tests that run its lines)",
    )
    parser.add_argument("--list", action="store_true", help="list mutants, run nothing")
    parser.add_argument("--mutant", type=int, nargs="+", help="run only these mutant numbers")
    parser.add_argument("--keep-logs", metavar="DIR", help="keep every run's pytest output here")
    args = parser.parse_args(argv)

    modules = args.module or list(MODULES)
    failed = False
    workdir = Path(args.keep_logs or tempfile.mkdtemp(prefix="mutate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if not args.list:
        preload()
    started = time.monotonic()
    summary: list[str] = []
    try:
        for rel in modules:
            rel = str(Path(rel).resolve().relative_to(ROOT)) if Path(rel).is_absolute() else rel
            target = MODULES.get(rel, Target(tests=()))
            only = tuple(args.only or target.only)
            tests = tuple(args.tests or target.tests)
            mutants = enumerate_mutants(ROOT / rel, only)
            if args.mutant:
                mutants = [m for m in mutants if m.index in args.mutant]
            if args.list:
                for m in mutants:
                    print(f"#{m.index} {m.describe()}")
                continue
            if not tests:
                raise SystemExit(f"mutate: no tests mapped for {rel}; pass --tests")
            print(f"== {rel}: {len(mutants)} mutants; tests: {' '.join(tests)}", flush=True)
            record = workdir / f"{Path(rel).stem}-lines.json"
            (base,) = run_all(
                rel,
                [(None, tests, 1800.0)],
                only,
                jobs=1,
                test_timeout=args.test_timeout,
                workdir=workdir,
                record=record,
            )
            if base.result != "survived":
                log = workdir / f"{Path(rel).stem}-base.log"
                print(log.read_text(errors="replace")[-3000:] if log.exists() else "")
                raise SystemExit(f"mutate: the tests fail on the unmutated {rel}: fix them first")
            module_started = time.monotonic()
            outcomes: list[Outcome] = []
            runs: list[tuple[Mutant | None, Sequence[str], float]] = []
            lines = json.loads(record.read_text())
            for m in mutants:
                chosen = tests if args.all_tests else select_tests(lines, m)
                # Twice what the chosen tests took in the (traced, so slower) baseline, plus
                # the start: a hang costs little more than the tests themselves.
                took = sum(lines["durations"].get(t, 0.0) for t in chosen)
                limit = args.timeout or (5.0 + 2 * (base.seconds if args.all_tests else took))
                if chosen:
                    runs.append((m, chosen, limit))
                else:  # no test runs this line: nothing to start
                    outcomes.append(Outcome(m, "uncovered"))
            for outcome in run_all(
                rel,
                runs,
                only,
                jobs=args.jobs,
                test_timeout=args.test_timeout,
                workdir=workdir,
                keep_logs=bool(args.keep_logs),
            ):
                outcomes.append(outcome)
                print(
                    {"killed": ".", "timeout": "T", "survived": "S"}.get(outcome.result, "E"),
                    end="",
                    flush=True,
                )
            print()
            outcomes.sort(key=lambda o: o.mutant.index if o.mutant else -1)
            score = score_of(outcomes)
            counts = {
                k: sum(o.result == k for o in outcomes)
                for k in ("killed", "timeout", "survived", "uncovered", "error")
            }
            line = (
                f"{rel}: {score:.1f}% killed ({counts['killed'] + counts['timeout']}/"
                f"{len(outcomes)}; {counts['timeout']} by timeout, {counts['survived']} survived"
                + (f", {counts['uncovered']} not reached" if counts["uncovered"] else "")
                + (f", {counts['error']} errors" if counts["error"] else "")
                + f"; {time.monotonic() - module_started:.0f}s)"
                + ("" if target.gated else " [not gated]")
            )
            print(line)
            summary.append(line)
            for o in outcomes:
                if o.result in ("survived", "uncovered", "error") and o.mutant is not None:
                    why = target.equivalent.get(o.mutant.key)
                    note = f"  (equivalent: {why})" if why else ""
                    print(f"  {o.result}: #{o.mutant.index} {o.mutant.describe()}{note}")
            if (target.gated and score < args.min_score) or counts["error"]:
                failed = True
    except KeyboardInterrupt:
        print("\nmutate: interrupted (the source tree was never modified)")
        return 130
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    if summary:
        print(f"\n== summary ({time.monotonic() - started:.0f}s, {args.jobs} jobs)")
        print("\n".join(summary))
        if failed:
            print(f"mutate: a module is below {args.min_score:g}% (or had errors)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
