"""Settings: read once, from TOML and the environment, unknown keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.settings import Settings, SettingsError

TOKEN = "a-long-operator-token-0001"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "dispatch.toml"
    config.write_text(
        f'store = "memory"\ndata_dir = "/srv/x"\noperator_tokens = ["{TOKEN}"]\n', "utf-8"
    )
    settings = Settings.from_env(
        {"DISPATCH_CONFIG": str(config), "DISPATCH_DATA_DIR": "/srv/y", "HOME": "/root"}
    )
    assert settings.store == "memory"
    assert settings.data_dir == Path("/srv/y")
    assert settings.operator_tokens == (TOKEN,)
    env = Settings.from_env({"DISPATCH_OPERATOR_TOKENS": f"{TOKEN}, {TOKEN}2 ,"})
    assert env.operator_tokens == (TOKEN, f"{TOKEN}2")
    assert Settings.from_env({}).store == "sqlite"


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({"DISPATCH_STOR": "memory"}, "DISPATCH_STOR"),
        ({"DISPATCH_STORE": "postgres"}, "store"),
        ({"DISPATCH_TRAVEL_MODEL": "teleport"}, "travel_model"),
        ({"DISPATCH_MAX_BODY": "lots"}, "max_body_bytes"),
        ({"DISPATCH_MAX_BODY": "10"}, "max_body_bytes"),
        ({"DISPATCH_OPERATOR_TOKENS": "short"}, "operator_tokens"),
        ({"DISPATCH_CONFIG": "/nonexistent/dispatch.toml"}, "DISPATCH_CONFIG"),
    ],
)
def test_bad_settings_name_the_setting(environ: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(environ)
    assert info.value.field == field


def test_unknown_or_malformed_keys_in_the_file_are_errors(tmp_path: Path) -> None:
    config = tmp_path / "dispatch.toml"
    config.write_text('store = "memory"\ncolour = "blue"\n', "utf-8")
    with pytest.raises(SettingsError, match="colour"):
        Settings.from_env({"DISPATCH_CONFIG": str(config)})
    config.write_text("store = \n", "utf-8")
    with pytest.raises(SettingsError, match=r"dispatch\.toml"):
        Settings.from_env({"DISPATCH_CONFIG": str(config)})
    config.write_text("max_body_bytes = [1]\n", "utf-8")
    with pytest.raises(SettingsError, match="max_body_bytes"):
        Settings.from_env({"DISPATCH_CONFIG": str(config)})
