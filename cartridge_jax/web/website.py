"""The static site (site/) with a training run's models: `serve` to watch a run, `build` to host.

    server = make_server(run_dir, host="127.0.0.1", port=8000); server.serve_forever()
    build(out_dir, run_dir=None, force=False)

Both lay a run over the site the same way (`run_file`):

    models/<game>/<file>       from RUN_DIR/models/<game>/ for each game the run exported
    models/<game>/stats.json   from RUN_DIR/stats.json, for the game the run trains
    everything else            from site/ (the shipped models included)

The pages poll manifest.json and stats.json, so those two are served with `no-store`; a served
run's new export reaches an open page within seconds.

`serve` may listen beyond this machine (--host), so it serves regular files whose real path
(links followed) lies under the real site folder or run directory, and nothing else: no
listings, a folder only as its index.html. A path no page asks for (a NUL byte, a malformed
percent-escape, a `..` segment, an overlong one) gets 400; every response carries
`SECURITY_HEADERS`.
"""

from __future__ import annotations

import functools
import http.server
import json
import mimetypes
import os
import pathlib
import posixpath
import re
import shutil
import stat
import tempfile
import typing
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
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".msgpack": "application/octet-stream",
}


class SiteError(Exception):
    """The site cannot be served or built; the message is one line for people."""


# What the pages load, and nothing more (docs/deploy.md recommends the same to other hosts):
# scripts, styles, the Worker and fetches (models, stats, the wasm binary) from this origin only;
# WebAssembly compilation for onnxruntime-web (in the Worker, whose policy is the one sent with
# worker.js); the favicon as a data: URL. onnxruntime-web makes a blob: Worker only for a proxy
# or threads across origins, which the site does not use. No inline code anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "connect-src 'self'; style-src 'self'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # A model or stats.json is never run as a script or page, whatever a browser guesses.
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Far above the site's longest URL; longer ones are refused before touching the disk.
MAX_TARGET_CHARS = 1024
# A request target as browsers send it: printable ASCII, everything else percent-escaped.
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadPath(ValueError):
    """A request path that no page asks for; the message says why, for the 400 response."""


class Target(typing.NamedTuple):
    """A request target, checked: the decoded path segments and what else a redirect keeps."""
    parts: tuple[str, ...]  # ("models", "tictactoe", "model.onnx"); () for the root
    folder: bool  # the path ends with "/"
    query: str  # without the "?"


def parse_target(target: str) -> Target:
    """The checked request target ("/js/play.js?v=1" -> parts ("js", "play.js")), or BadPath.

    Browsers resolve `.` and `..` before sending, so a `..` segment (escaped or not) is an
    attempt to leave the site, not a page's request. Empty and `.` segments are dropped.
    """
    if len(target) > MAX_TARGET_CHARS:
        raise BadPath(f"path longer than {MAX_TARGET_CHARS} characters")
    if not _PRINTABLE_ASCII.fullmatch(target):
        raise BadPath("path with a space, control or non-ASCII character")
    url = urllib.parse.urlsplit(target)
    if not url.path.startswith("/"):
        raise BadPath("path not starting with /")
    if _MALFORMED_ESCAPE.search(url.path):
        raise BadPath("malformed percent-escape")
    try:
        path = urllib.parse.unquote(url.path, errors="strict")
    except UnicodeDecodeError:
        raise BadPath("percent-escapes that are not UTF-8") from None
    if _CONTROL.search(path):
        raise BadPath("escaped control character (such as %00)")
    parts = tuple(part for part in path.split("/") if part not in ("", "."))
    if ".." in parts:
        raise BadPath("'..' segment")
    return Target(parts, path.endswith("/"), url.query)


def real_path_under(root: pathlib.Path, path: pathlib.Path) -> str | None:
    """`path` with every link followed, if that lies under `root` (links followed too)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real if os.path.commonpath([real_root, real]) == real_root else None


def open_regular_file(real: str) -> typing.BinaryIO | None:
    """`real` opened for reading if it is a regular file (not a link put there since it was
    resolved, nor a FIFO or device that would block or never end), else None."""
    try:
        descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    file = os.fdopen(descriptor, "rb")
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        file.close()
        return None
    return file


def content_type(name: str) -> str:
    suffix = posixpath.splitext(name)[1].lower()
    return (CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0]
            or "application/octet-stream")


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


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of `site`'s files with a run's files laid over it (`run_file`); other
    methods get http.server's 501."""

    def __init__(self, *args, site: pathlib.Path, run_dir: pathlib.Path | None, **kwargs):
        self.site = site
        self.run_dir = run_dir
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        try:
            target = parse_target(self.path)
        except BadPath as error:
            self.send_error(400, f"Bad path: {error}")
            return
        root, path = self._root_and_path(target.parts)
        real = real_path_under(root, path)
        if real is not None and os.path.isdir(real):
            if not target.folder:
                # Relative URLs in the folder's index.html resolve against the slash.
                self._redirect(target)
                return
            real = real_path_under(root, pathlib.Path(real, "index.html"))
        file = None if real is None else open_regular_file(real)
        if file is None:
            self.send_error(404)
            return
        with file:
            self.send_response(200)
            self.send_header("Content-Type", content_type(real))
            self.send_header("Content-Length", str(os.fstat(file.fileno()).st_size))
            if target.parts and target.parts[-1] in NO_STORE:
                self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if with_body:
                try:
                    shutil.copyfileobj(file, self.wfile)
                except ConnectionError:
                    pass  # the page went away mid-download (a reload): nothing to report

    def _root_and_path(self, parts: tuple[str, ...]) -> tuple[pathlib.Path, pathlib.Path]:
        """The folder the file at `parts` must lie under, and the file."""
        if self.run_dir is not None and parts:
            replacement = run_file(self.run_dir, pathlib.PurePosixPath(*parts))
            if replacement is not None:
                return self.run_dir, replacement
        return self.site, self.site.joinpath(*parts)

    def _redirect(self, target: Target) -> None:
        # Rebuilt from the checked segments: the Location never names another host.
        location = "/" + "".join(urllib.parse.quote(part) + "/" for part in target.parts)
        self.send_response(301)
        self.send_header("Location", location + (f"?{target.query}" if target.query else ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def end_headers(self) -> None:
        # Here rather than in _serve, so that errors (send_error) carry them too.
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
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
    handler = functools.partial(_Handler, site=site, run_dir=run_dir)
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
