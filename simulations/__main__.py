"""``python -m simulations``: the planners' command line.

Sub-commands:
    coverage   who can reach each village within 1, 3 and 5 minutes (static, by hour)
    day        simulated days against the real dispatch core, with 95% confidence intervals
    site       where the next minimum emergency units should go (greedy + MILP gap)

Every run writes CSV, JSON, GeoJSON, PNG plots and a manifest into ``out/<command>-<time>/``
(or ``--out DIR``); ``--config FILE`` (TOML or JSON, or a previous run's manifest) sets the
parameters, and command-line flags override it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dispatch.errors import DispatchError
from geo.dataset.load import DEFAULT_DATASET

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def _weekdays(text: str) -> tuple[int, ...]:
    if text == "all":
        return tuple(range(7))
    out = []
    for part in text.split(","):
        key = part.strip().lower()[:3]
        if key in _DAYS:
            out.append(_DAYS[key])
        elif key.isdigit() and 0 <= int(key) < 7:
            out.append(int(key))
        else:
            raise argparse.ArgumentTypeError(f"weekday {part!r}: 0-6, mon..sun, or all")
    return tuple(out)


def _hours(text: str) -> tuple[int, ...]:
    if text == "all":
        return tuple(range(24))
    try:
        hours = tuple(int(h) for h in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"hours {text!r}: 0-23, a list, or all") from None
    if any(not 0 <= h < 24 for h in hours):
        raise argparse.ArgumentTypeError(f"hours {text!r}: each 0-23")
    return hours


def _weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"weights {text!r}: three numbers, e.g. 0.5,0.3,0.2"
        ) from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--travel", choices=("crow-fly", "road"), default="crow-fly")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default out/...)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, no summary")
    parser.add_argument("--no-plots", action="store_true", help="tables only, no PNG")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulations", description=(__doc__ or "").split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    cov = sub.add_parser("coverage", help="static 1-3-5 coverage, by hour, acceptance-aware")
    _common(cov)
    cov.add_argument(
        "--positions", default="homes", help="'homes' (volunteers on duty) or a scenario CSV"
    )
    cov.add_argument("--weekday", type=_weekdays, default=(0,), help="0-6, mon..sun, or all")
    cov.add_argument("--hour", type=_hours, default=(20,), help="0-23, a list, or all")
    cov.add_argument("--situation", choices=("patrol", "home", "night"), default="patrol")
    cov.add_argument("--acceptance", type=float, default=0.287, help="mean acceptance")
    cov.add_argument(
        "--acceptance-concentration", type=float, default=10.0,
        help="Beta concentration of the per-volunteer acceptance (0: all equal)",
    )  # fmt: skip
    cov.add_argument("--seed", type=int, default=20_231_015, help="keys the acceptances")

    day = sub.add_parser("day", help="simulated days against the real dispatch core")
    _common(day)
    day.add_argument("--config", type=Path, default=None, help="parameters (TOML/JSON)")
    day.add_argument("--policy", type=Path, default=None, help="default data/policy.toml")
    day.add_argument("--seed", type=int, default=None)
    day.add_argument("--replications", type=int, default=None)
    day.add_argument("--days", type=int, default=None)
    day.add_argument("--incidents-per-day", type=float, default=None)
    day.add_argument("--acceptance", type=float, default=None, help="mean acceptance")
    day.add_argument("--add-units", type=int, default=0, help="compare with N greedy-sited units")
    day.add_argument(
        "--sites", type=Path, default=None,
        help="compare with units at these villages (a CSV with village_id, e.g. a site run's "
        "sites.csv); wins over --add-units",
    )  # fmt: skip
    day.add_argument("--unit-size", type=int, default=0, help="0: the dataset's median")
    day.add_argument("--unit-duty", choices=("roster", "always", "post"), default="roster")
    day.add_argument("--jobs", type=int, default=0, help="worker processes (0: one per CPU)")

    site = sub.add_parser("site", help="where to place new minimum emergency units")
    _common(site)
    site.add_argument("--config", type=Path, default=None, help="parameters (TOML/JSON)")
    site.add_argument("--units", type=int, default=None)
    site.add_argument("--objective", choices=("cover", "expected"), default=None)
    site.add_argument("--weights", type=_weights, default=None, help="e.g. 0.5,0.3,0.2")
    site.add_argument("--q", type=float, default=None, help="MEXCLP: P(volunteer can't come)")
    site.add_argument("--unit-size", type=int, default=None)
    site.add_argument("--existing", choices=("units", "volunteers", "none"), default=None)
    site.add_argument("--weekday", type=int, default=None)
    site.add_argument("--hour", type=int, default=None)
    site.add_argument("--no-exact", action="store_true", help="greedy only, no MILP")
    site.add_argument("--time-limit", type=float, default=None, help="HiGHS seconds")
    return parser


def _overrides(args: argparse.Namespace, names: dict[str, str]) -> dict[str, object]:
    return {
        key: getattr(args, attr) for attr, key in names.items() if getattr(args, attr) is not None
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    from dispatch.core.policy import DEFAULT_POLICY_PATH
    from geo.travel import Situation
    from simulations.commands import (
        Common,
        CoverageOptions,
        DayOptions,
        SiteOptions,
        run_coverage,
        run_day,
        run_site,
    )
    from simulations.params import DayParams, SiteParams, load_params, to_jsonable

    common = Common(
        dataset=args.dataset, travel=args.travel, out=args.out, quiet=args.quiet,
        plots=not args.no_plots, argv=tuple(argv[1:]),
    )  # fmt: skip
    try:
        if args.command == "coverage":
            run_coverage(
                CoverageOptions(
                    common=common,
                    positions=args.positions,
                    weekdays=args.weekday,
                    hours=args.hour,
                    situation=Situation[args.situation.upper()],
                    acceptance=args.acceptance,
                    concentration=args.acceptance_concentration,
                    seed=args.seed,
                )
            )
        elif args.command == "day":
            base = DayParams() if args.config is None else load_params(args.config, DayParams)
            changes = _overrides(
                args,
                {
                    "seed": "seed",
                    "replications": "replications",
                    "days": "days",
                    "incidents_per_day": "incidents_per_day",
                    "acceptance": "acceptance_mean",
                },
            )
            run_day(
                DayOptions(
                    common=common,
                    params=base.replace(**changes) if changes else base,
                    policy=args.policy or DEFAULT_POLICY_PATH,
                    add_units=args.add_units,
                    sites=args.sites,
                    unit_size=args.unit_size,
                    unit_duty=args.unit_duty,
                    jobs=args.jobs,
                )
            )
        else:
            base_site = (
                SiteParams() if args.config is None else load_params(args.config, SiteParams)
            )
            values = to_jsonable(base_site)
            values.update(
                _overrides(
                    args,
                    {
                        "units": "units",
                        "objective": "objective",
                        "weights": "weights",
                        "q": "q",
                        "unit_size": "unit_size",
                        "existing": "existing",
                        "weekday": "weekday",
                        "hour": "hour",
                        "time_limit": "time_limit_s",
                    },
                )
            )
            if args.no_exact:
                values["exact"] = False
            run_site(SiteOptions(common=common, params=SiteParams.from_mapping(values, "args")))
    except DispatchError as exc:
        print(f"simulations: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
