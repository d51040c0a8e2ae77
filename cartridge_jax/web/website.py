"""The static site (site/) with a training run's models: `serve` to watch a run, `build` to host.

    server = make_server(run_dir, host="127.0.0.1", port=8000); server.serve_forever()
    build(out_dir, run_dir=None, force=False)

Both lay a run over the site the same way (`run_file`):

    models/<game>/<file>       from RUN_DIR/models/<game>/ for each game the run exported
    models/<game>/stats.json   from RUN_DIR/stats.json, for the game the run trains
    everything else            from site/ (the shipped models included)

The pages poll manifest.json and stats.json, so those two are served with `no-store`; a served
run's new export reaches an open page within seconds.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import pathlib
import posixpath
import shutil
import tempfile
import urllib.parse

# site/ beside the package: the package runs from a clone of the repository (pip install -e .).
SITE_DIR = pathlib.Path(__file__).resolve().parents[2] / "site"
# Paths inside site/ that the pages need to run (checked before serving or building).
REQUIRED = ("index.html", "vendor/onnxruntime-web/ort.wasm.bundle.min.mjs")
# Development files that a built site leaves out.
DEV_ONLY = ("node_modules", "tests", "package.json", "package-lock.json")
STATS_FILE = "stats.json"
# Files the pages poll: always fetched afresh.
NO_STORE = ("manifest.json", STATS_FILE)
# Python's own table (without the system's mime.types) lacks or misnames some of these.
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".msgpack": "application/octet-stream",
}


class SiteError(Exception):
    """The site cannot be served or built; the message is one line for people."""


def site_dir() -> pathlib.Path:
    """The repository's site/ folder, checked to hold what the pages need."""
    if not SITE_DIR.is_dir():
        raise SiteError(f"no site folder at {SITE_DIR}: the web site ships with the repository, "
                        "not the package; install from a clone (pip install -e .)")
    missing = [name for name in REQUIRED if not (SITE_DIR / name).is_file()]
    if missing:
        raise SiteError(f"{SITE_DIR} lacks {', '.join(missing)}: restore it from git, or run "
                        "npm --prefix site ci && npm --prefix site run vendor")
    return SITE_DIR


def run_game(run_dir: pathlib.Path) -> str | None:
    """The game a run trains (from its stats.json), or None while it has no readable one."""
    try:
        game = json.loads((run_dir / STATS_FILE).read_text(encoding="utf-8")).get("game")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return game if isinstance(game, str) else None


def run_file(run_dir: pathlib.Path, relative: pathlib.PurePosixPath) -> pathlib.Path | None:
    """The run's file served at site path `relative`, or None where the site's own applies.

    `relative` is normalised (no `..`), as http.server and `build` make it.
    """
    if len(relative.parts) != 3 or relative.parts[0] != "models":
        return None
    _, game, name = relative.parts
    if name == STATS_FILE and run_game(run_dir) == game:
        return run_dir / STATS_FILE
    folder = run_dir / "models" / game
    return folder / name if folder.is_dir() else None


def check_run_dir(run_dir: pathlib.Path) -> None:
    if not run_dir.is_dir():
        raise SiteError(f"run directory {run_dir} does not exist: name a folder that `train` "
                        "wrote (its --run-dir)")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves site/ with a run's files laid over it (`run_file`)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **CONTENT_TYPES}

    def __init__(self, *args, directory: str, run_dir: pathlib.Path | None, **kwargs):
        self.run_dir = run_dir
        super().__init__(*args, directory=directory, **kwargs)

    def translate_path(self, path: str) -> str:
        site_path = super().translate_path(path)  # normalised, inside the site folder
        if self.run_dir is None:
            return site_path
        relative = pathlib.PurePosixPath(
            pathlib.Path(site_path).relative_to(self.directory).as_posix())
        replacement = run_file(self.run_dir, relative)
        return site_path if replacement is None else str(replacement)

    def end_headers(self) -> None:
        name = posixpath.basename(urllib.parse.urlsplit(self.path).path)
        if name in NO_STORE:
            self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_request(self, code="-", size="-") -> None:
        # The pages poll every few seconds: only failed requests are worth a line.
        if isinstance(code, int) and code >= 400:
            super().log_request(code, size)


def make_server(run_dir: pathlib.Path | None, *, host: str = "127.0.0.1", port: int = 8000,
                site: pathlib.Path | None = None) -> http.server.ThreadingHTTPServer:
    """A server (not yet serving) of `site` (default: the repository's site/) over `run_dir`.

    Port 0 picks a free port: read it from `server.server_address`.
    """
    site = site_dir() if site is None else site
    if run_dir is not None:
        check_run_dir(run_dir)
    handler = functools.partial(_Handler, directory=str(site), run_dir=run_dir)
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise SiteError(f"cannot serve on {host}:{port} ({error.strerror or error}): pick "
                        "another --port or --host") from None


def server_url(server: http.server.HTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def build(out_dir: pathlib.Path, run_dir: pathlib.Path | None = None, *,
          force: bool = False) -> int:
    """Writes a self-contained copy of the site (with `run_dir`'s models laid over the shipped
    ones) to `out_dir`; returns the number of files.

    The copy is made in a temporary folder beside `out_dir` and renamed into place, so `out_dir`
    never holds half a site. A non-empty `out_dir` is replaced only with `force`.
    """
    site = site_dir()
    if run_dir is not None:
        check_run_dir(run_dir)
        if not (run_dir / "models").is_dir() and run_game(run_dir) is None:
            raise SiteError(f"run directory {run_dir} has neither models/ nor stats.json: "
                            f"export a model first (python -m cartridge_jax export {run_dir})")
    out_dir = pathlib.Path(os.path.abspath(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise SiteError(f"{out_dir} is a file: name a folder to write the site to")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise SiteError(f"{out_dir} is not empty: name a new folder, or pass --force to "
                        "replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        site_copy = staging / "site"
        # Temporary files of an export in progress (.model.onnx.*.tmp) are never copied.
        ignore = shutil.ignore_patterns(*DEV_ONLY, ".*.tmp")
        shutil.copytree(site, site_copy, ignore=ignore)  # links become the files they name
        if run_dir is not None:
            _lay_run_over(run_dir, site_copy, ignore)
        count = sum(len(files) for _, _, files in os.walk(site_copy))
        if out_dir.exists():
            out_dir.rename(staging / "old")
        site_copy.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count


def _lay_run_over(run_dir: pathlib.Path, site_copy: pathlib.Path, ignore) -> None:
    """Replaces the copied models of each game `run_dir` exported, and adds its stats.json."""
    models = run_dir / "models"
    for folder in sorted(models.iterdir()) if models.is_dir() else ():
        if folder.is_dir():
            shutil.rmtree(site_copy / "models" / folder.name, ignore_errors=True)
            shutil.copytree(folder, site_copy / "models" / folder.name, ignore=ignore)
    game = run_game(run_dir)
    if game is not None:
        (site_copy / "models" / game).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / STATS_FILE, site_copy / "models" / game / STATS_FILE)
