"""Settings: read once at start-up, frozen, passed down.

Sources, later ones winning: defaults, the TOML file named by ``DISPATCH_CONFIG`` (if set),
then the ``DISPATCH_*`` environment variables. Nothing reads the environment at import time:
:meth:`Settings.from_env` is called by the command line, tests build :class:`Settings`
directly. An unknown key (in the file, or an unknown ``DISPATCH_*`` variable) is an error, not
silently ignored.

=========================  ====================  ==========================================
environment                TOML key              meaning
=========================  ====================  ==========================================
``DISPATCH_STORE``         ``store``             ``sqlite`` (default), ``memory``, ``redis``
``DISPATCH_DATA_DIR``      ``data_dir``          folder of the sqlite file (default ``./var``)
``DISPATCH_REDIS_URL``     ``redis_url``         Redis URL for ``store = "redis"``
``DISPATCH_OPERATOR_TOKENS`` ``operator_tokens`` comma-separated operator bearer tokens
``DISPATCH_DATASET``       ``dataset``           county dataset folder (default: bundled)
``DISPATCH_POLICY``        ``policy``            incident policy file (default: bundled)
``DISPATCH_TRAVEL_MODEL``  ``travel_model``      ``crow-fly`` (default) or ``road``
``DISPATCH_MAX_BODY``      ``max_body_bytes``    request body cap, bytes (default 1 MiB)
``DISPATCH_FAKE_CLOCK_START`` ``fake_clock_start`` run on a fake clock (drills and tests)
``DISPATCH_GC_FULL_EVERY_S`` ``gc_full_every_s``  full GC between events this often when no
                                                 offer is open (default 600; 0 = Python's)
``DISPATCH_GC_FULL_MAX_S`` ``gc_full_max_s``      ... and at the latest this often (3600)
=========================  ====================  ==========================================
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Final, Literal, cast

from dispatch.errors import InvalidInput

__all__ = ["DEFAULT_DATASET", "Settings", "SettingsError"]

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_DATASET: Final = REPO / "data" / "gucheng"
StoreKind = Literal["sqlite", "memory", "redis"]
TravelKind = Literal["crow-fly", "road"]


class SettingsError(InvalidInput):
    """A setting is unknown or has a bad value; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to start, immutable."""

    store: StoreKind = "sqlite"
    data_dir: Path = Path("var")
    redis_url: str = "redis://127.0.0.1:6379/0"
    operator_tokens: tuple[str, ...] = ()
    dataset: Path = DEFAULT_DATASET
    policy: Path | None = None
    travel_model: TravelKind = "crow-fly"
    max_body_bytes: int = 1 << 20
    position_flush_s: float = 1.0
    feed_batch_s: float = field(default=1.0)
    #: Run on a FakeClock starting here (epoch seconds) that only the operator's
    #: ``POST /api/v1/admin/clock/advance`` moves: for drills and end-to-end tests.
    fake_clock_start: float | None = None
    #: The garbage-collector schedule (dispatch/gcpolicy.py); 0 leaves Python's own.
    gc_full_every_s: float = 600.0
    gc_full_max_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.store not in ("sqlite", "memory", "redis"):
            raise SettingsError(
                f"store must be sqlite, memory or redis, got {self.store!r}", field="store"
            )
        if self.travel_model not in ("crow-fly", "road"):
            raise SettingsError(
                f"travel_model must be crow-fly or road, got {self.travel_model!r}",
                field="travel_model",
            )
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes must be at least 1024", field="max_body_bytes")
        if not (0.0 <= self.gc_full_every_s < float("inf")):
            raise SettingsError(
                "gc_full_every_s must be >= 0 (0: Python's own schedule)", field="gc_full_every_s"
            )
        if not (
            self.gc_full_every_s <= self.gc_full_max_s < float("inf") and self.gc_full_max_s > 0
        ):
            raise SettingsError(
                "gc_full_max_s must be > 0 and >= gc_full_every_s", field="gc_full_max_s"
            )
        for token in self.operator_tokens:
            if len(token) < 16:
                raise SettingsError(
                    "operator tokens must be at least 16 characters", field="operator_tokens"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``DISPATCH_CONFIG`` (TOML) and ``DISPATCH_*`` variables.

        Raises:
            SettingsError: an unknown key or variable, a bad value, an unreadable file.
        """
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        config = env.pop("DISPATCH_CONFIG", None)
        if config:
            values.update(_read_toml(Path(config)))
        known = {f.name for f in fields(cls)}
        for key, raw in env.items():
            if not key.startswith("DISPATCH_"):
                continue
            name = key.removeprefix("DISPATCH_").lower()
            name = {"max_body": "max_body_bytes"}.get(name, name)
            if name not in known:
                raise SettingsError(f"unknown setting {key}", field=key)
            values[name] = raw
        return cls()._with(values)

    def _with(self, values: Mapping[str, object]) -> Settings:
        known = {f.name: f for f in fields(self)}
        converted: dict[str, object] = {}
        for name, raw in values.items():
            if name not in known:
                raise SettingsError(f"unknown setting {name!r}", field=name)
            converted[name] = _convert(name, raw)
        return replace(self, **converted)  # type: ignore[arg-type]


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}", field="DISPATCH_CONFIG") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}", field="DISPATCH_CONFIG") from exc


def _convert(name: str, raw: object) -> object:
    try:
        if name in ("data_dir", "dataset", "policy"):
            return Path(str(raw))
        if name == "operator_tokens":
            items = raw.split(",") if isinstance(raw, str) else list(cast(list[str], raw))
            return tuple(t.strip() for t in items if t.strip())
        if name == "max_body_bytes":
            return int(cast(str, raw))
        if name in (
            "position_flush_s",
            "feed_batch_s",
            "fake_clock_start",
            "gc_full_every_s",
            "gc_full_max_s",
        ):
            return float(cast(str, raw))
        if isinstance(raw, str):
            return raw
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{name}: bad value {raw!r}", field=name) from exc
    raise SettingsError(f"{name} must be a string, got {type(raw).__name__}", field=name)
