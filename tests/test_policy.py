"""The incident policy: the shipped file, quotas per severity, and every way a file can be bad."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatch.core.policy import (
    DEFAULT_POLICY_PATH,
    RING_MINUTES,
    RINGS_S,
    IncidentPolicy,
    Needs,
    Policy,
    TomlLineMap,
    load_policy,
    parse_policy,
)
from dispatch.errors import InvalidInput, PolicyError
from units.vocab import Role, Team, mask_of

#: CONTRACT.md's incident types, written out independently of the module.
CONTRACT_TYPES = (
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

#: A small valid policy. Broken variants below change one thing and mark the line the error
#: must name with ``# <-``.
BASE = """\
freshness_s = 300

[defaults]
offer_timeout_s = 30
max_open_offers = 10
widen_after_s = 30
widen_steps_s = [600, 900]
points = 10
points_per_hour = 10
severity_factor = { 1 = 0.5, 2 = 1.0, 3 = 1.5 }

[types.public_order]
needs = { roles = ["patrol"], teams = ["watch"] }
quota = { 1 = 1, 3 = 2, 5 = 4 }

[types.dispute]
needs = { roles = ["mediator"], teams = ["mediation_room"] }
quota = { 1 = 0, 3 = 1, 5 = 2 }

[types.missing_person]
needs = { roles = ["patrol"], teams = ["watch", "youth"] }
quota = { 1 = 1, 3 = 3, 5 = 10 }
severity_factor = { 1 = 0.7, 3 = 2 }

[types.traffic_accident]
needs = { roles = ["patrol"] }
quota = { 1 = 1, 3 = 2, 5 = 3 }

[types.fire]
label = "火情"
needs = { roles = ["hazard_inspector"], teams = ["rescue"] }
quota = { 1 = 1, 3 = 3, 5 = 5 }
offer_timeout_s = 20
max_open_offers = 20
points = 20

[types.water_rescue]
needs = { teams = ["rescue"] }
quota = { 1 = 1, 3 = 2, 5 = 4 }

[types.medical]
needs = {}
quota = { 1 = 1, 3 = 2, 5 = 2 }

[types.school_safety]
needs = { roles = ["school_guard"] }
quota = { 1 = 1, 3 = 2, 5 = 3 }

