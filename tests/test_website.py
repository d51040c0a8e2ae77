"""Serving and building the site (cartridge_jax/website.py, `serve`, scripts/build_site.py),
without a browser: which file each URL gets, the headers the pages rely on, and the built
folder. The pages themselves are tested in a real browser in test_browser.py.

A small stand-in site (a few marked files) keeps these tests independent of the real site's
contents; the last tests use the real site/.
"""

import contextlib
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from cartridge_jax.web import website

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build_site.py"


def write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A stand-in site/ (each file says where it lies) with shipped tictactoe and connect4
    models, installed as website.SITE_DIR."""
    site = tmp_path / "site"
    for name in ["index.html", "stats.html", "js/play.js", "css/site.css",
                 "vendor/onnxruntime-web/ort.wasm.bundle.min.mjs",
                 "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm",
                 "models/tictactoe/manifest.json", "models/tictactoe/model.onnx",
                 "models/tictactoe/card.json", "models/tictactoe/stats.json",
                 "models/connect4/manifest.json", "models/connect4/stats.json",
                 "package.json", "package-lock.json", "node_modules/x/index.js",
                 "tests/a.test.mjs"]:
        write(site / name, f"site:{name}")
    monkeypatch.setattr(website, "SITE_DIR", site)
    return site


@pytest.fixture
def fake_run(tmp_path):
    """A tictactoe run directory that exported its model (and an unrelated file)."""
    run = tmp_path / "run"
    for name in ["manifest.json", "model.onnx", "params.msgpack", "network.json"]:
        write(run / "models" / "tictactoe" / name, f"run:{name}")
    write(run / "stats.json", json.dumps({"game": "tictactoe", "step": 4}))
    write(run / "checkpoints" / "1" / "x", "checkpoint")
    return run


@contextlib.contextmanager
def serving(run_dir, site=None):
    """The base URL of a server of `site` over `run_dir`, on a free port, for the block."""
    server = website.make_server(run_dir, port=0, site=site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield website.server_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get(url: str) -> tuple[int, str, http.client.HTTPMessage]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, "", error.headers


@contextlib.contextmanager
def serve_command(*args: str):
    """The `serve` command (`python -m cartridge_jax serve *args --port 0`) in a process:
    (its base URL, the process) for the block; stopped after it, its stderr left to read."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cartridge_jax", "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line + process.stderr.read()
        yield match.group(0), line, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def raw_request(url: str, target: str, method: str = "GET") -> tuple[int, dict[str, str]]:
    """(status, headers) of `method target` sent as it is (urllib and http.client refuse or
    escape the bad paths these tests send)."""
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(f"{method} {target} HTTP/1.0\r\nHost: x\r\n\r\n".encode("latin-1"))
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), headers


# ---------------------------------------------------------------------------------------------
# serve


def test_a_run_is_laid_over_the_site(fake_site, fake_run):
    with serving(fake_run) as url:
        assert get(url)[1] == "site:index.html"
        assert get(url + "js/play.js")[1] == "site:js/play.js"
        # The run's game: its export and its stats.json, the shipped card no more.
        assert get(url + "models/tictactoe/manifest.json")[1] == "run:manifest.json"
        assert get(url + "models/tictactoe/model.onnx?v=abc")[1] == "run:model.onnx"
        assert json.loads(get(url + "models/tictactoe/stats.json")[1])["step"] == 4
        assert get(url + "models/tictactoe/card.json")[0] == 404
        # A game the run did not export: the shipped files.
        assert get(url + "models/connect4/manifest.json")[1] == "site:models/connect4/manifest.json"
        assert get(url + "models/connect4/stats.json")[1] == "site:models/connect4/stats.json"
        # Nothing else of the run; a path climbing out of the site is a bad request.
        assert get(url + "checkpoints/1/x")[0] == 404
        assert get(url + "models/../../run/stats.json")[0] == 400
        assert get(url + "models/tictactoe/../../../run/stats.json")[0] == 400


