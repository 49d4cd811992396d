"""``segnas study``: run a pre-registered study of search strategies over search seeds
(``study run``), aggregate its committed runs (``study aggregate``) and, once decided, score
the winners on the test split (``study test``). This module parses arguments; the work is
done in ``segnas.study``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import load_params
from ..errors import ConfigError
from ..study.plan import StudyLayout, StudyPlan


def _layout_and_plan(args: argparse.Namespace) -> tuple[StudyLayout, StudyPlan]:
    plan_path = Path(args.plan)
    if not plan_path.is_file():
        raise ConfigError(f"--plan {plan_path} does not exist; write the study's study.yaml")
    layout = StudyLayout(plan_path.parent, args.work)
    return layout, StudyPlan.from_file(plan_path)


def _run(args: argparse.Namespace) -> int:
    # the search and training code load only when the command runs
    from ..study.aggregate import write_outputs
    from ..study.runs import check_configuration, commit_run, run_one

    layout, plan = _layout_and_plan(args)
    params = load_params(args.params)
    check_configuration(plan, params, args.params)
    todo = plan.runs(args.only or ())
    for number, (strategy, seed) in enumerate(todo, start=1):
        already = layout.run_result(strategy, seed).is_file()
        summary = run_one(layout, plan, params, args.params, strategy, seed, sys.stderr)
        print(
            f"study: run {number}/{len(todo)} {strategy} seed {seed}: best reward "
            f"{summary['best']['reward']:.4f}, final val mIoU {summary['final']['val_miou']:.4f}"
            f"{' (done before)' if already else ''}"
        )
        if args.commit and not already:
            commit_run(layout, strategy, seed)
    summary = write_outputs(layout, plan)
    print(f"study: {summary['decision']} -> {layout.summary}")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from ..study.aggregate import write_outputs

    layout, plan = _layout_and_plan(args)
    summary = write_outputs(layout, plan)
    missing = summary["missing_runs"]
    print(
        f"study: {summary['decision']}; missing runs: {', '.join(missing) or 'none'} "
        f"-> {layout.summary}"
    )
    return 0


def _test(args: argparse.Namespace) -> int:
    from ..study.runs import check_configuration
    from ..study.winners import write_test_numbers

    layout, plan = _layout_and_plan(args)
    params = load_params(args.params)
    check_configuration(plan, params, args.params)
    result = write_test_numbers(layout, params, args.params, sys.stderr)
    for row in result["winners"]:
        print(
            f"study test: {row['run']} ({row['hash']}): test mIoU {row['test_miou']:.4f}, "
            f"val mIoU {row['val_miou_committed']:.4f} committed, {row['val_miou_again']:.4f} "
            "this training"
        )
    if not result["winners"]:
        print(f"study test: no comparison decided met ({result['decision']}): no test numbers")
    print(f"study test: -> {layout.test_numbers}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``study run``, ``study aggregate`` and ``study test``."""
    parser = subparsers.add_parser(
        "study", help="compare search strategies over search seeds", description=__doc__
    )
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    run = steps.add_parser("run", help="run the plan's missing runs, then aggregate")
    aggregate = steps.add_parser("aggregate", help="aggregate the finished runs")
    test = steps.add_parser(
        "test", help="after the decision: score the winners on the test split (test.json)"
    )
    for sub in (run, aggregate, test):
        sub.add_argument("--plan", required=True, help="the study's study.yaml")
        sub.add_argument("--work", default="study-work", help="working files (default study-work/)")
    for sub in (run, test):
        sub.add_argument(
            "--params", default="params.yaml", help="params file (default params.yaml)"
        )
    run.add_argument(
        "--only", nargs="+", metavar="STRATEGY:SEED", help="run only these (e.g. random:3)"
    )
    run.add_argument(
        "--commit", action="store_true", help="git commit each run's small results as it ends"
    )
    run.set_defaults(func=_run)
    aggregate.set_defaults(func=_aggregate)
    test.set_defaults(func=_test)
