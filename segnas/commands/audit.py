"""``segnas reward-audit``: measure the configured search reward (repeatability over seeds,
fidelity against final training, baselines, detectable difference, cost). This module parses
arguments; the work is done in ``segnas.audit``."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from ..audit.plan import ROLES, AuditLayout, plan_architectures, read_band
from ..config import load_params
from ..errors import ConfigError
from .arch import non_negative_int, positive_int


def _run(args: argparse.Namespace) -> int:
    # The runner (training code) and the summary (scipy) load only when the command runs,
    # so building the CLI's parser stays light.
    from ..audit.runner import AuditOptions, run_audit
    from ..audit.summary import write_outputs

    options = AuditOptions(
        out=Path(args.out),
        finals=Path(args.finals) if args.finals else None,
        role=args.role,
        per_group=args.per_group,
        reward_seeds=args.reward_seeds,
        final_repeats=args.final_repeats,
        band=Path(args.band) if args.band else None,
        workers=args.workers,
        final=not args.no_final,
    )
    layout = AuditLayout(options.out, options.finals)
    if not args.summary_only:
        band = read_band(options.band) if options.band else None
        archs_for = partial(plan_architectures, options.per_group, role=options.role, band=band)
        run_audit(load_params(args.params), args.params, options, archs_for)
    elif not layout.plan.is_file():
        raise ConfigError(f"--summary-only: {layout.plan} does not exist; run the audit first")
    summary = write_outputs(layout)
    fidelity, repeat = summary["fidelity"], summary["repeatability"]
    print(
        f"reward-audit: ICC {repeat['icc']}, rho(reward, final val mIoU) "
        f"{fidelity['spearman_rho']} (n = {fidelity['num_heldout']}), complete: "
        f"{summary['complete']} -> {layout.summary}",
        file=sys.stdout,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``reward-audit``."""
    parser = subparsers.add_parser(
        "reward-audit",
        help="measure the search reward: seed noise (ICC), rank fidelity, baselines, cost",
        description=__doc__,
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument("--out", default="audit", help="audit directory (default audit/)")
    parser.add_argument(
        "--finals",
        help="directory of final-training results to share with another audit of the same "
        "architectures (default OUT/jobs/final)",
    )
    parser.add_argument("--role", choices=ROLES, default="heldout", help="which architectures")
    parser.add_argument(
        "--per-group", type=positive_int, default=8, help="architectures per group (8)"
    )
    parser.add_argument("--reward-seeds", type=positive_int, default=3, help="seeds per reward (3)")
    parser.add_argument(
        "--final-repeats", type=non_negative_int, default=4, help="architectures trained twice (4)"
    )
    parser.add_argument(
        "--band",
        help="the controller band: genotypes from a trained controller (.txt, archs.csv or "
        "compare samples.json); without it only uniform architectures",
    )
    parser.add_argument("--workers", type=positive_int, default=2, help="worker processes (2)")
    parser.add_argument("--no-final", action="store_true", help="skip the final trainings")
    parser.add_argument(
        "--summary-only", action="store_true", help="only rewrite the summary from the files"
    )
    parser.set_defaults(func=_run)
