"""Top entries of a py-spy raw profile (`bench/run.py --profile DIR`):

    .venv/bin/python bench/profile_top.py DIR/core.txt [N]

prints, for the N heaviest functions, their share of all samples as the
running frame (self) and anywhere on the stack (total).
"""

from __future__ import annotations

import collections
import sys


def top(path: str, count: int = 25) -> str:
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, samples = line.rstrip("\n").rpartition(" ")
            n = int(samples)
            frames = stack.split(";")
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                anywhere[frame] += n
    lines = [f"{total} samples", "", "| self % | total % | function (file:line) |", "| ---: | ---: | --- |"]
    for frame, n in own.most_common(count):
        lines.append(f"| {100 * n / total:.1f} | {100 * anywhere[frame] / total:.1f} | `{frame}` |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(top(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25))