def test_a_new_export_is_served_at_once(fake_site, fake_run):
    with serving(fake_run) as url:
        assert get(url + "models/othello/manifest.json")[0] == 404
        write(fake_run / "models" / "othello" / "manifest.json", "run:othello")
        (fake_run / "stats.json").write_text(json.dumps({"game": "othello", "step": 9}))
        assert get(url + "models/othello/manifest.json")[1] == "run:othello"
        assert json.loads(get(url + "models/othello/stats.json")[1])["step"] == 9
        # The run's tictactoe export stays, with no stats of its own now.
        assert get(url + "models/tictactoe/manifest.json")[1] == "run:manifest.json"
        assert get(url + "models/tictactoe/stats.json")[0] == 404


def test_polled_files_are_never_cached_and_scripts_have_script_types(fake_site, fake_run):
    with serving(fake_run) as url:
        for path in ["models/tictactoe/manifest.json", "models/tictactoe/stats.json",
                     "models/connect4/stats.json"]:
            assert get(url + path)[2]["Cache-Control"] == "no-store", path
        for path in ["index.html", "models/tictactoe/model.onnx?v=1"]:
            assert get(url + path)[2]["Cache-Control"] is None, path
        types = {path: get(url + path)[2].get_content_type() for path in [
            "js/play.js", "vendor/onnxruntime-web/ort.wasm.bundle.min.mjs",
            "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm", "index.html"]}
        # Browsers refuse module scripts and streaming wasm compiles of other types.
        assert types == {"js/play.js": "text/javascript",
                         "vendor/onnxruntime-web/ort.wasm.bundle.min.mjs": "text/javascript",
                         "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm": "application/wasm",
                         "index.html": "text/html"}


def test_without_a_run_the_site_is_served_as_it_is(fake_site):
    with serving(None) as url:
        assert get(url + "models/tictactoe/model.onnx")[1] == "site:models/tictactoe/model.onnx"


def test_serve_command_prints_the_url_and_serves(fake_run):
    with serve_command(str(fake_run)) as (url, line, _):
        assert str(fake_run) in line
        status, body, _ = get(url)
        assert status == 200 and body == (website.SITE_DIR / "index.html").read_text()
        assert get(url + "models/tictactoe/manifest.json")[1] == "run:manifest.json"


def test_links_out_of_the_site_or_run_are_not_followed(fake_site, fake_run, tmp_path):
    outside = write(tmp_path / "outside" / "secret.txt", "secret")
    os.symlink("/etc/passwd", fake_site / "passwd")
    os.symlink(outside.parent, fake_site / "escape")
    os.symlink(outside, fake_site / "js" / "secret.js")
    (fake_run / "models" / "tictactoe" / "model.onnx").unlink()
    os.symlink(outside, fake_run / "models" / "tictactoe" / "model.onnx")
    # A link that stays inside its root is fine.
    os.symlink(fake_site / "index.html", fake_site / "alias.html")
    with serving(fake_run) as url:
        for path in ["passwd", "escape/secret.txt", "js/secret.js",
                     "models/tictactoe/model.onnx"]:
            assert get(url + path)[0] == 404, path
        assert get(url + "alias.html")[1] == "site:index.html"


def test_folders_are_never_listed(fake_site, fake_run):
    write(fake_site / "sub" / "index.html", "site:sub")
    with serving(fake_run) as url:
        for path in ["js/", "js", "models/", "models/tictactoe/", "vendor/onnxruntime-web/"]:
            assert get(url + path)[0] == 404, path
        assert get(url + "sub/")[1] == "site:sub"
        # Without the slash, a redirect to it (the folder's relative URLs need it), built from
        # the checked path: never to another host.
        assert raw_request(url, "/sub?game=connect4")[0] == 301
        assert raw_request(url, "/sub?game=connect4")[1]["Location"] == "/sub/?game=connect4"
        assert raw_request(url, "//sub")[1]["Location"] == "/sub/"  # not the host "sub"


def test_missing_files_and_other_methods_are_refused(fake_site, fake_run):
    with serving(fake_run) as url:
        assert get(url + "nowhere.html")[0] == 404
        assert get(url + "models/othello/manifest.json")[0] == 404
        assert raw_request(url, "/index.html", "HEAD")[0] == 200
        for method in ["POST", "PUT", "DELETE", "OPTIONS"]:
            assert raw_request(url, "/index.html", method)[0] == 501, method


