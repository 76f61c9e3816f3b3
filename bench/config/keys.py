"""The configuration's key names as the user types them (`model.cell`, `measure.backend`), with a
did-you-mean (difflib) for a key that is not one. Used on the composed config (a key that `+` or
`++` added, which OmegaConf lets through) and on Hydra's own errors (bench/config/errors.py), so
that no message names a schema class. No torch, no registries: `--help` and the CLI's pre-flight
use it."""
from __future__ import annotations

import difflib
import math
from dataclasses import fields
from typing import Any, Dict, Iterator, List, Optional, Tuple

from bench.config.schema import MEASURE_SCHEMAS, Config, DataConfig, ModelConfig, SelectConfig

# The config's sections (a schema each); `measure` has one schema per measure.
SECTIONS = {"model": ModelConfig, "data": DataConfig, "select": SelectConfig}
# A schema class -> the key path users type for it (Hydra's errors name the class).
SECTION_OF_CLASS = {"Config": "", "ModelConfig": "model", "DataConfig": "data",
                    "SelectConfig": "select",
                    **{schema.__name__: "measure" for schema in MEASURE_SCHEMAS.values()}}
MEASURE_OF_CLASS = {schema.__name__: name for name, schema in MEASURE_SCHEMAS.items()}
INT64 = (-2 ** 63, 2 ** 63 - 1)  # what the store's `seed` column holds


def names(schema: type) -> List[str]:
    return [f.name for f in fields(schema)]


def full_keys(measure: Optional[str]) -> List[str]:
    """Every key a config of `measure` takes, as typed: `seed`, `model.cell`, `measure.lr`, ..."""
    out = [k for k in names(Config) if k not in SECTIONS and k != "measure"]
    for section, schema in SECTIONS.items():
        out += [f"{section}.{k}" for k in names(schema)]
    if measure in MEASURE_SCHEMAS:
        out += [f"measure.{k}" for k in names(MEASURE_SCHEMAS[measure])]
    return out


def not_a_key(full_key: str, measure: Optional[str]) -> str:
    """One line for a key that is not one: which measure it belongs to, or the nearest key."""
    section, _, short = full_key.rpartition(".")
    if section == "measure":
        owners = [n for n, s in MEASURE_SCHEMAS.items() if short in names(s) and n != measure]
        if owners:
            under = f" of measure={measure}" if measure else ""
            return (f"{full_key}: not a key{under}; it belongs to "
                    f"{' and '.join(f'measure={o}' for o in owners)} (set measure={owners[0]})")
    known = full_keys(measure)
    elsewhere = [k for k in known if k.rpartition(".")[2] == short and k != full_key]
    # the nearest short name in the same section first (`model.hiden_size`), then in any
    shorts = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == section}
    near = elsewhere or [shorts[n] for n in difflib.get_close_matches(short, list(shorts), n=1)]
    if not near:
        anywhere = {k.rpartition(".")[2]: k for k in known}
        near = [anywhere[n] for n in difflib.get_close_matches(short, list(anywhere), n=1)]
    hint = f"; did you mean {near[0]}?" if near else ""
    return f"{full_key}: not a key{hint} (`python -m bench --help` lists the keys)"


def unknown_key(cfg: Any) -> Optional[str]:
    """The first key of a composed config that no schema has (what `+key=` or `++key=` adds), as
    one line; None when every key is known."""
    measure = cfg.get("measure") or {}
    name = measure.get("name") if hasattr(measure, "get") else None
    top = names(Config)
    for key in cfg:
        if key != "hydra" and key not in top:
            return not_a_key(str(key), name)
    for section, schema in [*SECTIONS.items(), ("measure", MEASURE_SCHEMAS.get(name))]:
        node = cfg.get(section)
        if schema is None or not hasattr(node, "keys"):
            continue
        for key in node.keys():
            if key not in names(schema):
                return not_a_key(f"{section}.{key}", name)
    return None


def leaves(node: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(full key, value) of every leaf of a plain (container) config."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, f"{prefix}{k}.") if isinstance(v, (dict, list)) else [(f"{prefix}{k}", v)]
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, f"{prefix}{i}.") if isinstance(v, (dict, list)) else [(f"{prefix[:-1]}[{i}]", v)]


def bad_number(plain: Dict[str, Any]) -> Optional[str]:
    """One line for the first float key that is not finite (lr, gain, clip, ...: an inf or nan
    would be measured and stored) or a seed the store cannot hold; None when all are fine."""
    for key, value in leaves(plain):
        if isinstance(value, float) and not math.isfinite(value):
            return f"{key}={value}: must be a finite number"
    seed = plain.get("seed")
    if isinstance(seed, int) and not INT64[0] <= seed <= INT64[1]:
        return (f"seed={seed}: must be an int from {INT64[0]} to {INT64[1]} "
                "(the store holds seeds as int64)")
    return None
