"""Train an AlphaZero agent: `python scripts/train.py --help` (same as `python -m cartridge_jax train`).

With no arguments it trains TicTacToe with the default preset for this machine.
"""

import sys

from cartridge_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