BAD_PATHS = ["/index.html\x00.js", "/index.html%00", "/%00", "/js/%zz.js", "/js/%e", "/%ff%fe",
             "/..", "/../etc/passwd", "/js/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
             "/js/..%2f..%2fetc%2fpasswd", "/" + "a" * 5000, "/a b", "/caf\xe9", "*"]


def test_bad_paths_get_400_and_no_traceback(fake_site, fake_run):
    with serve_command(str(fake_run)) as (url, _, process):
        for path in BAD_PATHS:
            assert raw_request(url, path)[0] == 400, path
        assert raw_request(url, "/index.html")[0] == 200  # the server lives on
    log = process.stderr.read()
    assert "Traceback" not in log and "Error" not in log, log
    assert log.count('" 400 ') == len(BAD_PATHS), log


def test_every_response_has_the_security_headers(fake_site, fake_run):
    write(fake_site / "sub" / "index.html", "site:sub")
    with serving(fake_run) as url:
        for method, path, status in [
                ("GET", "/", 200), ("GET", "/models/tictactoe/model.onnx", 200),
                ("HEAD", "/js/play.js", 200), ("GET", "/sub", 301), ("GET", "/nowhere", 404),
                ("GET", "/%00", 400), ("POST", "/", 501)]:
            got, headers = raw_request(url, path, method)
            assert got == status, (method, path)
            for name, value in website.SECURITY_HEADERS.items():
                assert headers.get(name) == value, (method, path, name)
    policy = dict(d.strip().split(" ", 1) for d in website.CONTENT_SECURITY_POLICY.split(";"))
    # What onnxruntime-web needs in the Worker; no inline or evaluated scripts.
    assert policy["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert policy["worker-src"] == "'self'" and policy["default-src"] == "'none'"
    assert "unsafe-inline" not in website.CONTENT_SECURITY_POLICY


def test_the_real_site_has_no_inline_code():
    """The header's policy allows no inline script or style: the pages keep none."""
    for page in website.site_dir().glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), page.name
        assert "<style" not in text and not re.search(r"\sstyle=", text), page.name
        assert not re.search(r"\son[a-z]+=", text), page.name  # onclick= and the like


@pytest.mark.parametrize("problem", ["missing run", "port in use", "no site"])
def test_serve_errors_are_one_line_with_status_2(run_cli, tmp_path, monkeypatch, problem):
    argv = ["serve", str(tmp_path / "nowhere"), "--port", "0"]
    needle = str(tmp_path / "nowhere")
    if problem == "port in use":
        blocker = website.make_server(None, port=0)
        port = blocker.server_address[1]
        argv, needle = ["serve", "--port", str(port)], str(port)
    if problem == "no site":
        monkeypatch.setattr(website, "SITE_DIR", tmp_path / "site")
        argv, needle = ["serve"], str(tmp_path / "site")
    try:
        status, _, err = run_cli(*argv)
    finally:
        if problem == "port in use":
            blocker.server_close()
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err


def test_serve_command_has_help(run_cli):
    status, out, _ = run_cli("serve", "--help")
    assert status == 0 and "RUN_DIR" in out and "--port" in out and "--host" in out


def test_a_site_without_the_vendored_runtime_is_refused(fake_site):
    (fake_site / "vendor" / "onnxruntime-web" / "ort.wasm.bundle.min.mjs").unlink()
    with pytest.raises(website.SiteError, match="npm --prefix site run vendor"):
        website.make_server(None, port=0)


# ---------------------------------------------------------------------------------------------
# build


def files_under(folder: pathlib.Path) -> dict[str, str]:
    return {path.relative_to(folder).as_posix(): path.read_text()
            for path in folder.rglob("*") if path.is_file()}


