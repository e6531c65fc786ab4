"""Parameters of the simulations, read once, validated whole, frozen.

Theory of operation
-------------------
Every number a simulated day depends on lives in :class:`DayParams`, and every number a siting
run depends on in :class:`SiteParams`, with the defaults below; a run writes them whole into
its manifest, and :func:`load_params` reads such a file back (TOML or JSON, the manifest's
``parameters`` object included), so a run can be repeated exactly. Unknown keys are an
error, never ignored (a typo must not silently fall back to a default), and so is a value of
the wrong type or outside its range; the message names the file and the key.

Defaults and where they come from (``shared/reference/README.md`` unless marked CHOICE):

* acceptance of an offer: mean 28.7% (the median over 12 smartphone-alerted responder
  systems; their range is 17-47%), spread between volunteers as Beta(m c, (1 - m) c) with
  concentration ``c`` = 10 (CHOICE: the middle 80% of volunteers accept 12-47% of offers);
* turnout (alert to leaving, which the travel model adds to the journey): median 1:45 at home,
  2:22 at night (22:00-06:00), 2:00 at work (CHOICE), nothing on patrol; log-normal spread
  sigma 0.5 (CHOICE);
* walking 2.3 m/s and the other speeds: the travel model's own (:mod:`geo.modes`);
* answering: median 15 s after the alert, log-normal sigma 0.6 (CHOICE); half of those who do
  not accept stay silent and let the offer expire (CHOICE);
* incidents: about 300 a day (the planners' figure), an hourly profile low at night and
  peaking in the evening, a type mix and a severity mix (CHOICE, see :data:`DEFAULT_TYPE_MIX`);
* where the volunteers on duty are: 30% out on patrol within ~400 m of home, the rest on call
  at home (CHOICE);
* service on scene: median 20 min, log-normal sigma 0.5 (CHOICE); an incident nobody reaches
  is given up after an hour (CHOICE).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, get_args

from dispatch.errors import InvalidInput
from geo.travel import DEFAULT_TURNOUT_S, Situation

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DEFAULT_HOURLY_PROFILE",
    "DEFAULT_TYPE_MIX",
    "DayParams",
    "SiteParams",
    "load_params",
    "to_jsonable",
]

#: Relative incident rate by hour of the day (CHOICE): quiet 02-05, rising through the day,
#: peaking 18-21 when people are home and out, as in most police call records.
DEFAULT_HOURLY_PROFILE: Final = (
    0.60, 0.45, 0.35, 0.30, 0.30, 0.35, 0.50, 0.80, 1.00, 1.10, 1.15, 1.15,
    1.05, 1.00, 1.05, 1.10, 1.20, 1.30, 1.40, 1.50, 1.50, 1.35, 1.10, 0.85,
)  # fmt: skip

#: Share of incidents by type (CHOICE). Disputes and public order dominate the association's
#: record (815 disputes mediated, 20,000+ patrols); fires and water rescues are rare.
DEFAULT_TYPE_MIX: Final[Mapping[str, float]] = MappingProxyType(
    {
        "public_order": 0.25,
        "dispute": 0.20,
        "traffic_accident": 0.12,
        "medical": 0.10,
        "vulnerable_person": 0.12,
        "missing_person": 0.05,
        "fire": 0.05,
        "school_safety": 0.08,
        "water_rescue": 0.03,
    }
)

_SITUATION_NAMES: Final = tuple(s.name.lower() for s in Situation)
DEFAULT_TURNOUT_MEDIAN_S: Final[Mapping[str, float]] = MappingProxyType(
    {s.name.lower(): v for s, v in DEFAULT_TURNOUT_S.items()}
)

_P = TypeVar("_P", "DayParams", "SiteParams")


def _frozen_map(values: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True, slots=True)
class DayParams:
    """Everything a simulated day depends on (see the module doc for the defaults).

    Attributes:
        seed: the root of every random draw.
        replications: independent replications (each with its own keys).
        days: consecutive days per replication (starting on ``start_weekday``).
        start_weekday: 0 = Monday.
        incidents_per_day: expected incidents per day, county-wide.
        hourly_profile: 24 relative rates, hour 0 first.
        type_mix: share per incident type (names of the policy; normalised).
        severity_mix: shares of severities 1, 2, 3 (normalised).
        incident_jitter_m: incidents lie around their village's point, Gaussian, this sigma.
        acceptance_mean: mean probability that a volunteer accepts an offer.
        acceptance_concentration: Beta concentration of the per-volunteer acceptance;
            0 = every volunteer accepts with exactly ``acceptance_mean``.
        silent_share: of the offers not accepted, the share never answered (they expire).
        answer_delay_median_s, answer_delay_sigma: log-normal delay from offer to answer.
        turnout_median_s: median alert-to-leaving by situation (``patrol``, ``home``,
            ``work``, ``night``); the travel model ranks with these medians.
        turnout_sigma: log-normal spread of the actual turnout around the median (0: exact).
        patrol_share: share of the volunteers coming on duty who go out on patrol.
        patrol_offset_m: a patrol keeps within about this distance of home (Gaussian sigma).
        night_start_hour, night_end_hour: at home between these hours counts as ``night``.
        service_median_s, service_sigma: log-normal time on scene, from the first arrival to
            the incident's closure.
        give_up_s: an incident nobody has reached after this long is closed as unserved.
    """

    seed: int = 20_231_015
    replications: int = 5
    days: int = 1
    start_weekday: int = 0
    incidents_per_day: float = 300.0
    hourly_profile: tuple[float, ...] = DEFAULT_HOURLY_PROFILE
    type_mix: Mapping[str, float] = field(default_factory=lambda: DEFAULT_TYPE_MIX, hash=False)
    severity_mix: tuple[float, ...] = (0.25, 0.60, 0.15)
    incident_jitter_m: float = 150.0
    acceptance_mean: float = 0.287
    acceptance_concentration: float = 10.0
    silent_share: float = 0.5
    answer_delay_median_s: float = 15.0
    answer_delay_sigma: float = 0.6
    turnout_median_s: Mapping[str, float] = field(
        default_factory=lambda: DEFAULT_TURNOUT_MEDIAN_S, hash=False
    )
    turnout_sigma: float = 0.5
    patrol_share: float = 0.3
    patrol_offset_m: float = 400.0
    night_start_hour: int = 22
    night_end_hour: int = 6
    service_median_s: float = 1200.0
    service_sigma: float = 0.5
    give_up_s: float = 3600.0

    def __post_init__(self) -> None:
        _check(self)
        object.__setattr__(self, "type_mix", _frozen_map(self.type_mix))
        object.__setattr__(self, "turnout_median_s", _frozen_map(self.turnout_median_s))

    def turnout_by_situation(self) -> dict[Situation, float]:
        """The medians keyed by :class:`~geo.travel.Situation` (for the travel model)."""
        return {Situation[name.upper()]: v for name, v in self.turnout_median_s.items()}

    def is_night(self, hour: int) -> bool:
        """Whether ``hour`` (0-23) is in the night window."""
        start, end = self.night_start_hour, self.night_end_hour
        return start <= hour or hour < end if start > end else start <= hour < end

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], source: str = "<mapping>") -> DayParams:
        """Parameters from a mapping; missing keys keep their defaults.

        Raises:
            InvalidInput: an unknown key, or a value of the wrong type or out of range.
        """
        return _from_mapping(cls, values, source)

    def replace(self, **changes: Any) -> DayParams:
        """A copy with some values changed (validated again).

        Raises:
            InvalidInput: a value of the wrong type or out of range.
        """
        return _from_mapping(DayParams, {**to_jsonable(self), **changes}, "<replace>")


SiteObjective = Literal["cover", "expected"]
Existing = Literal["units", "volunteers", "none"]


@dataclass(frozen=True, slots=True)
class SiteParams:
    """Everything a siting run depends on.

    Attributes:
        units: how many new units to place.
        objective: ``cover`` (someone reaches the village in time) or ``expected``
            (MEXCLP: each volunteer in reach comes with probability ``1 - q``).
        weights: weight of the 1-, 3- and 5-minute rings in the objective.
        unit_size: members of a new unit; 0 = the dataset's median unit size.
        existing: what already covers the villages: the existing units' members at their
            unit's village (``units``), the volunteers on duty at ``weekday``/``hour`` at
            home (``volunteers``), or nothing (``none``).
        weekday, hour: when, for ``existing = "volunteers"``.
        situation: where a unit's members are when alerted (their turnout): ``patrol``
            (on their post, the doctrine's assumption) or ``home``.
        q: MEXCLP: probability that a volunteer in reach cannot come (busy or declines);
            the default is one minus the median acceptance.
        exact: also solve the MILP (HiGHS) to report the greedy's optimality gap.
        time_limit_s: HiGHS time limit; a run stopped by it reports its bound.
        truncation: MEXCLP MILP: increments per (village, ring) stop once ``q**k`` falls
            below this (the neglected tail is added to the reported bound).
    """

    units: int = 20
    objective: str = "cover"
    weights: tuple[float, ...] = (0.5, 0.3, 0.2)
    unit_size: int = 0
    existing: str = "units"
    weekday: int = 0
    hour: int = 20
    situation: str = "patrol"
    q: float = 0.713
    exact: bool = True
    time_limit_s: float = 120.0
    truncation: float = 1e-3

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], source: str = "<mapping>") -> SiteParams:
        """Parameters from a mapping; missing keys keep their defaults.

        Raises:
            InvalidInput: an unknown key, or a value of the wrong type or out of range.
        """
        return _from_mapping(cls, values, source)


# --- validation -----------------------------------------------------------------------------


def _fail(name: str, message: str, source: str = "") -> InvalidInput:
    where = f"{source}: " if source else ""
    return InvalidInput(f"{where}{name}: {message}", field=name)


def _check(p: DayParams | SiteParams) -> None:  # noqa: PLR0912 (one flat list of rules)
    if isinstance(p, SiteParams):
        if p.units < 0:
            raise _fail("units", f"must be >= 0, got {p.units}")
        if len(p.weights) != 3 or any(w < 0 for w in p.weights) or not sum(p.weights) > 0:
            raise _fail("weights", f"three non-negative weights, not all 0; got {p.weights}")
        if p.objective not in ("cover", "expected"):
            raise _fail("objective", f"'cover' or 'expected', got {p.objective!r}")
        if p.unit_size < 0:
            raise _fail("unit_size", f"must be >= 0, got {p.unit_size}")
        if p.existing not in get_args(Existing):
            raise _fail("existing", f"one of {get_args(Existing)}, got {p.existing!r}")
        if p.situation not in _SITUATION_NAMES:
            raise _fail("situation", f"one of {_SITUATION_NAMES}, got {p.situation!r}")
        if not 0 <= p.weekday < 7 or not 0 <= p.hour < 24:
            raise _fail("weekday", f"weekday 0-6 and hour 0-23, got {p.weekday}, {p.hour}")
        if not 0.0 <= p.q < 1.0:
            raise _fail("q", f"must be in [0, 1), got {p.q}")
        if not p.time_limit_s > 0:
            raise _fail("time_limit_s", f"must be > 0, got {p.time_limit_s}")
        if not 0.0 < p.truncation < 1.0:
            raise _fail("truncation", f"must be in (0, 1), got {p.truncation}")
        return
    for name in ("replications", "days"):
        if getattr(p, name) < 1:
            raise _fail(name, f"must be >= 1, got {getattr(p, name)}")
    if not 0 <= p.start_weekday < 7:
        raise _fail("start_weekday", f"must be 0-6, got {p.start_weekday}")
    if len(p.hourly_profile) != 24 or any(v < 0 for v in p.hourly_profile):
        raise _fail("hourly_profile", "24 non-negative rates, hour 0 first")
    if len(p.severity_mix) != 3 or any(v < 0 for v in p.severity_mix) or sum(p.severity_mix) <= 0:
        raise _fail("severity_mix", "three non-negative shares (severities 1, 2, 3), not all 0")
    if not p.type_mix or any(v < 0 for v in p.type_mix.values()) or sum(p.type_mix.values()) <= 0:
        raise _fail("type_mix", "non-negative shares per incident type, not all 0")
    for name in _PROBABILITIES:
        value = getattr(p, name)
        if not 0.0 <= value <= 1.0:
            raise _fail(name, f"must be in [0, 1], got {value}")
    for name in _NON_NEGATIVE:
        value = getattr(p, name)
        if not (math.isfinite(value) and value >= 0):
            raise _fail(name, f"must be finite and >= 0, got {value}")
    for name in ("night_start_hour", "night_end_hour"):
        if not 0 <= getattr(p, name) < 24:
            raise _fail(name, f"must be 0-23, got {getattr(p, name)}")
    for name, value in p.turnout_median_s.items():
        if name not in _SITUATION_NAMES:
            raise _fail(f"turnout_median_s.{name}", f"unknown situation; one of {_SITUATION_NAMES}")
        if not (math.isfinite(value) and value >= 0):
            raise _fail(f"turnout_median_s.{name}", f"must be finite and >= 0, got {value}")
    if not p.give_up_s > 0:
        raise _fail("give_up_s", f"must be > 0, got {p.give_up_s}")


_PROBABILITIES: Final = ("acceptance_mean", "silent_share", "patrol_share")
_NON_NEGATIVE: Final = (
    "incidents_per_day",
    "incident_jitter_m",
    "acceptance_concentration",
    "answer_delay_median_s",
    "answer_delay_sigma",
    "turnout_sigma",
    "patrol_offset_m",
    "service_median_s",
    "service_sigma",
)


def _coerce(name: str, default: object, value: object, source: str) -> object:
    """``value`` converted to the kind of ``default`` (bool, int, float, str, tuple, map)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _fail(name, f"expected true or false, got {value!r}", source)
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(name, f"expected an integer, got {value!r}", source)
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(name, f"expected a number, got {value!r}", source)
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise _fail(name, f"expected a string, got {value!r}", source)
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or any(
            isinstance(v, bool) or not isinstance(v, int | float) for v in value
        ):
            raise _fail(name, f"expected an array of numbers, got {value!r}", source)
        return tuple(float(v) for v in value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping) or any(
            not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float)
            for k, v in value.items()
        ):
            raise _fail(name, f"expected a table of numbers, got {value!r}", source)
        return {str(k): float(v) for k, v in value.items()}
    raise AssertionError(f"no coercion for {name}")  # pragma: no cover