[types.vulnerable_person]
needs = { roles = ["community_liaison"], teams = ["women"] }
quota = { 1 = 0, 3 = 1, 5 = 2 }
"""

FIRE_QUOTA = "quota = { 1 = 1, 3 = 3, 5 = 5 }"
FIRE_NEEDS = 'needs = { roles = ["hazard_inspector"], teams = ["rescue"] }'


def replace(old: str, new: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        assert text.count(old) == 1, old
        return text.replace(old, new)

    return mutate


def drop_type(name: str) -> Callable[[str], str]:
    """Remove ``[types.<name>]`` and its keys; mark the first ``[types.`` header."""

    def mutate(text: str) -> str:
        head, _, rest = text.partition(f"[types.{name}]\n")
        _, _, tail = rest.partition("\n\n")
        text = head + tail
        first = text.index("[types.")
        end = text.index("\n", first)
        return text[:end] + "  # <-" + text[end:]

    return mutate


# (id, mutation, substring of the message after "<source>:<line>:", the error's field)
BROKEN: list[tuple[str, Callable[[str], str], str, str | None]] = [
    (
        "unknown-top-level-key",
        replace("freshness_s = 300\n", "freshness_s = 300\nfreshness = 60  # <-\n"),
        "unknown top-level key 'freshness'",
        None,
    ),
    (
        "unknown-key-in-defaults",
        replace("points = 10\n", "points = 10\noffer_timeout = 30  # <-\n"),
        "defaults: unknown key 'offer_timeout'",
        "defaults",
    ),
    (
        "unknown-key-in-a-type",
        replace("points = 20\n", "points = 20\npriority = 1  # <-\n"),
        "types.fire: unknown key 'priority'",
        "types.fire",
    ),
    (
        "unknown-key-in-a-quota",
        replace(FIRE_QUOTA, "quota = { 1 = 1, 3 = 3, 5 = 5, ring7 = 9 }  # <-"),
        "types.fire.quota: unknown key 'ring7'; expected one of 1, 3, 5",
        "types.fire.quota",
    ),
    (
        "unknown-key-in-a-quota-sub-table",
        replace(
            '[types.water_rescue]\nneeds = { teams = ["rescue"] }\n'
            "quota = { 1 = 1, 3 = 2, 5 = 4 }\n",
            '[types.water_rescue]\nneeds = { teams = ["rescue"] }\n\n'
            "[types.water_rescue.quota]\n1 = 1\n3 = 2\n5 = 4\nring7 = 9  # <-\n",
        ),
        "types.water_rescue.quota: unknown key 'ring7'",
        "types.water_rescue.quota",
    ),
    (
        "unknown-key-in-needs",
        replace(FIRE_NEEDS, 'needs = { skills = ["fire"] }  # <-'),
        "types.fire.needs: unknown key 'skills'; expected one of roles, teams",
        "types.fire.needs",
    ),
    (
        "unknown-severity",
        replace("severity_factor = { 1 = 0.7, 3 = 2 }", "severity_factor = { 4 = 3 }  # <-"),
        "types.missing_person.severity_factor: unknown key '4'",
        "types.missing_person.severity_factor",
    ),
    (
        "wrong-type-string-for-number",
        replace("offer_timeout_s = 20\n", 'offer_timeout_s = "20"  # <-\n'),
        "types.fire.offer_timeout_s: expected a number, got a string",
        "types.fire.offer_timeout_s",
    ),
    (
        "wrong-type-float-for-integer",
        replace("max_open_offers = 10\n", "max_open_offers = 2.5  # <-\n"),
        "defaults.max_open_offers: expected an integer, got a float",
        "defaults.max_open_offers",
    ),
    (
        "wrong-type-boolean-for-integer",
        replace("points = 20\n", "points = true  # <-\n"),
        "types.fire.points: expected an integer, got a boolean",
        "types.fire.points",
    ),
    (
        "wrong-type-value-for-a-type-table",
        lambda text: replace("[types.medical]\nneeds = {}\nquota = { 1 = 1, 3 = 2, 5 = 2 }\n", "")(
            text
        ).replace("[types.public_order]", "[types]\nmedical = 1  # <-\n\n[types.public_order]"),
        "types.medical: expected a table, got an integer",
        "types.medical",
    ),
    (
        "wrong-type-label",
        replace('label = "火情"', "label = 119  # <-"),
        "types.fire.label: expected a string, got an integer",
        "types.fire.label",
    ),
    (
        "wrong-type-needs-roles",
        replace(FIRE_NEEDS, 'needs = { roles = "hazard_inspector" }  # <-'),
        "types.fire.needs.roles: expected an array of role names, got a string",
        "types.fire.needs.roles",
    ),
    (
        "wrong-type-datetime",
        replace("widen_after_s = 30\n", "widen_after_s = 2026-11-29T08:00:00Z  # <-\n"),
        "defaults.widen_after_s: expected a number, got a date-time",
        "defaults.widen_after_s",
    ),
    (
        "unknown-role",
        replace(FIRE_NEEDS, 'needs = { roles = ["firefighter"], teams = ["rescue"] }  # <-'),
        "types.fire.needs.roles: unknown role 'firefighter'; expected one of patrol,",
        "types.fire.needs.roles",
    ),
    (
        "unknown-team",
        replace(FIRE_NEEDS, 'needs = { roles = ["hazard_inspector"], teams = ["brigade"] }  # <-'),
        "types.fire.needs.teams: unknown team 'brigade'; expected one of rescue,",
        "types.fire.needs.teams",
    ),
    (
        "role-listed-twice",
        replace(FIRE_NEEDS, 'needs = { roles = ["patrol", "patrol"] }  # <-'),
        "types.fire.needs.roles: 'patrol' is listed twice",
        "types.fire.needs.roles",
    ),
    (
        "decreasing-quota",
        replace(FIRE_QUOTA, "quota = { 1 = 2, 3 = 1, 5 = 5 }  # <-"),
        "types.fire.quota: quotas are cumulative and must not decrease: 3 = 1 is less than 1 = 2",
        "types.fire.quota",
    ),
    (
        "decreasing-quota-in-a-sub-table",
        replace(
            '[types.water_rescue]\nneeds = { teams = ["rescue"] }\n'
            "quota = { 1 = 1, 3 = 2, 5 = 4 }\n",
            '[types.water_rescue]\nneeds = { teams = ["rescue"] }\n\n'
            "[types.water_rescue.quota]\n1 = 1\n3 = 2\n5 = 1  # <-\n",
        ),
        "types.water_rescue.quota: quotas are cumulative and must not decrease: 5 = 1",
        "types.water_rescue.quota",
    ),
    (
        "negative-quota",
        replace(FIRE_QUOTA, "quota = { 1 = -1, 3 = 3, 5 = 5 }  # <-"),
        "types.fire.quota.1: must be at least 0, got -1",
        "types.fire.quota.1",
    ),
    (
        "missing-ring",
        replace(FIRE_QUOTA, "quota = { 1 = 1, 3 = 3 }  # <-"),
        "types.fire.quota: missing key '5'",
        "types.fire.quota",
    ),
    (
        "missing-needs",
        replace(
            '[types.school_safety]\nneeds = { roles = ["school_guard"] }\n',
            "[types.school_safety]  # <-\n",
        ),
        "types.school_safety: missing key 'needs'",
        "types.school_safety",
    ),
    (
        "missing-default",
        replace("[defaults]\noffer_timeout_s = 30\n", "[defaults]  # <-\n"),
        "defaults: missing key 'offer_timeout_s'",
        "defaults",
    ),
    (
        "missing-defaults-table",
        lambda text: "# <-\n" + text[: text.index("[defaults]")] + text[text.index("[types.") :],
        "missing key 'defaults'",
        None,
    ),
    (
        "missing-type",
        drop_type("water_rescue"),
        "types: missing incident type 'water_rescue'",
        "types",
    ),
    (
        "negative-timeout",
        replace("offer_timeout_s = 20\n", "offer_timeout_s = -5  # <-\n"),
        "types.fire.offer_timeout_s: must be greater than 0, got -5",
        "types.fire.offer_timeout_s",
    ),
    (
        "negative-widen-after",
        replace("widen_after_s = 30\n", "widen_after_s = -1  # <-\n"),
        "defaults.widen_after_s: must not be negative",
        "defaults.widen_after_s",
    ),
    (
        "zero-freshness",
        replace("freshness_s = 300\n", "freshness_s = 0  # <-\n"),
        "freshness_s: must be greater than 0",
        "freshness_s",
    ),
    (
        "zero-open-offers",
        replace("max_open_offers = 20\n", "max_open_offers = 0  # <-\n"),
        "types.fire.max_open_offers: must be at least 1",
        "types.fire.max_open_offers",
    ),
    (
        "widen-steps-inside-the-rings",
        replace("widen_steps_s = [600, 900]", "widen_steps_s = [240, 900]  # <-"),
        "defaults.widen_steps_s: steps must go beyond the 300 s ring and increase: 240 after 300",
        "defaults.widen_steps_s",
    ),
    (
        "widen-steps-decreasing",
        replace("widen_steps_s = [600, 900]", "widen_steps_s = [900, 600]  # <-"),
        "600 after 900",
        "defaults.widen_steps_s",
    ),
    (
        "widen-steps-not-an-array",
        replace("widen_steps_s = [600, 900]", "widen_steps_s = 600  # <-"),
        "defaults.widen_steps_s: expected an array of seconds, got an integer",
        "defaults.widen_steps_s",
    ),
    (
        "widen-steps-bad-element-on-a-later-line",
        replace("widen_steps_s = [600, 900]", 'widen_steps_s = [  # <-\n  600,\n  "900",\n]'),
        "defaults.widen_steps_s.1: expected a number, got a string",
        "defaults.widen_steps_s.1",
    ),
    (
        "severity-2-not-1",
        replace(
            "severity_factor = { 1 = 0.5, 2 = 1.0, 3 = 1.5 }",
            "severity_factor = { 1 = 0.5, 2 = 1.2, 3 = 1.5 }  # <-",
        ),
        "defaults.severity_factor: the factor of severity 2 (the default) must be 1, got 1.2",
        "defaults.severity_factor",
    ),
    (
        "severity-factor-decreasing-after-a-partial-override",
        replace("severity_factor = { 1 = 0.7, 3 = 2 }", "severity_factor = { 3 = 0.9 }  # <-"),
        "types.missing_person.severity_factor: factors must not decrease with severity",
        "types.missing_person.severity_factor",
    ),
    (
        "severity-factor-zero",
        replace("severity_factor = { 1 = 0.7, 3 = 2 }", "severity_factor = { 1 = 0 }  # <-"),
        "types.missing_person.severity_factor.1: must be greater than 0",
        "types.missing_person.severity_factor.1",
    ),
    (
        "type-name-not-a-wire-name",
        lambda text: text + "\n[types.Flood]  # <-\nneeds = {}\nquota = { 1 = 0, 3 = 0, 5 = 1 }\n",
        "types.Flood: an incident type's name must be a lower-case wire name",
        "types.Flood",
    ),
    (
        "dotted-key-style",
        replace(FIRE_NEEDS, 'needs.roles = ["hazard_inspector"]\nneeds.teams = ["rescuers"]  # <-'),
        "types.fire.needs.teams: unknown team 'rescuers'",
        "types.fire.needs.teams",
    ),
    (
        "a-key-in-a-multi-line-string-is-not-mistaken",
        replace(
            'label = "火情"',
            'label = """\n[types.fire]\noffer_timeout_s = "x"\n"""\noffer_timeout = 1  # <-',
        ),
        "types.fire: unknown key 'offer_timeout'",
        "types.fire",
    ),
]


def marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(text.split("\n"), start=1) if "# <-" in line]
    assert len(lines) == 1, "exactly one line must carry the marker"
    return lines[0]


def test_base_is_valid() -> None:
    policy = parse_policy(BASE)
    assert policy.types == CONTRACT_TYPES


@pytest.mark.parametrize(
    ("mutate", "message", "field"),
    [pytest.param(m, msg, f, id=name) for name, m, msg, f in BROKEN],
)
def test_broken_files_name_line_and_key(
    mutate: Callable[[str], str], message: str, field: str | None
) -> None:
    text = mutate(BASE)
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="policy.toml")
    error = str(info.value)
    assert error.startswith(f"policy.toml:{marked_line(text)}: "), error
    assert message in error
    assert info.value.field == field


@pytest.mark.parametrize(
    ("text", "line", "column", "what"),
    [
        (
            BASE.replace(FIRE_QUOTA, "quota = { 1 = 1, 3 = 3, 5 = }"),
            BASE.split("\n").index(FIRE_QUOTA) + 1,
            29,
            "Invalid value",
        ),
        (BASE + "\n[types.fire]\nneeds = {}\n", None, None, "Cannot declare"),
        (BASE.replace("points = 20\n", "points = [1,\n"), None, None, "Invalid value"),
        (BASE.replace("freshness_s = 300", "freshness_s 300"), 1, 13, "Expected '='"),
    ],
    ids=["invalid-value", "table-declared-twice", "array-not-closed", "no-equals"],
)
def test_malformed_toml_names_line_and_column(
    text: str, line: int | None, column: int | None, what: str
) -> None:
    with pytest.raises(PolicyError, match="malformed TOML") as info:
        parse_policy(text, source="policy.toml")
    error = str(info.value)
    assert what in error
    assert isinstance(info.value.__cause__, Exception)
    prefix = error.split(": malformed TOML", maxsplit=1)[0]
    source, line_text, *rest = prefix.split(":")
    assert source == "policy.toml"
    assert int(line_text) >= 1
    if line is not None:
        assert int(line_text) == line
    if column is not None:
        assert rest == [str(column)]


def test_malformed_at_the_end_of_the_file_names_the_last_line() -> None:
    text = "freshness_s = 300\nfreshness_s = 60"
    with pytest.raises(PolicyError, match=r"^x\.toml:2: malformed TOML: .*end of the file"):
        parse_policy(text, source="x.toml")


# --- TomlLineMap ----------------------------------------------------------------------------

LINE_DOC = """\
# [types.fake] in a comment
top = 1
dotted . key = 2
"quoted.key" = 3

[a]
x = 1
y = { p = 1, q = [1, 2] }
multi = [
  1,  # [not] a = header
  "z = 2",
]
text = \"\"\"
w = 1
[b]
\"\"\"
lit = '''
v = 1 ''' # closed
after = 4

[ a . "b c" ]
k = 5

[[arr]]
n = 6

[deep.sub]
m = 7
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("top",), 2),
        (("dotted", "key"), 3),
        (("dotted",), 3),  # a table implied by a dotted key: its first use
        (("quoted.key",), 4),
        (("a",), 6),
        (("a", "x"), 7),
        (("a", "y"), 8),
        (("a", "y", "q", "1"), 8),  # inside an inline table: the enclosing key
        (("a", "multi"), 9),
        (("a", "multi", "1"), 9),
        (("a", "text"), 13),
        (("a", "lit"), 17),
        (("a", "after"), 19),
        (("a", "b c"), 21),
        (("a", "b c", "k"), 22),
        (("arr",), 24),
        (("arr", "n"), 25),
        (("deep",), 27),  # implied by [deep.sub]
        (("deep", "sub", "m"), 28),
        (("a", "nothing", "here"), 6),  # the nearest enclosing table
        (("nowhere",), 1),
        (("w",), 1),  # inside a multi-line string: never a key
        (("b",), 1),
        (("types",), 1),  # in a comment
    ],
)
def test_line_map(path: tuple[str, ...], line: int) -> None:
    assert TomlLineMap(LINE_DOC).line_of(path) == line


