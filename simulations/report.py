"""Run folders, files and the manifest that makes a run repeatable.

Theory of operation
-------------------
Every run writes into one folder, ``out/<command>-<UTC timestamp>/`` unless ``--out`` names
one: CSV for spreadsheets, JSON for programs, GeoJSON for GIS (RFC 7946: WGS84 lon/lat, no
``crs`` member), PNG plots, and ``manifest.json``. The manifest holds everything the results
depend on: the command line, the seed and every parameter (a file ``--config`` reads back),
the travel model and its settings, the dataset (path, ``build.json`` and the SHA-256 of each of
its files), the policy file's SHA-256, the git revision (and whether the tree had local
changes), the library versions, and the SHA-256 of every output. Same inputs and same
revision give the same numbers: every random draw is keyed by the seed.

JSON has no ``inf`` or ``nan``: they are written as the strings ``"inf"`` and ``"nan"``
(:func:`jsonable`), never as invalid bare tokens.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "REPO_ROOT",
    "dataset_fingerprint",
    "file_sha256",
    "git_revision",
    "jsonable",
    "run_folder",
    "write_csv",
    "write_geojson",
    "write_json",
    "write_manifest",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
_VERSIONED: Final = ("numpy", "scipy", "h3", "matplotlib", "shapely", "geopandas", "pyproj")


def run_folder(command: str, out: Path | None, *, now: dt.datetime | None = None) -> Path:
    """Create the run's folder: ``out`` if given, else ``out/<command>-<UTC timestamp>``.

    Args:
        command: the sub-command (``coverage``, ``day``, ``site``).
        out: an explicit folder (created if missing; files in it are overwritten).
        now: the timestamp to use (default: the current UTC time).
    """
    if out is None:
        stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
        out = Path("out") / f"{command}-{stamp}"
        suffix = 1
        while out.exists():
            out = Path("out") / f"{command}-{stamp}-{suffix}"
            suffix += 1
    out.mkdir(parents=True, exist_ok=True)
    return out


def jsonable(value: Any) -> Any:  # noqa: PLR0911 (one return per kind of value)
    """``value`` with numpy scalars and arrays made plain, ``inf``/``nan`` as strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, value: Any) -> Path:
    """Write ``value`` as indented UTF-8 JSON (see :func:`jsonable`)."""
    path.write_text(
        json.dumps(jsonable(value), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    return path


def _cell(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}" if abs(value) < 1e15 else repr(value)
    return value


def write_csv(
    path: Path, rows: Iterable[Mapping[str, object]], fields: Sequence[str] | None = None
) -> Path:
    """Write rows as UTF-8 CSV (floats to 6 significant digits, ``nan`` empty, ``inf``).

    Args:
        path: the file.
        rows: one mapping per row.
        fields: the columns, in order; default: the first row's keys.
    """
    rows = list(rows)
    columns = list(fields) if fields is not None else (list(rows[0]) if rows else [])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return path


def write_geojson(
    path: Path,
    lat: Sequence[float] | np.ndarray,
    lon: Sequence[float] | np.ndarray,
    properties: Sequence[Mapping[str, object]],
) -> Path:
    """Write points as an RFC 7946 FeatureCollection (one feature per line).

    Raises:
        ValueError: the columns differ in length.
    """
    if not len(lat) == len(lon) == len(properties):
        raise ValueError("lat, lon and properties differ in length")
    features = [
        json.dumps(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(float(x), 6), round(float(y), 6)],
                },
                "properties": jsonable(dict(p)),
            },
            ensure_ascii=False,
            allow_nan=False,
        )
        for y, x, p in zip(lat, lon, properties, strict=True)
    ]
    body = ",\n".join(features)
    path.write_text(
        f'{{"type": "FeatureCollection", "features": [\n{body}\n]}}\n', encoding="utf-8"
    )
    return path


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_revision(root: Path = REPO_ROOT) -> dict[str, object]:
    """The repository's HEAD, whether tracked files have local changes, and the SHA-256 of
    ``git diff HEAD`` (so a run on a dirty tree can still be matched to its code); ``None``
    values outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "diff", "HEAD"], cwd=root, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"revision": None, "dirty": None, "diff_sha256": None}
    return {
        "revision": head,
        "dirty": bool(diff.strip()),
        "diff_sha256": hashlib.sha256(diff).hexdigest() if diff.strip() else None,
    }


def dataset_fingerprint(folder: Path) -> dict[str, object]:
    """The dataset's path, its ``build.json`` (seed, counts) and the SHA-256 of its files."""
    build_path = folder / "build.json"
    build: object = None
    if build_path.is_file():
        try:
            build = json.loads(build_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            build = None
    files = {
        p.name: file_sha256(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix in (".geojson", ".csv", ".json")
    }
    return {"path": str(folder.resolve()), "build": build, "files": files}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_manifest(
    folder: Path,
    *,
    command: str,
    argv: Sequence[str],
    parameters: Mapping[str, object],
    seed: int | None,
    travel: Mapping[str, object],
    dataset: Path,
    policy: Path | None,
    started: dt.datetime,
    extra: Mapping[str, object] | None = None,
) -> Path:
    """Write ``manifest.json`` describing the run and every file already in ``folder``.

    Args:
        folder: the run's folder (its files, sub-folders included, are listed with their
            SHA-256).
        command: the sub-command.
        argv: the command line's arguments.
        parameters: every parameter (``--config`` reads this object back).
        seed: the root seed (``None`` when the run draws nothing).
        travel: the travel model's name and settings.
        dataset: the dataset folder.
        policy: the policy file, if the run used one.
        started: when the run started (UTC).
        extra: anything else worth keeping (e.g. the scenario's sites).
    """
    finished = dt.datetime.now(dt.UTC)
    outputs = {
        p.relative_to(folder).as_posix(): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p != folder / "manifest.json"
    }
    rerun = " ".join([sys.executable, "-m", "simulations", command, *argv])
    manifest: dict[str, object] = {
        "command": command,
        "argv": list(argv),
        "rerun": rerun,
        "seed": seed,
        "parameters": dict(parameters),
        "travel_model": dict(travel),
        "dataset": dataset_fingerprint(dataset),
        "policy": None
        if policy is None
        else {"path": str(policy.resolve()), "sha256": file_sha256(policy)},
        "git": git_revision(),
        "versions": _versions(),
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "elapsed_s": (finished - started).total_seconds(),
        "outputs": outputs,
    }
    if extra:
        manifest.update(extra)
    return write_json(folder / "manifest.json", manifest)
