"""`python -m bench --help`: how to run, the groups and their options, every key with its default,
and each preset with the first line of its comment. Read from conf/ and the schema's dataclasses
only: no torch, no Hydra start-up, so that it answers at once."""
from __future__ import annotations

import dataclasses
import enum
import os
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import yaml

from bench.config.schema import MEASURE_SCHEMAS, Config, DataConfig, ModelConfig

CONF = Path(__file__).resolve().parents[2] / "conf"

USAGE = """\
usage: python -m bench [KEY=VALUE ...]                  measure one point
       python -m bench -m KEY=A,B [KEY=VALUE ...]       a sweep: every combination of the values
       python -m bench -m experiment=NAME [KEY=VALUE]   a preset sweep (or: make bench EXP=NAME)
       python -m bench.run.suite NAME                   a preset suite (a preset that lists others)

Records: one file per point under results_dir (default results/store); stored points are
skipped, so the same command resumes an interrupted sweep. The report: python -m analysis.report.
"""


def options(group: str) -> List[str]:
    """A group's options: its YAML files (the schemas' base_* nodes are not choices)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("base_"))


def defaults() -> Dict[str, str]:
    """The default option of each group, from conf/config.yaml's defaults list."""
    listed = yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]
    return {k: str(v) for item in listed if isinstance(item, dict) for k, v in item.items()}


def description(path: Path) -> str:
    """The first comment line of a preset (after Hydra's `# @package` line)."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("#") and not text.startswith("# @package"):
            return text.lstrip("# ").strip()
        if text and not text.startswith("#"):
            break
    return "(no description)"


def keys(schema: type, prefix: str = "") -> Iterator[str]:
    """`key=default` for each field of a schema (Enums by value, lists as [])."""
    for f in dataclasses.fields(schema):
        if f.name in ("model", "data", "measure", "name", "select", "suite"):  # sections; set by presets
            continue
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        value = value.value if isinstance(value, enum.Enum) else value
        shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        yield f"{prefix}{f.name}={shown}"


def wrap(items: List[str], indent: str = "  ", width: int = 100) -> List[str]:
    """Items on lines of at most `width`, continuation lines indented two more."""
    lines, line = [], indent
    for item in items:
        if len(line) + len(item) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent + "  "
        line += item + " "
    return lines + [line.rstrip()] if line.strip() else lines


def kind(path: Path) -> str:
    preset = yaml.safe_load(path.read_text()) or {}
    return " [suite]" if preset.get("suite") else " [selection stage]" if preset.get("select") else ""


def text() -> str:
    chosen = defaults()
    out = [USAGE, "Groups (GROUP=OPTION; the default marked *):"]
    for group in ("model", "measure", "hydra/launcher"):
        shown = [o + ("*" if chosen.get(group) == o else "") for o in options(group)]
        extra = " (and Hydra's: basic*, joblib, submitit_local, submitit_slurm)" if group == "hydra/launcher" else ""
        out.append(f"  {group}: {', '.join(shown)}{extra}")
    out += ["", "Keys (KEY=VALUE, the defaults shown):"]
    out += wrap(list(keys(ModelConfig, "model.")))
    out += wrap(list(keys(DataConfig, "data.")))
    for name, schema in MEASURE_SCHEMAS.items():
        out += wrap([f"(measure={name})"] + list(keys(schema, "measure.")))
    out += wrap(list(keys(Config)))
    presets = sorted((CONF / "experiment").glob("*.yaml"))
    width = max(len(p.stem) for p in presets)
    out += ["", "Presets (experiment=NAME, run with -m; a suite with python -m bench.run.suite NAME):"]
    for p in presets:
        out.append(f"  {p.stem:<{width}}  {description(p)}{kind(p)}")
    out += ["", "Hydra's own flags: --hydra-help; the composed configuration: --cfg job."]
    return "\n".join(out)


def main() -> None:
    try:
        print(text())
        sys.stdout.flush()
    except BrokenPipeError:  # `python -m bench --help | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
