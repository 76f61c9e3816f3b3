"""Ctrl-C, remembered. SIGINT raises KeyboardInterrupt wherever Python is; when it lands inside a
library's clean-up (omegaconf resetting its flags while Hydra composes a point's config), that
clean-up can fail in turn and the KeyboardInterrupt reaches us as another error
('NoneType' object has no attribute '_invalidate_flags_cache', wrapped in Hydra's
ConfigCompositionException). The handler records that it fired, so that the entry points report
an interrupt as one, whatever exception carried it (docs/architecture.md, "Interrupts")."""
from __future__ import annotations

import signal
import threading

_fired = False


def _handler(signum, frame) -> None:
    global _fired
    _fired = True
    raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT where Python's default handler has it (an ignored SIGINT stays ignored:
    a command run in the background of a non-interactive shell)."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)


def clear() -> None:
    """The interrupt was the program's own (the SLURM queue watch's `interrupt_main`), not a key."""
    global _fired
    _fired = False


def fired() -> bool:
    return _fired


def is_interrupt(exc: BaseException) -> bool:
    """`exc` is a KeyboardInterrupt, or whatever a clean-up raised after one."""
    return isinstance(exc, KeyboardInterrupt) or _fired