def _from_mapping(cls: type[_P], values: Mapping[str, object], source: str) -> _P:
    defaults = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
    out: dict[str, object] = {}
    for name, value in values.items():
        if name not in defaults:
            known = ", ".join(defaults)
            raise _fail(name, f"unknown parameter; expected one of {known}", source)
        out[name] = _coerce(name, defaults[name], value, source)
    turnout = out.get("turnout_median_s")
    if isinstance(turnout, Mapping):
        # a partial table overrides only the situations it names
        out["turnout_median_s"] = {**DEFAULT_TURNOUT_MEDIAN_S, **turnout}
    try:
        return cls(**out)  # type: ignore[arg-type]
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc}", field=exc.field) from None


def to_jsonable(params: DataclassInstance, skip: Collection[str] = ()) -> dict[str, Any]:
    """The parameters as plain JSON types (what the manifest stores), less the fields named
    in ``skip``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):
        if f.name in skip:
            continue
        value = getattr(params, f.name)
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def load_params(path: Path, kind: type[_P]) -> _P:
    """Read parameters from a TOML or JSON file (or a run's ``manifest.json``).

    A manifest's ``parameters`` object is used when the file has one.

    Args:
        path: the file (``.toml`` or ``.json``).
        kind: :class:`DayParams` or :class:`SiteParams`.

    Raises:
        InvalidInput: the file cannot be read or parsed, or its values are invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror or exc}", field="config") from exc
    try:
        document: object = (
            tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path}: not valid TOML/JSON: {exc}", field="config") from exc
    if isinstance(document, dict) and isinstance(document.get("parameters"), dict):
        document = document["parameters"]
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: expected a table of parameters", field="config")
    return kind.from_mapping(document, str(path))
