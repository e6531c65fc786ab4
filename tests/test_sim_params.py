"""Simulation parameters (read once, validated whole) and keyed random numbers (CRN)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from dispatch.errors import InvalidInput
from geo.modes import Mode
from simulations.keyed import id_key, id_keys, key_of, uniforms, uniforms_array
from simulations.params import DayParams, SiteParams, load_params, to_jsonable
from simulations.population import unit_modes


def test_uniforms_depend_only_on_their_key() -> None:
    a = uniforms(key_of(1, 2, 3), 4)
    assert a == uniforms(key_of(1, 2, 3), 4)
    assert a != uniforms(key_of(1, 2, 4), 4)
    assert all(0.0 < u < 1.0 for u in a)
    assert uniforms(key_of(1, 2, 3), 2) == a[:2], "more draws never change the first ones"


def test_uniforms_array_equals_the_scalar_form() -> None:
    keys = id_keys(["v1", "v2", "v3"])
    table = uniforms_array(keys, 7, 0, 4, n=3)
    for k, row in zip(keys.tolist(), table, strict=True):
        assert row.tolist() == uniforms(key_of(7, 0, 4, k), 3)


def test_keyed_uniforms_look_uniform() -> None:
    u = uniforms_array(np.arange(20_000, dtype=np.uint64), 42, n=2)
    assert abs(u.mean() - 0.5) < 0.01
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.03
    counts = np.histogram(u[:, 0], bins=10, range=(0, 1))[0]
    assert counts.min() > 1800


def test_id_key_is_stable_across_processes() -> None:
    # BLAKE2b, not the salted hash(): a fixed value
    assert id_key("v00001") == id_key("v00001")
    assert id_key("v00001") == int.from_bytes(
        hashlib.blake2b(b"v00001", digest_size=8).digest(), "little"
    )


def test_day_params_defaults_come_from_the_reference() -> None:
    p = DayParams()
    assert p.acceptance_mean == pytest.approx(0.287)
    assert p.turnout_median_s["home"] == 105.0
    assert p.turnout_median_s["night"] == 142.0
    assert p.turnout_median_s["patrol"] == 0.0
    assert p.is_night(23)
    assert p.is_night(3)
    assert not p.is_night(12)


def test_unknown_keys_and_bad_values_are_errors_that_name_the_key() -> None:
    with pytest.raises(InvalidInput, match="acceptence_mean: unknown parameter") as info:
        DayParams.from_mapping({"acceptence_mean": 0.3}, "cfg.toml")
    assert info.value.field == "acceptence_mean"
    with pytest.raises(InvalidInput, match="acceptance_mean: must be in"):
        DayParams.from_mapping({"acceptance_mean": 1.5})
    with pytest.raises(InvalidInput, match="days: expected an integer"):
        DayParams.from_mapping({"days": 1.5})
    with pytest.raises(InvalidInput, match="hourly_profile"):
        DayParams.from_mapping({"hourly_profile": [1.0] * 23})
    with pytest.raises(InvalidInput, match=r"turnout_median_s\.bus"):
        DayParams.from_mapping({"turnout_median_s": {"bus": 3}})
    with pytest.raises(InvalidInput, match="objective"):
        SiteParams.from_mapping({"objective": "best"})


def test_a_partial_turnout_table_overrides_only_what_it_names() -> None:
    p = DayParams.from_mapping({"turnout_median_s": {"home": 90}})
    assert p.turnout_median_s["home"] == 90.0
    assert p.turnout_median_s["night"] == 142.0


def test_parameters_round_trip_through_toml_json_and_a_manifest(tmp_path: Path) -> None:
    toml = tmp_path / "day.toml"
    toml.write_text("seed = 7\ndays = 2\n[type_mix]\nfire = 1.0\n", encoding="utf-8")
    p = load_params(toml, DayParams)
    assert (p.seed, p.days, dict(p.type_mix)) == (7, 2, {"fire": 1.0})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"command": "day", "parameters": to_jsonable(p)}))
    assert load_params(manifest, DayParams) == p
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"not valid TOML/JSON"):
        load_params(bad, DayParams)


def test_replace_validates_again() -> None:
    p = DayParams().replace(seed=3, acceptance_mean=0.5)
    assert (p.seed, p.acceptance_mean) == (3, 0.5)
    with pytest.raises(InvalidInput):
        DayParams().replace(silent_share=-0.1)


def test_unit_modes_follow_the_mix_by_largest_remainder() -> None:
    mix = {Mode.WALK: 0.15, Mode.BIKE: 0.14, Mode.EBIKE: 0.52, Mode.CAR: 0.19}
    modes = unit_modes(12, mix)
    assert len(modes) == 12
    counts = {m: modes.count(m) for m in Mode}
    assert counts == {Mode.WALK: 2, Mode.BIKE: 2, Mode.EBIKE: 6, Mode.CAR: 2}
    assert unit_modes(0, mix) == []
    with pytest.raises(ValueError, match="size"):
        unit_modes(-1, mix)
