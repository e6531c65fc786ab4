"""The incident policy: what each kind of incident asks of the volunteers.

Theory of operation
-------------------
The doctrine is fixed in code: the 1-3-5 minute reaction ring (:data:`RING_MINUTES`,
:data:`RINGS_S`): someone on scene within 1 minute, several cooperating within 3,
reinforcements within 5. Everything a county may tune lives in ``data/policy.toml``, read
once at start-up by :func:`load_policy` (the only I/O of the core) and validated whole; what
comes out is frozen (:class:`Policy`, :class:`IncidentPolicy`) and passed down.

Per incident type the policy says:

* ``needs``: the roles and teams the incident needs, any-of, kept as names and as the bit masks
  of :func:`units.vocab.mask_of`. The plan makes sure at least one volunteer who carries one of
  them is among the people offered, and ranking prefers them inside a ring; the others may be
  anyone. No roles and no teams: anyone will do.
* ``quota``: people wanted per ring, cumulative (``{1: a, 3: b, 5: c}``, ``a <= b <= c``),
  written for the default severity 2. :meth:`IncidentPolicy.quota_for` scales it by the
  severity's factor (``severity_factor``) and rounds up: a ring that wants someone keeps at
  least one, zero stays zero, and the quotas stay non-decreasing because the factors are
  positive and the rounding is monotone. The factor of severity 2 must be 1 and the factors must
  not decrease with severity, so severity 3 never asks for fewer people than severity 2. The
  arithmetic is exact (``Fraction`` of the factor as written), so ``10 x 0.7`` is 7, not 8.
* ``offer_timeout_s``, ``max_open_offers``, ``widen_after_s`` / ``widen_steps_s`` (how the
  search goes beyond 5 minutes once the 5-minute ring has no candidate left), ``points`` and
  ``points_per_hour`` (积分).

Every key but ``label``, ``needs`` and ``quota`` has its value in ``[defaults]``, which a type
may override (a type's partial ``severity_factor`` table overrides only the severities it
names). Validation stops at the first problem with a :class:`~dispatch.errors.PolicyError`
that names the file, the line and the key: ``policy.toml:42: types.fire.quota: unknown key
'ring7'``. tomllib gives no line numbers for values, so :class:`TomlLineMap` finds the line of
a key path by scanning the source once, on error only.

An unknown incident type asked of :meth:`Policy.for_type` raises
:class:`~dispatch.errors.InvalidInput` with ``field="type"``: the type comes from a request
body (``POST /incidents``), so it is a validation error (422), not a missing resource (404).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Final, NoReturn

from dispatch.errors import InvalidInput, PolicyError
from units.vocab import ROLE_NAMES, TEAM_NAMES, Role, Team, mask_of

__all__ = [
    "CONTRACT_TYPES",
    "DEFAULT_FRESHNESS_S",
    "DEFAULT_POLICY_PATH",
    "DEFAULT_SEVERITY",
    "RINGS_S",
    "RING_MINUTES",
    "SEVERITIES",
    "IncidentPolicy",
    "Needs",
    "Policy",
    "TomlLineMap",
    "load_policy",
    "parse_policy",
]

#: The doctrine's reaction rings, in minutes (the quota keys and the contract's ``ring_min``).
RING_MINUTES: Final = (1, 3, 5)
#: The same rings' limits in seconds. Not configurable: this is the doctrine.
RINGS_S: Final = (60, 180, 300)
#: Incident severities, least to most severe; ``POST /incidents`` defaults to 2.
SEVERITIES: Final = (1, 2, 3)
DEFAULT_SEVERITY: Final = 2
#: Positions older than this make a volunteer no candidate, unless the file says otherwise.
DEFAULT_FRESHNESS_S: Final = 300.0
#: The incident types of the wire contract; the policy file must define each (it may add more).
CONTRACT_TYPES: Final = (
    "public_order",
    "dispute",
    "missing_person",
    "traffic_accident",
    "fire",
    "water_rescue",
    "medical",
    "school_safety",
    "vulnerable_person",
)
#: The policy shipped with the engine.
DEFAULT_POLICY_PATH: Final = Path(__file__).resolve().parents[2] / "data" / "policy.toml"


@dataclass(frozen=True, slots=True)
class Needs:
    """The roles and teams an incident needs, any-of.

    Attributes:
        roles: role wire names, in the file's order.
        teams: team wire names, in the file's order.
        role_mask: bit set of ``roles`` (:func:`units.vocab.mask_of`).
        team_mask: bit set of ``teams``.
    """

    roles: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    role_mask: int = 0
    team_mask: int = 0

    @property
    def anyone(self) -> bool:
        """True when the incident needs no particular role or team."""
        return not (self.role_mask or self.team_mask)

    def met_by(self, role_mask: int, team_mask: int) -> bool:
        """Whether a volunteer with these role and team bit sets carries a needed one.

        Args:
            role_mask: the volunteer's roles as a bit set.
            team_mask: the volunteer's teams as a bit set.

        Returns:
            True if any role or team matches, or if nothing in particular is needed.
        """
        return self.anyone or bool(role_mask & self.role_mask or team_mask & self.team_mask)


@dataclass(frozen=True, slots=True)
class IncidentPolicy:
    """The policy of one incident type.

    Attributes:
        name: the type's wire name (``fire``).
        label: the console's name for it (``火情``); the wire name when the file gives none.
        needs: who is needed, any-of.
        quota: people wanted within 1, 3 and 5 minutes (cumulative) at severity 2, as written.
        severity_factor: the quota multiplier of severities 1, 2 and 3.
        offer_timeout_s: seconds an offer stays open before it expires.
        max_open_offers: at most this many offers open at once for one incident.
        widen_after_s: seconds the quota may stay unmet once the current search horizon has no
            candidate left before the search widens to the next step.
        widen_steps_s: the successive horizons (maximum ETA, seconds) beyond the 5-minute ring;
            empty: never widen.
        points: 积分 a completed assignment earns.
        points_per_hour: 积分 per hour of service, on top of ``points``.
    """

    name: str
    label: str
    needs: Needs
    quota: tuple[int, int, int]
    severity_factor: tuple[float, float, float]
    offer_timeout_s: float
    max_open_offers: int
    widen_after_s: float
    widen_steps_s: tuple[float, ...]
    points: int
    points_per_hour: int

    @property
    def needs_roles(self) -> int:
        """``needs.role_mask``, named like :func:`dispatch.core.ranking.rank`'s argument."""
        return self.needs.role_mask

    @property
    def needs_teams(self) -> int:
        """``needs.team_mask``, named like :func:`dispatch.core.ranking.rank`'s argument."""
        return self.needs.team_mask

    def quota_for(self, severity: int = DEFAULT_SEVERITY) -> dict[int, int]:
        """People wanted per ring for an incident of this severity.

        Args:
            severity: 1 (minor) to 3 (grave); 2 is the default of the contract.

        Returns:
            ``{1: a, 3: b, 5: c}``, cumulative, ``a <= b <= c``: the written quota times the
            severity's factor, rounded up. A fresh dict; change it freely.

        Raises:
            InvalidInput: ``severity`` is not an integer in 1-3 (``field="severity"``).
        """
        if (
            isinstance(severity, bool)
            or not isinstance(severity, int)
            or severity not in SEVERITIES
        ):
            raise InvalidInput(
                f"severity must be an integer from 1 to 3, got {severity!r}", field="severity"
            )
        factor = Fraction(str(self.severity_factor[severity - 1]))
        return {
            ring: math.ceil(count * factor)
            for ring, count in zip(RING_MINUTES, self.quota, strict=True)
        }


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole incident policy, as loaded.

    Attributes:
        incidents: policy per incident type, in the file's order (read-only).
        freshness_s: a fix older than this makes a volunteer no candidate.
        source: where it was read from (for messages).
    """

    incidents: Mapping[str, IncidentPolicy] = field(hash=False)
    freshness_s: float = DEFAULT_FRESHNESS_S
    source: str = field(default="<string>", compare=False)

    @property
    def types(self) -> tuple[str, ...]:
        """The incident types' wire names, in the file's order."""
        return tuple(self.incidents)

    def for_type(self, name: str) -> IncidentPolicy:
        """The policy of incident type ``name``.

        Args:
            name: the type's wire name, as received in ``POST /incidents``.

        Raises:
            InvalidInput: no such type (``field="type"``; the message lists the known ones).
                A validation error rather than ``NotFound``: the name comes from a request
                body, so the edge answers 422.
        """
        try:
            return self.incidents[name]
        except (KeyError, TypeError):
            known = ", ".join(self.incidents)
            raise InvalidInput(
                f"unknown incident type {name!r}; expected one of {known}", field="type"
            ) from None


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file.

    Args:
        path: the TOML file; the shipped ``data/policy.toml`` when ``None``.

    Raises:
        PolicyError: the file cannot be read, is not UTF-8, is not TOML, or breaks the
            schema; the message starts with ``<path>:<line>:``.
    """
    path = DEFAULT_POLICY_PATH if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc.strerror or exc}") from exc
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "<string>") -> Policy:
    """Validate a policy given as TOML text.

    Args:
        text: the TOML document.
        source: the name to put in messages (a path, usually).

    Raises:
        PolicyError: malformed TOML (with tomllib's line and column) or a schema violation
            (with the line of the offending key, and ``field`` set to its dotted path).
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(_decode_message(exc, text, source)) from exc
    return _Validator(text, source).policy(document)


# --- validation -----------------------------------------------------------------------------

_DEFAULT_KEYS: Final = (
    "offer_timeout_s",
    "max_open_offers",
    "widen_after_s",
    "widen_steps_s",
    "points",
    "points_per_hour",
    "severity_factor",
)
_TYPE_KEYS: Final = ("label", "needs", "quota", *_DEFAULT_KEYS)
_TOP_KEYS: Final = ("freshness_s", "defaults", "types")
_NEEDS_KEYS: Final = ("roles", "teams")
_TYPE_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
_DECODE_AT: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_DECODE_END: Final = re.compile(r"\s*\(at end of document\)\s*$")

_Path = tuple[str, ...]
_DEFAULTS: Final = ("defaults",)


@dataclass(frozen=True, slots=True)
class _Settings:
    """The values of the keys ``[defaults]`` holds, for one type (or for the defaults)."""

    offer_timeout_s: float
    max_open_offers: int
    widen_after_s: float
    widen_steps_s: tuple[float, ...]
    points: int
    points_per_hour: int
    severity_factor: tuple[float, float, float]


def _decode_message(exc: tomllib.TOMLDecodeError, text: str, source: str) -> str:
    message = str(exc)
    if match := _DECODE_AT.search(message):
        where = f"{match[1]}:{match[2]}"
        message = message[: match.start()]
    else:
        where = str(text.count("\n") + 1)
        if match := _DECODE_END.search(message):
            message = message[: match.start()] + " at the end of the file"
    return f"{source}:{where}: malformed TOML: {message}"


def _toml_type(value: object) -> str:
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime, "a date-time"),
        ((date, time), "a date or time"),
    )
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return type(value).__name__  # pragma: no cover - tomllib produces nothing else


def _dotted(path: Sequence[str]) -> str:
    return ".".join(p if _BARE_KEY.fullmatch(p) else _quote(p) for p in path)


def _quote(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class _Validator:
    """Turns a parsed document into a :class:`Policy`, or raises on the first problem."""

    def __init__(self, text: str, source: str) -> None:
        self._text = text
        self._source = source
        self._lines: TomlLineMap | None = None

    # -- reporting

    def fail(self, path: _Path, message: str, *, at: _Path | None = None) -> NoReturn:
        """Raise a PolicyError about ``path``, on the line of ``at`` (default: ``path``)."""
        if self._lines is None:
            self._lines = TomlLineMap(self._text)
        line = self._lines.line_of(path if at is None else at)
        if path:
            dotted = _dotted(path)
            raise PolicyError(f"{self._source}:{line}: {dotted}: {message}", field=dotted)
        raise PolicyError(f"{self._source}:{line}: {message}")

    def keys(
        self,
        table: Mapping[str, object],
        path: _Path,
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> None:
        for key in table:
            if key not in allowed:
                expected = ", ".join(allowed)
                where = "top-level key" if not path else "key"
                self.fail(
                    path, f"unknown {where} {key!r}; expected one of {expected}", at=(*path, key)
                )
        for key in required:
            if key not in table:
                self.fail(path, f"missing key {key!r}")

    # -- scalars

    def table(self, value: object, path: _Path) -> dict[str, object]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a table, got {_toml_type(value)}")
        return value

    def integer(self, value: object, path: _Path, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_toml_type(value)}")
        if value < minimum:
            self.fail(path, f"must be at least {minimum}, got {value}")
        return value

    def number(self, value: object, path: _Path, *, positive: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"expected a number, got {_toml_type(value)}")
        number = float(value)
        if not math.isfinite(number):
            self.fail(path, f"must be finite, got {value}")
        if positive and number <= 0:
            self.fail(path, f"must be greater than 0, got {value}")
        if number < 0:
            self.fail(path, f"must not be negative, got {value}")
        return number

    def string(self, value: object, path: _Path) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_toml_type(value)}")
        return value

    def names(
        self, value: object, path: _Path, what: str, vocabulary: Sequence[str]
    ) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(path, f"expected an array of {what} names, got {_toml_type(value)}")
        names: list[str] = []
        for index, item in enumerate(value):
            name = self.string(item, (*path, str(index)))
            if name not in vocabulary:
                expected = ", ".join(vocabulary)
                self.fail(path, f"unknown {what} {name!r}; expected one of {expected}")
            if name in names:
                self.fail(path, f"{name!r} is listed twice")
            names.append(name)
        return tuple(names)

    # -- the schema

    def policy(self, document: dict[str, object]) -> Policy:
        self.keys(document, (), _TOP_KEYS, required=("defaults", "types"))
        freshness_s = DEFAULT_FRESHNESS_S
        if "freshness_s" in document:
            freshness_s = self.number(document["freshness_s"], ("freshness_s",), positive=True)
        defaults = self.table(document["defaults"], _DEFAULTS)
        self.keys(defaults, _DEFAULTS, _DEFAULT_KEYS, required=_DEFAULT_KEYS)
        self.settings(defaults, _DEFAULTS, defaults)  # each default checked where it is written

        types_path = ("types",)
        types = self.table(document["types"], types_path)
        incidents = {name: self.incident(name, body, defaults) for name, body in types.items()}
        for name in CONTRACT_TYPES:
            if name not in incidents:
                contract = ", ".join(CONTRACT_TYPES)
                self.fail(
                    types_path,
                    f"missing incident type {name!r} (the contract's types: {contract})",
                )
        return Policy(
            incidents=MappingProxyType(incidents), freshness_s=freshness_s, source=self._source
        )

    def incident(self, name: str, body: object, defaults: Mapping[str, object]) -> IncidentPolicy:
        path = ("types", name)
        if not _TYPE_NAME.fullmatch(name):
            self.fail(path, "an incident type's name must be a lower-case wire name ([a-z0-9_])")
        table = self.table(body, path)
        self.keys(table, path, _TYPE_KEYS, required=("needs", "quota"))
        label = self.string(table["label"], (*path, "label")) if "label" in table else name
        needs = self.needs(table["needs"], (*path, "needs"))
        quota = self.quota(table["quota"], (*path, "quota"))
        settings = self.settings(table, path, defaults)
        return IncidentPolicy(
            name=name,
            label=label,
            needs=needs,
            quota=quota,
            severity_factor=settings.severity_factor,
            offer_timeout_s=settings.offer_timeout_s,
            max_open_offers=settings.max_open_offers,
            widen_after_s=settings.widen_after_s,
            widen_steps_s=settings.widen_steps_s,
            points=settings.points,
            points_per_hour=settings.points_per_hour,
        )

    def settings(
        self, table: Mapping[str, object], path: _Path, defaults: Mapping[str, object]
    ) -> _Settings:
        """The keys ``[defaults]`` holds, from ``table`` where it has them, else the defaults."""

        def lookup(key: str) -> tuple[object, _Path]:
            if key in table:
                return table[key], (*path, key)
            return defaults[key], (*_DEFAULTS, key)

        factor_key = "severity_factor"
        factor_path: _Path = (*_DEFAULTS, factor_key)
        factors = self.severity_factor(defaults[factor_key], factor_path, complete=True)
        if factor_key in table and path != _DEFAULTS:  # a type's partial table overrides
            factor_path = (*path, factor_key)
            factors = {**factors, **self.severity_factor(table[factor_key], factor_path)}
        return _Settings(
            offer_timeout_s=self.number(*lookup("offer_timeout_s"), positive=True),
            max_open_offers=self.integer(*lookup("max_open_offers"), minimum=1),
            widen_after_s=self.number(*lookup("widen_after_s"), positive=False),
            widen_steps_s=self.widen_steps(*lookup("widen_steps_s")),
            points=self.integer(*lookup("points"), minimum=0),
            points_per_hour=self.integer(*lookup("points_per_hour"), minimum=0),
            severity_factor=self.check_factors(factors, factor_path),
        )

    def widen_steps(self, value: object, path: _Path) -> tuple[float, ...]:
        if not isinstance(value, list):
            self.fail(path, f"expected an array of seconds, got {_toml_type(value)}")
        steps = tuple(
            self.number(item, (*path, str(i)), positive=True) for i, item in enumerate(value)
        )
        previous = float(RINGS_S[-1])
        for step in steps:
            if step <= previous:
                self.fail(
                    path,
                    f"steps must go beyond the {RINGS_S[-1]} s ring and increase: "
                    f"{step:g} after {previous:g}",
                )
            previous = step
        return steps

    def severity_factor(
        self, value: object, path: _Path, *, complete: bool = False
    ) -> dict[int, float]:
        table = self.table(value, path)
        keys = [str(s) for s in SEVERITIES]
        self.keys(table, path, keys, required=keys if complete else ())
        return {
            int(key): self.number(table[key], (*path, key), positive=True)
            for key in keys
            if key in table
        }

    def check_factors(
        self, factors: Mapping[int, float], path: _Path
    ) -> tuple[float, float, float]:
        low, mid, high = (factors[s] for s in SEVERITIES)
        if mid != 1:
            self.fail(
                path,
                f"the factor of severity 2 (the default) must be 1, got {mid:g}: "
                "a type's quota is written for severity 2",
                at=(*path, "2"),
            )
        if not low <= mid <= high:
            self.fail(
                path,
                f"factors must not decrease with severity: 1 = {low:g}, 2 = {mid:g}, 3 = {high:g}",
            )
        return low, mid, high

    def needs(self, value: object, path: _Path) -> Needs:
        table = self.table(value, path)
        self.keys(table, path, _NEEDS_KEYS)
        roles = self.names(table.get("roles", []), (*path, "roles"), "role", ROLE_NAMES)
        teams = self.names(table.get("teams", []), (*path, "teams"), "team", TEAM_NAMES)
        return Needs(
            roles=roles,
            teams=teams,
            role_mask=mask_of(Role, roles),
            team_mask=mask_of(Team, teams),
        )

    def quota(self, value: object, path: _Path) -> tuple[int, int, int]:
        table = self.table(value, path)
        rings = [str(r) for r in RING_MINUTES]
        self.keys(table, path, rings, required=rings)
        counts = [self.integer(table[ring], (*path, ring), minimum=0) for ring in rings]
        for inner in range(len(rings) - 1):
            outer = inner + 1
            if counts[outer] < counts[inner]:
                self.fail(
                    path,
                    f"quotas are cumulative and must not decrease: {rings[outer]} = "
                    f"{counts[outer]} is less than {rings[inner]} = {counts[inner]}",
                    at=(*path, rings[outer]),
                )
        one, three, five = counts
        return one, three, five


# --- line numbers ---------------------------------------------------------------------------

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_KEY_PART: Final = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY: Final = rf"{_KEY_PART}(?:[ \t]*\.[ \t]*{_KEY_PART})*"
_HEADER: Final = re.compile(rf"[ \t]*\[\[?[ \t]*(?P<key>{_DOTTED_KEY})[ \t]*\]")
_KEYVAL: Final = re.compile(rf"[ \t]*(?P<key>{_DOTTED_KEY})[ \t]*=")


def _split_key(dotted: str) -> _Path:
    parts: list[str] = []
    for match in re.finditer(_KEY_PART, dotted):
        part = match[0]
        if part.startswith('"'):
            parts.append(str(tomllib.loads(f"k = {part}")["k"]))
        elif part.startswith("'"):
            parts.append(part[1:-1])
        else:
            parts.append(part)
    return tuple(parts)


class TomlLineMap:
    """The line on which each key path of a TOML document is defined.

    tomllib reports no positions for values, so error messages find their line here: one pass
    over the source that follows table headers (``[a.b]``, ``[[a.b]]``), key/value lines
    (dotted and quoted keys included), and skips what may span lines (multi-line strings and
    arrays) so that text inside them is never taken for a key. Meant for documents tomllib has
    already accepted.

    Args:
        text: the TOML source.
    """

    def __init__(self, text: str) -> None:
        self._defined: dict[_Path, int] = {}  # headers and keys, where written
        self._implied: dict[_Path, int] = {}  # tables created by a longer path, first use
        self._scan(text)

    def line_of(self, path: Sequence[str]) -> int:
        """The 1-based line that defines ``path``, or the nearest enclosing table that has one.

        A key inside an inline table (``quota = { 1 = 1 }``) or an array element maps to the
        line of its enclosing key; a table only implied by a dotted key or a sub-table header
        maps to its first use; a path the document lacks entirely maps to line 1.

        Args:
            path: the key path, e.g. ``("types", "fire", "quota", "1")``.
        """
        key = tuple(path)
        while key:
            for found in (self._defined, self._implied):
                if key in found:
                    return found[key]
            key = key[:-1]
        return 1

    def _record(self, path: _Path, line: int) -> None:
        self._defined.setdefault(path, line)
        for end in range(1, len(path)):
            self._implied.setdefault(path[:end], line)

    def _scan(self, text: str) -> None:
        table: _Path = ()
        scanner = _ValueScanner()
        for number, line in enumerate(text.split("\n"), start=1):
            start = 0
            if scanner.at_top_level:
                if header := _HEADER.match(line):
                    table = _split_key(header["key"])
                    self._record(table, number)
                    continue
                if keyval := _KEYVAL.match(line):
                    self._record((*table, *_split_key(keyval["key"])), number)
                    start = keyval.end()
            scanner.feed(line, start)


class _ValueScanner:
    """Tracks, line by line, whether we are inside a multi-line string or an open bracket."""

    def __init__(self) -> None:
        self.string: str | None = None  # the closing delimiter of an open multi-line string
        self.depth = 0

    @property
    def at_top_level(self) -> bool:
        return self.string is None and self.depth == 0

    def feed(self, line: str, i: int) -> None:
        n = len(line)
        while i < n:
            if self.string is not None:
                i = self._in_multiline(line, i)
                continue
            char = line[i]
            if char == "#":
                return
            if line.startswith(('"""', "'''"), i):
                self.string = line[i : i + 3]
                i += 3
                continue
            if char == '"':
                i = self._skip_basic(line, i + 1)
                continue
            if char == "'":
                end = line.find("'", i + 1)
                i = n if end < 0 else end + 1
                continue
            if char in "[{":
                self.depth += 1
            elif char in "]}":
                self.depth = max(0, self.depth - 1)
            i += 1

    def _in_multiline(self, line: str, i: int) -> int:
        delimiter = self.string
        assert delimiter is not None
        n = len(line)
        while i < n:
            if delimiter == '"""' and line[i] == "\\":
                i += 2
                continue
            if line.startswith(delimiter, i):
                i += 3
                extra = 0  # up to two quotes may sit right before the closing delimiter
                while i < n and extra < 2 and line[i] == delimiter[0]:
                    i += 1
                    extra += 1
                self.string = None
                return i
            i += 1
        return n

    @staticmethod
    def _skip_basic(line: str, i: int) -> int:
        n = len(line)
        while i < n:
            if line[i] == "\\":
                i += 2
            elif line[i] == '"':
                return i + 1
            else:
                i += 1
        return n
