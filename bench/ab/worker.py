"""One side of an A/B run (`bench.ab`): a long-lived process that measures points on request.

Started by head's `bench.ab` as `python -c <bootstrap> CODE_DIR`, with PYTHONPATH=CODE_DIR, so
that the measuring code (bench.run.run_point, conf/) is that side's own (base commit or head)
while this loop is head's. It reads one JSON object per line from stdin,
`{"overrides": [...]}`, composes the config as `python -m bench overrides` would, measures and
stores the point, and answers one JSON line `{"status": ...}` on stdout. Torch stays loaded
between points, so the two sides can alternate point by point at no start-up cost.
Only `bench.config.register_configs` and `bench.run.run_point(cfg)` are needed of the side's
code: both exist since the first A/B-capable commit.
"""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path


def main(code: Path) -> int:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bench.config import register_configs
    from bench.run import run_point

    register_configs()
    reply = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        try:
            GlobalHydra.instance().clear()
            with initialize_config_dir(config_dir=str(code / "conf"), version_base="1.3"):
                cfg = compose(config_name="config", overrides=request["overrides"])
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries the replies only
                status = run_point(cfg)
            answer = {"status": status}
        except Exception as exc:
            answer = {"status": "refused", "error": f"{type(exc).__name__}: {exc}"[:500]}
        reply.write(json.dumps(answer) + "\n")
        reply.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
