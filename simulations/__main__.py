"""``python -m simulations``: the planners' command line.

Sub-commands:
    coverage   who can reach each village within 1, 3 and 5 minutes (static, by hour)
    day        simulated days against the real dispatch core, with 95% confidence intervals
    site       where the next minimum emergency units should go (greedy + MILP gap)
    drill      simulated volunteers and incidents against a running server (demo and load)

Every run writes CSV, JSON, GeoJSON, PNG plots and a manifest into ``out/<command>-<time>/``
(or ``--out DIR``); ``--config FILE`` (TOML or JSON, or a previous run's manifest) sets the
parameters, and command-line flags override it.
"""

from __future__ import annotations

import argparse
import os
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


def _range(text: str) -> tuple[float, float]:
    from simulations.drill import parse_range

    try:
        return parse_range(text)
    except DispatchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _latlon(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: LAT,LON, e.g. 37.3472,115.9651") from None
    return lat, lon


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
    _drill_parser(sub)
    return parser


def _drill_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser(
        "drill", help="play volunteers (fixes, answers) and incidents against a running server"
    )
    d.add_argument("--url", default="http://127.0.0.1:8000", help="the server")
    d.add_argument(
        "--token", default=None,
        help="operator token (default: the first of $DISPATCH_OPERATOR_TOKENS)",
    )  # fmt: skip
    d.add_argument("--volunteers", type=int, default=200)
    d.add_argument("--incidents-per-minute", type=float, default=6.0)
    d.add_argument("--duration", type=float, default=120.0, help="seconds of incidents")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--acceptance", type=float, default=0.287, help="P(accept an offer)")
    d.add_argument(
        "--silent-share", type=float, default=0.5,
        help="of the offers not accepted, the share left to expire",
    )  # fmt: skip
    d.add_argument("--answer-delay", type=_range, default=(5.0, 40.0), help="s, e.g. 5..40")
    d.add_argument("--fix-interval", type=float, default=5.0, help="s between two fixes")
    d.add_argument("--service-time", type=_range, default=(60.0, 240.0), help="s on scene")
    d.add_argument(
        "--close-after", type=_range, default=(180.0, 600.0),
        help="s after which the operator closes an incident nobody finished",
    )  # fmt: skip
    d.add_argument(
        "--time-scale", type=float, default=1.0,
        help="multiplies travel (eta_s), service and --close-after: 0.1 = a quick demo",
    )  # fmt: skip
    d.add_argument("--drain", type=float, default=30.0, help="s to let open incidents finish")
    d.add_argument(
        "--clock", choices=("wall", "server"), default="wall",
        help="fix timestamps: this machine's clock, or the server's (fake clocks)",
    )  # fmt: skip
    d.add_argument(
        "--ids", choices=("drill", "dataset"), default="drill",
        help="volunteer ids: drill-<dataset id>, or the dataset's own (a demo's roster)",
    )  # fmt: skip
    d.add_argument("--near", type=_latlon, default=None, help="LAT,LON: keep to this area")
    d.add_argument("--radius-m", type=float, default=3000.0, help="with --near")
    d.add_argument("--concurrency", type=int, default=16, help="REST requests at once")
    d.add_argument("--keep-on-duty", action="store_true", help="leave volunteers available")
    d.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    d.add_argument("--out", type=Path, default=None, help="run folder (default out/drill-...)")
    d.add_argument("--quiet", action="store_true", help="no progress bar, no summary")


def _drill(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from simulations.commands import Common
    from simulations.drill import DrillOptions, run_drill

    token = args.token or os.environ.get("DISPATCH_OPERATOR_TOKENS", "").split(",")[0].strip()
    options = DrillOptions(
        common=Common(dataset=args.dataset, out=args.out, quiet=args.quiet, argv=tuple(argv)),
        url=args.url, token=token, volunteers=args.volunteers,
        incidents_per_minute=args.incidents_per_minute, duration_s=args.duration,
        seed=args.seed, acceptance=args.acceptance, silent_share=args.silent_share,
        answer_delay_s=args.answer_delay, fix_interval_s=args.fix_interval,
        service_s=args.service_time, close_after_s=args.close_after,
        time_scale=args.time_scale, drain_s=args.drain, clock=args.clock, ids=args.ids,
        near=args.near, radius_m=args.radius_m, concurrency=args.concurrency,
        keep_on_duty=args.keep_on_duty,
    )  # fmt: skip
    run_drill(options)
    return 0


def _overrides(args: argparse.Namespace, names: dict[str, str]) -> dict[str, object]:
    return {
        key: getattr(args, attr) for attr, key in names.items() if getattr(args, attr) is not None
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command == "drill":
        try:
            return _drill(args, argv[1:])
        except DispatchError as exc:
            print(f"simulations: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("simulations: drill aborted", file=sys.stderr)
            return 130
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
