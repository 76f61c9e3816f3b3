"""Reading a callgrind dump: its instructions in all, and the part spent inside glibc's malloc.

The format (valgrind manual, "Callgrind Format Specification"): a header (`positions:`,
`events:`, `summary:`), then `fn=` opens a function and each cost line (`<positions> <Ir>`) adds
to its self cost, except the one line after each `calls=`, which is the inclusive cost of that
call, already counted in the callee. Names are compressed: `(id) name` the first time an id
appears (in `fn=` or `cfn=`), `(id)` after.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Tuple

# glibc's allocator internals: free-list search, splitting, coalescing. Their instructions follow
# the heap's state (everything the process did before), not only the step. Measured on the
# registered cells' tiny steps: they are 5-22% of a step, move gru's step by 1.1% from one step
# to the next where the rest moves by 0.03%, and double the spread of identical code across
# memory layouts (0.52% with them, 0.27% without; analysis/ci/counts.py). The entry points
# (`malloc`, `free`, `posix_memalign`: the tcache fast path) are not in the list, so one
# allocation more or less is still counted.
MALLOC_INTERNALS = re.compile(r"(_int_(malloc|free|memalign|realloc)|malloc_consolidate|unlink_chunk"
                              r"|alloc_perturb|sysmalloc|systrim)\b")


class DumpError(ValueError):
    """A dump that cannot be read (truncated, or not callgrind's format); the message names it."""


def self_costs(path: Path) -> Tuple[int, Dict[str, int]]:
    """(summary Ir, {function name: self Ir}) of one dump; the self costs must add up to the
    summary, else DumpError."""
    names: Dict[str, str] = {}
    costs: Dict[str, int] = {}
    summary, fn, skip, npos = None, None, False, 1
    with open(path) as f:
        for line in f:
            head = line[:1]
            if head.isdigit() or head in "+-*":
                if skip:  # the inclusive cost of the call just named
                    skip = False
                    continue
                fields = line.split()
                if len(fields) > npos:
                    costs[fn] = costs.get(fn, 0) + int(fields[npos])
            elif line.startswith(("fn=", "cfn=")):
                ref = line.split("=", 1)[1].strip()
                if ref.startswith("("):
                    key, _, name = ref.partition(")")
                    if name.strip():
                        names[key] = name.strip()
                    name = names.get(key, key)
                else:
                    name = ref
                if line.startswith("fn="):
                    fn = name
            elif line.startswith("calls="):
                skip = True
            elif line.startswith("positions:"):
                npos = len(line.split()) - 1
            elif line.startswith("summary:"):
                summary = int(line.split()[1])
    if summary is None or sum(costs.values()) != summary:
        raise DumpError(f"{path}: not a complete callgrind dump (summary {summary}, "
                        f"functions add up to {sum(costs.values())})")
    return summary, costs


def step_counts(path: Path) -> Tuple[int, int]:
    """(instructions in all, instructions inside glibc's malloc internals) of one dump."""
    total, costs = self_costs(path)
    return total, sum(v for name, v in costs.items() if MALLOC_INTERNALS.match(name))