def test_line_map_counts_only_newlines() -> None:
    # A line separator inside a string is not a TOML newline (tomllib agrees).
    text = 'a = "x\u2028y"\nb = 1\n'
    assert TomlLineMap(text).line_of(("b",)) == 2


def test_line_map_handles_escapes_and_quotes_around_delimiters() -> None:
    text = 'a = "say \\"[x]\\" = 1"\nb = """one ""\\" [y] = 2 still""""\nc = 1\n'
    assert TomlLineMap(text).line_of(("c",)) == 3


# --- the shipped file -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy()


def test_shipped_policy_loads_and_covers_the_contract(shipped: Policy) -> None:
    assert DEFAULT_POLICY_PATH.name == "policy.toml"
    assert DEFAULT_POLICY_PATH.parent.name == "data"
    assert set(CONTRACT_TYPES) <= set(shipped.types)
    assert shipped.freshness_s == 300
    assert shipped.source == str(DEFAULT_POLICY_PATH)
    assert parse_policy(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")) == shipped


@pytest.mark.parametrize("name", CONTRACT_TYPES)
def test_shipped_quotas_are_sane_at_every_severity(shipped: Policy, name: str) -> None:
    policy = shipped.for_type(name)
    assert policy.name == name
    assert policy.label
    quotas = [policy.quota_for(s) for s in (1, 2, 3)]
    assert quotas[1] == dict(zip((1, 3, 5), policy.quota, strict=True))
    for quota in quotas:
        assert list(quota) == [1, 3, 5]
        assert quota[1] <= quota[3] <= quota[5]
        assert quota[5] >= 1, "every type wants somebody"
    for ring in (1, 3, 5):
        assert quotas[0][ring] <= quotas[1][ring] <= quotas[2][ring]
        assert (quotas[0][ring] == 0) == (quotas[1][ring] == 0)
    assert policy.offer_timeout_s > 0
    assert policy.max_open_offers >= 1
    assert all(step > 300 for step in policy.widen_steps_s)


def test_shipped_doctrine_examples(shipped: Policy) -> None:
    fire = shipped.for_type("fire")
    assert fire.quota_for(2) == {1: 1, 3: 3, 5: 5}
    assert fire.needs.met_by(mask_of(Role, ["hazard_inspector"]), 0)
    assert fire.needs.met_by(0, mask_of(Team, ["rescue"]))
    assert not fire.needs.met_by(mask_of(Role, ["patrol"]), mask_of(Team, ["women"]))
    water = shipped.for_type("water_rescue")
    assert (water.needs.roles, water.needs.teams) == ((), ("rescue",))
    assert shipped.for_type("dispute").needs.met_by(mask_of(Role, ["mediator"]), 0)
    assert shipped.for_type("dispute").needs.met_by(0, mask_of(Team, ["mediation_room"]))
    assert shipped.for_type("school_safety").needs.roles == ("school_guard",)
    liaison = shipped.for_type("vulnerable_person").needs
    assert set(liaison.roles) | set(liaison.teams) == {"community_liaison", "women"}
    assert shipped.for_type("medical").needs.anyone
    assert shipped.for_type("public_order").offer_timeout_s == 30  # the default


# --- quotas and the model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> Policy:
    return parse_policy(BASE)


@pytest.mark.parametrize(
    ("name", "severity", "expected"),
    [
        ("fire", 1, {1: 1, 3: 2, 5: 3}),  # ceil(0.5, 1.5, 2.5)
        ("fire", 2, {1: 1, 3: 3, 5: 5}),
        ("fire", 3, {1: 2, 3: 5, 5: 8}),  # ceil(1.5, 4.5, 7.5)
        ("dispute", 1, {1: 0, 3: 1, 5: 1}),  # zero stays zero, one stays at least one
        ("dispute", 3, {1: 0, 3: 2, 5: 3}),
        ("missing_person", 1, {1: 1, 3: 3, 5: 7}),  # 10 x 0.7 is exactly 7, not 8
        ("missing_person", 2, {1: 1, 3: 3, 5: 10}),
        ("missing_person", 3, {1: 2, 3: 6, 5: 20}),  # the type's own factor for 3
    ],
)
def test_quota_for(base: Policy, name: str, severity: int, expected: dict[int, int]) -> None:
    assert base.for_type(name).quota_for(severity) == expected


def test_quota_for_defaults_to_severity_2_and_returns_a_fresh_dict(base: Policy) -> None:
    fire = base.for_type("fire")
    quota = fire.quota_for()
    assert quota == {1: 1, 3: 3, 5: 5}
    quota[1] = 99
    assert fire.quota_for() == {1: 1, 3: 3, 5: 5}


@pytest.mark.parametrize("severity", [0, 4, -1, True, 2.0, "2", None])
def test_quota_for_rejects_other_severities(base: Policy, severity: object) -> None:
    with pytest.raises(InvalidInput, match="severity must be an integer from 1 to 3") as info:
        base.for_type("fire").quota_for(severity)  # type: ignore[arg-type]
    assert info.value.field == "severity"


def test_overrides_and_defaults(base: Policy) -> None:
    fire = base.for_type("fire")
    assert fire.label == "火情"
    assert (fire.offer_timeout_s, fire.max_open_offers, fire.points) == (20, 20, 20)
    assert (fire.widen_after_s, fire.widen_steps_s, fire.points_per_hour) == (30, (600, 900), 10)
    assert fire.severity_factor == (0.5, 1.0, 1.5)
    medical = base.for_type("medical")
    assert medical.label == "medical"
    assert medical.offer_timeout_s == 30
    assert base.for_type("missing_person").severity_factor == (0.7, 1.0, 2.0)


def test_needs_masks_match_the_vocabulary(base: Policy) -> None:
    needs = base.for_type("missing_person").needs
    assert needs == Needs(
        roles=("patrol",),
        teams=("watch", "youth"),
        role_mask=mask_of(Role, ["patrol"]),
        team_mask=mask_of(Team, ["watch", "youth"]),
    )
    assert not needs.anyone
    policy = base.for_type("missing_person")
    assert (policy.needs_roles, policy.needs_teams) == (needs.role_mask, needs.team_mask)
    assert Needs().anyone
    assert Needs().met_by(0, 0)


def test_unknown_type_is_invalid_input_naming_the_field(base: Policy) -> None:
    with pytest.raises(
        InvalidInput, match="unknown incident type 'flood'; expected one of"
    ) as info:
        base.for_type("flood")
    assert info.value.field == "type"
    assert not isinstance(info.value, PolicyError)


def test_extra_types_and_a_missing_freshness_are_allowed() -> None:
    text = BASE.replace("freshness_s = 300\n", "") + (
        '\n[types.flood]\nlabel = "汛情"\nneeds = { teams = ["rescue", "youth"] }\n'
        "quota = { 1 = 0, 3 = 2, 5 = 6 }\nwiden_steps_s = []\n"
    )
    policy = parse_policy(text)
    assert policy.types == (*CONTRACT_TYPES, "flood")
    assert policy.freshness_s == 300
    assert policy.for_type("flood").widen_steps_s == ()


def test_the_policy_is_frozen(base: Policy) -> None:
    fire: IncidentPolicy = base.for_type("fire")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fire.points = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        base.incidents["fire"] = fire  # type: ignore[index]


def test_the_rings_are_the_doctrine() -> None:
    assert RING_MINUTES == (1, 3, 5)
    assert RINGS_S == (60, 180, 300)


# --- the file ---------------------------------------------------------------------------------


def test_load_policy_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "county.toml"
    path.write_text(BASE.replace("points = 20\n", "points = -1\n"), encoding="utf-8")
    expected = rf"^{re.escape(str(path))}:\d+: types\.fire\.points: must be at least"
    with pytest.raises(PolicyError, match=expected):
        load_policy(path)
    path.write_text(BASE, encoding="utf-8")
    assert load_policy(path) == parse_policy(BASE)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(PolicyError, match=r"absent\.toml: cannot read the policy") as info:
        load_policy(path)
    assert isinstance(info.value.__cause__, OSError)


def test_load_policy_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(BASE.replace('"火情"', '"\u706b\u60c5"').encode("gbk"))
    with pytest.raises(PolicyError, match=r"gbk\.toml: not UTF-8"):
        load_policy(path)
