"""The errors a configuration is refused with: one line that names the key and what is allowed."""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration the suite refuses; the message names the key and what is allowed."""


def one_line(exc: BaseException) -> str:
    """Hydra/OmegaConf's multi-line message (key, reason, allowed values) as one line."""
    text = "\n".join(str(e) for e in (exc, exc.__cause__) if e is not None)
    text = text.split("Config search path:")[0]
    keep = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(
        ("reference_type", "object_type", "Set the environment", "To append"))]
    line = "; ".join(dict.fromkeys(keep))
    return line
