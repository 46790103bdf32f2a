"""Materials files and mixture compositions.

Materials file
--------------
TOML, one table per material: ``[materials.NAME]`` with
``true_density_g_cm3`` (required), ``aliases`` (list) and ``source``
(text).  Names and aliases match case-insensitively.  An example ships as
``poromet/data/materials.toml``; real work needs pycnometer values.

Compositions are written as the patents write mixtures, in parts by mass
(``NCM622:80;SE:17;CB:2;SBR:1``); :func:`parse_composition` reads them.
These names are also importable from :mod:`poromet.sheet`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import density as dn
from .errors import DensityError

__all__ = ["Material", "read_materials", "parse_composition", "default_materials_path"]

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def default_materials_path() -> Path:
    """The example materials file shipped with poromet."""
    return Path(__file__).parent / "data" / "materials.toml"


@dataclass(frozen=True)
class Material:
    """A material's true density and where the value came from."""

    name: str
    true_density_g_cm3: float
    aliases: tuple[str, ...] = ()
    source: str = ""


def _materials_from_table(table: Any, where: str) -> dict[str, Material]:
    if not isinstance(table, dict):
        raise DensityError(f"{where}: got {table!r}; allowed: a table of [materials.NAME] tables")
    out: dict[str, Material] = {}
    for name, entry in table.items():
        loc = f"{where}: materials.{name}"
        if not isinstance(entry, dict):
            raise DensityError(f"{loc}: got {entry!r}; allowed: a table with true_density_g_cm3")
        unknown = set(entry) - {"true_density_g_cm3", "aliases", "source"}
        if unknown:
            raise DensityError(
                f"{loc}.{sorted(unknown)[0]}: unknown key; allowed: true_density_g_cm3, aliases, source"
            )
        if "true_density_g_cm3" not in entry:
            raise DensityError(f"{loc}.true_density_g_cm3: missing; allowed: a number > 0 (g/cm³)")
        try:
            rho = dn._number("true_density_g_cm3", entry["true_density_g_cm3"])
        except DensityError as exc:
            raise DensityError(f"{loc}.{exc}") from None
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise DensityError(f"{loc}.aliases: got {aliases!r}; allowed: a list of names")
        source = entry.get("source", "")
        if not isinstance(source, str):
            raise DensityError(f"{loc}.source: got {source!r}; allowed: text")
        mat = Material(str(name), rho, tuple(aliases), source)
        for key in (name, *aliases):
            k = key.strip().casefold()
            if k in out and out[k].name != mat.name:
                raise DensityError(
                    f"{loc}: name or alias {key!r} is also used by {out[k].name!r}; allowed: unique names"
                )
            out[k] = mat
    return out


def read_materials(path: str | Path | None = None) -> dict[str, Material]:
    """Read a materials file into ``{casefolded name or alias: Material}``.

    Parameters
    ----------
    path : str, Path or None
        A TOML materials file; None reads the shipped example
        (:func:`default_materials_path`).

    Raises
    ------
    DensityError
        Unreadable file, TOML error, missing or invalid true density,
        unknown key, name used twice.
    """
    p = Path(path) if path is not None else default_materials_path()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DensityError(f"{p}: materials file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DensityError(f"{p}: cannot read materials file: {exc}") from None
    extra = set(data) - {"materials"}
    if extra:
        raise DensityError(f"{p}: {sorted(extra)[0]}: unknown key; allowed: [materials.NAME] tables")
    return _materials_from_table(data.get("materials", {}), str(p))


def _parse_part(text: str, *, decimal_comma: bool) -> float:
    s = text.strip()
    if decimal_comma and "," in s and "." not in s:
        s = s.replace(",", ".")
    if not _NUMBER_RE.match(s):
        raise ValueError(text)
    return float(s)


def parse_composition(text: str, *, decimal_comma: bool = False) -> dict[str, float]:
    """Parse ``'NCM622:80;SE:17;CB:2;SBR:1'`` into parts (not normalised).

    Components are separated by ``;`` (or ``|``), name and parts by ``:``
    (or ``=``).  A lone name (``'LLZO'``) is the pure material.

    Examples
    --------
    >>> parse_composition("NCM622:80; SE:17; CB:2; SBR:1")
    {'NCM622': 80.0, 'SE': 17.0, 'CB': 2.0, 'SBR': 1.0}
    >>> parse_composition("LLZO")
    {'LLZO': 1.0}
    """
    if not isinstance(text, str) or not text.strip():
        raise DensityError(f"composition: got {text!r}; allowed: e.g. 'NCM622:80;SE:17;CB:2;SBR:1'")
    items = [t for t in re.split(r"[;|]", text) if t.strip()]
    if len(items) == 1 and not re.search(r"[:=]", items[0]):
        return {items[0].strip(): 1.0}
    parts: dict[str, float] = {}
    for item in items:
        name, sep, value = re.split(r"([:=])", item, maxsplit=1) if re.search(r"[:=]", item) else (item, "", "")
        name = name.strip()
        if not sep or not name:
            raise DensityError(
                f"composition: {item.strip()!r} in {text!r}; allowed: NAME:PARTS separated by ';'"
            )
        try:
            x = _parse_part(value, decimal_comma=decimal_comma)
        except ValueError:
            raise DensityError(
                f"composition: parts of {name!r} are {value.strip()!r}; allowed: a number >= 0"
            ) from None
        if name in parts:
            raise DensityError(f"composition: {name!r} appears twice in {text!r}")
        parts[name] = x
    return parts
