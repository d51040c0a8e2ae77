"""Benchmarks: `python scripts/bench.py --help` (the same as `python -m cartridge_jax bench`).

    python scripts/bench.py --suite all --repeats 3   # every suite; see docs/performance.md
"""

import sys

from cartridge_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
