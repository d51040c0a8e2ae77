"""Build the web site into a folder for any static host (GitHub Pages, `python -m http.server`).

    python scripts/build_site.py --out DIR [--run-dir RUN] [--force]

The folder holds the play and stats pages, the vendored libraries and the models: the shipped
ones (site/models/), or for each game RUN exported, RUN's model and stats.json. Every URL in it
is relative, so it works from any sub-path.
"""

import argparse
import pathlib
import sys

from cartridge_jax.web import website


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="build_site.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write (new or empty)")
    parser.add_argument("--run-dir", metavar="RUN",
                        help="a training run whose exported models and stats.json to include")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    args = parser.parse_args(argv)
    run_dir = None if args.run_dir is None else pathlib.Path(args.run_dir)
    try:
        count = website.build(pathlib.Path(args.out), run_dir, force=args.force)
    except website.SiteError as error:
        print(f"build_site.py: error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {count} files to {args.out}; serve that folder with any static web server "
          f"(python -m http.server -d {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
