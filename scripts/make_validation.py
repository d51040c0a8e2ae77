"""Write the held-out validation sets, labelled by this package's exact solvers.

    python scripts/make_validation.py [--sets connect4-end,othello-endgame] [--count N] [--seed S]

Into `cartridge_jax/valdata/` (valdata/README.md): Connect 4 `connect4/Val_<stage>.jsonl` in
Pons' format, Othello `othello/Val_endgame.obf` in Edax's; positions from random play that are
in no public set (Connect 4: mirror images included). Needs numba (`pip install -e
".[solver]"`). The shipped files came from the defaults; rerunning them writes the same files.
"""

import argparse
import functools
import json
import pathlib
import sys

from tqdm import tqdm

from cartridge_jax import _files
from cartridge_jax.solvers import validation

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "cartridge_jax"
# Positions per set: begin positions are the slow ones (about half of them need more than the
# node budget and are skipped).
COUNTS = {"connect4-end": 1000, "connect4-middle": 1000, "connect4-begin": 500,
          "othello-endgame": 1000}


@functools.cache
def public_positions(game: str) -> set:
    """The public sets' positions of `game` (Connect 4: keys, mirror images included; Othello:
    board texts), read once for all of its stages."""
    if game == "connect4":
        return validation.connect4_keys(sorted((PACKAGE / "refdata" / "connect4").glob("*.jsonl")))
    return validation.othello_texts(sorted((PACKAGE / "refdata" / "othello").glob("*.obf")))


def make_set(name: str, count: int, seed: int, out_dir: pathlib.Path) -> pathlib.Path:
    """Writes one set (atomically) and returns its path."""
    game, _, stage = name.partition("-")
    with tqdm(total=count, desc=name, unit="pos") as bar:
        def progress(kept, skipped):
            bar.n = kept
            if skipped:
                bar.set_postfix(skipped=skipped, refresh=False)
            bar.refresh()

        if game == "connect4":
            lines = [json.dumps(line) for line in validation.connect4_set(
                stage, count, seed=seed, excluded=public_positions(game), progress=progress)]
            path = out_dir / "connect4" / f"Val_{stage}.jsonl"
        else:
            lines = validation.othello_set(count, seed=seed, excluded=public_positions(game),
                                           progress=progress)
            path = out_dir / "othello" / f"Val_{stage}.obf"
    path.parent.mkdir(parents=True, exist_ok=True)
    _files.atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make_validation.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(COUNTS),
                        help=f"comma-separated sets among {','.join(COUNTS)}")
    parser.add_argument("--count", type=int, default=0,
                        help="positions per set (default: " + ", ".join(
                            f"{name} {count}" for name, count in COUNTS.items()) + ")")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=pathlib.Path, default=PACKAGE / "valdata")
    args = parser.parse_args(argv)
    names = [name for name in args.sets.split(",") if name]
    if bad := [name for name in names if name not in COUNTS]:
        parser.error(f"unknown set {bad[0]!r}: use some of {','.join(COUNTS)}")
    if args.count < 0:
        parser.error(f"--count {args.count}: give a positive number of positions (0: default)")
    for name in names:
        # Each set draws from its own seed, so that one set can be made again alone.
        path = make_set(name, args.count or COUNTS[name], args.seed + list(COUNTS).index(name),
                        args.out_dir)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
