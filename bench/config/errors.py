"""The errors a configuration is refused with: one line that names the key, in the user's key
names (`model.cel`, never `ModelConfig`), with the nearest allowed key, value, group option or
preset (difflib) and what is allowed."""
from __future__ import annotations

import difflib
import re
from typing import List, Optional


class ConfigError(ValueError):
    """A configuration the suite refuses; the message names the key and what is allowed."""


def suggest(key: str, value: str, allowed: List[str], what: str, listed: int = 12) -> str:
    """`key=value: not <what>; did you mean key=<nearest>? (allowed: ...)`; a long list of
    allowed values (the presets) is left to `--help`."""
    near = difflib.get_close_matches(value, allowed, n=1)
    hint = f"; did you mean {key}={near[0]}?" if near else ""
    shown = ", ".join(allowed) if len(allowed) <= listed else "`python -m bench --help` lists them"
    return f"{key}={value}: not {what}{hint} (allowed: {shown})"


TYPES = {"Integer": "an int", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def _key_error(cause: BaseException) -> Optional[str]:
    """A key that is not one (`Key 'cel' not in 'ModelConfig'`), in the user's key names."""
    from bench.config.keys import MEASURE_OF_CLASS, SECTION_OF_CLASS, not_a_key

    found = re.search(r"Key '([^']+)' not in '(\w+)'", str(cause))
    if not found:
        return None
    key, cls = found.groups()
    if cls not in SECTION_OF_CLASS:  # Hydra's own node (hydra.*)
        full = getattr(cause, "full_key", None) or key
        return f"{full}: not a key of Hydra's (`python -m bench --hydra-help` lists them)"
    section = SECTION_OF_CLASS[cls]
    return not_a_key(f"{section}.{key}" if section else key, MEASURE_OF_CLASS.get(cls))


def _value_error(cause: BaseException) -> Optional[str]:
    """A value outside an Enum, or of the wrong type, named by its key."""
    full_key = getattr(cause, "full_key", None)
    if not full_key:
        return None
    text = str(getattr(cause, "msg", "") or cause)
    enum = re.search(r"Invalid value '([^']*)', expected one of \[([^\]]*)\]", text)
    if enum:
        return suggest(full_key, enum.group(1), [a.strip() for a in enum.group(2).split(",")], "an allowed value")
    typed = re.search(r"Value '([^']*)' of type '\w+' could not be converted to (\w+)", text)
    if typed:
        return f"{full_key}={typed.group(1)}: must be {TYPES.get(typed.group(2), typed.group(2))}"
    return None


def _missing_option(exc: BaseException) -> Optional[str]:
    """A group option or preset that does not exist (`measure=gradient`, `experiment=x`)."""
    missing, options = getattr(exc, "missing_cfg_file", None), getattr(exc, "options", None)
    if not missing or options is None or "/" not in str(missing):
        return None
    group, _, value = str(missing).rpartition("/")
    allowed = [o for o in options if not o.startswith("base_")]  # the schemas' nodes are not choices
    what = "a preset in conf/experiment/" if group == "experiment" else f"an option of {group}"
    return suggest(group, value, allowed, what)


def _unparsable(exc: BaseException) -> Optional[str]:
    """An override the grammar cannot read (a space, a non-ASCII letter, a bracket): quoting it works."""
    override = getattr(exc, "override", None)
    text = getattr(override, "input_line", None) or (override if isinstance(override, str) else None)
    if not text or "=" not in text or "Lexer" not in str(exc) and "token recognition" not in str(exc):
        return None
    key, _, value = text.partition("=")
    return (f"{text}: the override grammar cannot read this value; quote it: {key}='{value}' "
            f"(in a shell: \"{key}='{value}'\")")


def one_line(exc: BaseException) -> str:
    """Hydra/OmegaConf's multi-line message (key, reason, allowed values) as one line in the
    user's key names; a message this module does not know is kept, without class names."""
    for cause in (exc.__cause__, exc):
        if cause is None:
            continue
        said = _unparsable(cause) or _missing_option(cause) or _key_error(cause) or _value_error(cause)
        if said:
            return said
    text = "\n".join(str(e) for e in (exc, exc.__cause__) if e is not None)
    text = text.split("Config search path:")[0]
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(
        ("reference_type", "object_type", "Set the environment", "To append"))]
    return re.sub(r" in '\w+Config'", "", "; ".join(dict.fromkeys(keep)))