def test_build_copies_the_site_with_the_run_laid_over(fake_site, fake_run, tmp_path):
    out = tmp_path / "out"
    count = website.build(out, fake_run)
    files = files_under(out)
    assert count == len(files)
    expected = {
        "index.html", "stats.html", "js/play.js", "css/site.css",
        "vendor/onnxruntime-web/ort.wasm.bundle.min.mjs",
        "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm",
        "models/tictactoe/manifest.json", "models/tictactoe/model.onnx",
        "models/tictactoe/params.msgpack", "models/tictactoe/network.json",
        "models/tictactoe/stats.json",
        "models/connect4/manifest.json", "models/connect4/stats.json",
    }
    assert set(files) == expected  # no development files, no checkpoints
    assert files["models/tictactoe/model.onnx"] == "run:model.onnx"
    assert json.loads(files["models/tictactoe/stats.json"])["step"] == 4
    assert files["models/connect4/manifest.json"] == "site:models/connect4/manifest.json"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_build_without_a_run_ships_the_site_models(fake_site, tmp_path):
    website.build(tmp_path / "out")
    files = files_under(tmp_path / "out")
    assert files["models/tictactoe/card.json"] == "site:models/tictactoe/card.json"
    assert "package.json" not in files and not any(f.startswith("node_modules") for f in files)


def test_build_refuses_a_non_empty_folder_unless_forced(fake_site, fake_run, tmp_path):
    out = write(tmp_path / "out" / "old.txt", "old").parent
    with pytest.raises(website.SiteError, match="--force"):
        website.build(out, fake_run)
    assert files_under(out) == {"old.txt": "old"}
    website.build(out, fake_run, force=True)
    assert "old.txt" not in files_under(out) and "index.html" in files_under(out)
    (tmp_path / "empty").mkdir()
    website.build(tmp_path / "empty")  # an empty folder is fine
    assert "index.html" in files_under(tmp_path / "empty")


def test_a_failed_build_leaves_the_old_folder_and_no_litter(fake_site, fake_run, tmp_path,
                                                            monkeypatch):
    out = write(tmp_path / "out" / "old.txt", "old").parent

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(website, "_lay_run_over", fail)
    with pytest.raises(OSError, match="disk full"):
        website.build(out, fake_run, force=True)
    assert files_under(out) == {"old.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run", "site"]


def test_build_refuses_a_run_without_exports(fake_site, tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(website.SiteError, match="export a model first"):
        website.build(tmp_path / "out", tmp_path / "run")
    assert not (tmp_path / "out").exists()


def test_build_script_reports_and_refuses_in_one_line(fake_run, tmp_path):
    out = tmp_path / "www"
    command = [sys.executable, str(BUILD_SCRIPT), "--out", str(out), "--run-dir", str(fake_run)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert (out / "models" / "tictactoe" / "model.onnx").read_text() == "run:model.onnx"
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--force" in result.stderr


def test_the_real_site_builds_self_contained(tmp_path):
    """Every file the pages load is inside the folder and named by a relative URL."""
    out = tmp_path / "out"
    website.build(out)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"index.html", "stats.html", "css/site.css", "js/play.js", "js/worker.js",
            "js/model.js", "js/search.js", "js/games/index.js",
            "vendor/onnxruntime-web/ort.wasm.bundle.min.mjs",
            "vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm",
            "vendor/onnxruntime-web/LICENSE", "THIRD_PARTY_NOTICES.md"} <= files
    for name in files:
        if not name.endswith((".html", ".css", ".js", ".mjs")) or name.startswith("vendor/"):
            continue
        text = (out / name).read_text()
        assert str(REPO) not in text and str(out) not in text, name
        # Root-relative or absolute URLs would break under a sub-path or leave the site.
        assert not re.search(r"""(src|href)=["'](/|https?:)""", text), name
        assert not re.search(r"""(import|from|fetch|new URL)\s*\(?\s*["'](/|https?:)""", text), name
    # Every module a page or module imports by a relative path is in the folder.
    for name in [f for f in files if f.endswith(".js") and not f.startswith("vendor/")]:
        folder = (out / name).parent
        for target in re.findall(r"""from\s+["'](\.[^"']+)["']""", (out / name).read_text()):
            assert (folder / target).resolve().is_file(), f"{name} imports missing {target}"


def test_build_copies_links_as_files(fake_site, tmp_path):
    target = write(tmp_path / "elsewhere" / "big.onnx", "linked")
    os.symlink(target, fake_site / "models" / "connect4" / "model.onnx")
    website.build(tmp_path / "out")
    built = tmp_path / "out" / "models" / "connect4" / "model.onnx"
    assert not built.is_symlink() and built.read_text() == "linked"
    shutil.rmtree(tmp_path / "elsewhere")
    assert built.read_text() == "linked"
