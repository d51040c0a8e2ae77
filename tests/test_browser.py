"""The play page (site/index.html) in a real browser against real exported networks.

A tiny TicTacToe training run exports its net and stats.json; Connect 4 and Othello get freshly
initialised nets exported into the same run directory. `cartridge_jax.website` serves the site
over that run on a free port; Debian's chromium, driven by playwright, plays. Every position the
page shows is checked against the Python (JAX) rules replaying the page's move list: the board,
the moves offered, the result. Each test also checks that the page asked nothing of another
origin and logged no console error (a Content-Security-Policy violation is one).

Screenshots and the measured bot latencies (click to the person's turn again, at the model's
default strength) go to $CARTRIDGE_ARTIFACTS_DIR (default: a pytest temporary folder).
"""

import functools
import io
import json
import os
import pathlib
import random
import re
import shutil
import statistics
import time

import jax
import numpy as np
import pytest
from helpers import TINY_TOML
from test_website import serve_command, serving

from cartridge_jax import _files, games
from cartridge_jax import config as config_lib
from cartridge_jax.config import ModelConfig
from cartridge_jax.model import export, nets
from cartridge_jax.run import layout
from cartridge_jax.training import loop
from cartridge_jax.web import website

pytestmark = pytest.mark.slow

READY = 'body[data-ready="1"]'
OVER = "body[data-result]"
TURN = f"{READY}, {OVER}"  # the person's turn, or the game is over
LEGAL = '[data-action][data-legal="1"]'
TIMEOUT_MS = 60_000  # generous: CI machines are shared
POLL_WAIT_MS = 20_000  # the page polls the manifest every 4 s
# Untrained Connect 4 / Othello nets (as small as test_export's, sharing its compilations).
FRESH_MODELS = {
    "connect4": ModelConfig(kind="resnet", resnet_blocks=1, resnet_channels=8, value_hidden=8),
    "othello": ModelConfig(kind="resnet", resnet_blocks=1, resnet_channels=8, value_hidden=8),
}
NEXT_STEP = 1000  # the step of the replacement TicTacToe export


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """(run_dir, next_dir, nan_dir): a run with all three games' exports and stats.json; kept
    aside, a second TicTacToe export (step NEXT_STEP, other parameters) for the live swap and
    one whose parameters are NaN."""
    root = tmp_path_factory.mktemp("browser_run")
    (root / "tiny.toml").write_text(TINY_TOML)
    run_dir = root / "run"
    # test_export.py trains the same configuration: the compilations are cached.
    config, _ = config_lib.load_config(config_file=str(root / "tiny.toml"), env={}, flags={
        "common.run_dir": str(run_dir), "training.iterations": 1, "evaluation.interval": 0,
        "export.enabled": True})
    loop.run(config, out=io.StringIO(), progress=False)
    agent = export.agent_settings(config_lib.Config())
    for name, model_config in FRESH_MODELS.items():
        game = games.make(name)
        network = nets.make_network(model_config, game)
        params = nets.init_params(network, game, jax.random.key(0, impl="rbg"))
        export.export_model(game, network, params, model_config, layout.model_dir(run_dir, name),
                            step=0, iteration=0, opset=config.export.onnx_opset,
                            ir_version=config.export.onnx_ir_version, agent=agent)
    game = games.make("tictactoe")
    network = nets.make_network(config.model, game)
    params = nets.init_params(network, game, jax.random.key(1))
    versions = {"opset": config.export.onnx_opset, "ir_version": config.export.onnx_ir_version,
                "agent": export.agent_settings(config)}
    export.export_model(game, network, params, config.model, root / "next", step=NEXT_STEP,
                        iteration=NEXT_STEP // 4, **versions)
    nan_params = jax.tree.map(lambda leaf: leaf * np.nan, params)
    export.export_model(game, network, nan_params, config.model, root / "nan", step=1,
                        iteration=1, **versions)
    return run_dir, root / "next", root / "nan"


@pytest.fixture(scope="session")
def site_url(exports):
    with serving(exports[0]) as url:
        yield url


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> pathlib.Path:
    folder = pathlib.Path(os.environ.get("CARTRIDGE_ARTIFACTS_DIR")
                          or tmp_path_factory.mktemp("browser_artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test artifacts: {folder}")
    return folder


@pytest.fixture(scope="session")
def latencies(artifacts):
    """game -> [(seconds from the click to the person's turn again, seconds of the search as
    the page measured it)]; summarised in latency.json at the end."""
    measured = {}
    yield measured
    summary = {game: {"moves": len(times),
                      "median_s": round(statistics.median(t for t, _ in times), 3),
                      "max_s": round(max(t for t, _ in times), 3),
                      "search_median_s": round(statistics.median(s for _, s in times), 3)}
               for game, times in measured.items()}
    (artifacts / "latency.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\nbot move latency (click to the person's turn again): {summary}")


@pytest.fixture
def open_page(browser):
    """open_page(url) -> a fresh page (own cache) at `url`, recording what it requests and logs."""
    contexts = []

    def open_(url):
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.requests, page.errors = [], []
        page.on("request", lambda request: page.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and page.errors.append(
            message.text))
        page.on("pageerror", lambda error: page.errors.append(f"uncaught: {error}"))
        page.add_init_script("""document.addEventListener('securitypolicyviolation',
            (event) => console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`));""")
        page.set_default_timeout(TIMEOUT_MS)
        page.document_response = page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


def assert_clean(page, base: str, expected_errors: str | None = None) -> None:
    """Nothing requested outside `base`; no console error but those matching `expected_errors`."""
    assert [url for url in page.requests if not url.startswith((base, "data:"))] == []
    unexpected = [text for text in page.errors
                  if expected_errors is None or not re.search(expected_errors, text)]
    assert unexpected == []


def screenshot(page, artifacts, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True, animations="disabled")


# ---------------------------------------------------------------------------------------------
# The page, read and driven


def legal_actions(page) -> list[int]:
    return sorted(int(a) for a in page.eval_on_selector_all(LEGAL, "els => els.map(e => e.dataset.action)"))


def move_names(page) -> list[str]:
    """The move list's moves ("X (you) b2" -> "b2")."""
    return [text.split()[-1] for text in page.locator('[data-testid="moves"] li').all_inner_texts()]


def shown_board(page) -> list[int]:
    """Each cell as drawn: 0 empty, 1 player 0's piece, 2 player 1's."""
    cells = page.eval_on_selector_all("[data-cell]", """els => els.map(e => [Number(e.dataset.cell),
        e.querySelector('.piece.p0') ? 1 : e.querySelector('.piece.p1') ? 2 : 0])""")
    return [piece for _, piece in sorted(cells)]


def body(page, name: str) -> str | None:
    return page.get_attribute("body", f"data-{name}")


def play(page, action: int, latencies=None, game: str = "") -> None:
    """Plays `action` by clicking it; waits for the person's turn (or the end)."""
    started = time.perf_counter()
    page.click(f'[data-action="{action}"]')
    page.wait_for_selector(TURN)
    if latencies is not None and body(page, "result") is None:
        # The page's own measure of the search alone ("... simulations in 0.12 s.").
        searched = re.search(r"in ([\d.]+) s", page.inner_text("#search-info"))
        latencies.setdefault(game, []).append(
            (time.perf_counter() - started, float(searched.group(1))))


# ---------------------------------------------------------------------------------------------
# The Python rules: the independent truth


@functools.lru_cache(maxsize=None)
def _rules(name: str):
    game = games.make(name)
    return game, jax.jit(game.init), jax.jit(game.step), jax.jit(game.observe)


def replay(name: str, moves: list[str]):
    """(board as in `shown_board`, legal actions, state) after `moves` in the JAX rules."""
    game, init, step, observe = _rules(name)
    state = init(jax.random.key(0))
    for move in moves:
        state = step(state, game.action_from_text(move))
    planes = np.asarray(observe(state)).reshape(-1, 2)  # [cells, side to move | opponent]
    mover = int(state.current_player)
    board = np.where(planes[:, 0] > 0, mover + 1, np.where(planes[:, 1] > 0, 2 - mover, 0))
    legal = np.flatnonzero(np.asarray(state.legal_action_mask)).tolist()
    return board.tolist(), legal, state


def assert_matches_rules(page, name: str, human: int) -> None:
    """The drawn board, the moves offered and the result are those of the JAX rules."""
    board, legal, state = replay(name, move_names(page))
    assert shown_board(page) == board
    if bool(state.terminated):
        reward = float(state.rewards[human])
        assert body(page, "result") == ("human" if reward > 0 else "bot" if reward < 0 else "draw")
        assert body(page, "ready") is None and legal_actions(page) == []
    else:
        assert int(state.current_player) == human and body(page, "result") is None
        assert legal_actions(page) == legal


def play_to_the_end(page, name: str, human: int, rng: random.Random, latencies=None) -> None:
    page.wait_for_selector(TURN)
    while body(page, "result") is None:
        assert_matches_rules(page, name, human)
        play(page, rng.choice(legal_actions(page)), latencies, name)
    assert_matches_rules(page, name, human)


# ---------------------------------------------------------------------------------------------
# Tests


def test_a_whole_tictactoe_game_by_clicking(exports, site_url, open_page, artifacts, latencies):
    run_dir = exports[0]
    manifest = json.loads((run_dir / "models/tictactoe/manifest.json").read_text())
    page = open_page(site_url + "?game=tictactoe")
    page.wait_for_selector(READY)
    assert body(page, "bot") == "network"
    assert page.input_value('[data-testid="game"]') == "tictactoe"
    # Default strength: the trained run's evaluation strength, as the manifest says.
    assert page.input_value('[data-testid="strength"]') == str(manifest["agent"]["simulations"])
    info = page.inner_text('[data-testid="model-info"]')
    assert f"step {manifest['step']}" in info and f"iteration {manifest['iteration']}" in info
    assert page.inner_text('[data-testid="status"]') == "Your move: you play X."

    play(page, 4, latencies, "tictactoe")  # b2
    # Clicks on an occupied cell, or while the bot is on the move, change nothing.
    before = (move_names(page), shown_board(page))
    page.click('[data-action="4"]', force=True)
    page.wait_for_selector(READY)
    assert (move_names(page), shown_board(page)) == before
    assert page.locator('[data-testid="error"]').is_hidden()

    play_to_the_end(page, "tictactoe", 0, random.Random(0), latencies)
    result = body(page, "result")
    status = page.inner_text('[data-testid="status"]')
    assert {"human": "You win", "bot": "The bot wins", "draw": "Draw"}[result] in status
    assert re.fullmatch(r"\d+%", page.inner_text('[data-testid="win-probability"]'))
    screenshot(page, artifacts, "tictactoe_game_over")
    assert_clean(page, site_url)


@pytest.mark.parametrize("name", ["connect4", "othello"])
def test_moves_in_connect4_and_othello(name, exports, site_url, open_page, artifacts, latencies):
    manifest = json.loads((exports[0] / "models" / name / "manifest.json").read_text())
    page = open_page(site_url + f"?game={name}")
    page.wait_for_selector(READY)
    assert body(page, "bot") == "network"
    assert page.input_value('[data-testid="strength"]') == str(manifest["agent"]["simulations"])
    assert_matches_rules(page, name, 0)
    rng = random.Random(1)
    if name == "connect4":
        page.keyboard.press("4")  # digits drop into a column
        page.wait_for_selector(TURN)
        assert move_names(page)[0] == "4"
    for _ in range(3):
        assert_matches_rules(page, name, 0)
        play(page, rng.choice(legal_actions(page)), latencies, name)
    assert_matches_rules(page, name, 0)
    if name == "othello":
        # Othello shows its legal moves, and a pass button that is off while moves exist.
        assert page.locator(".cell.legal").count() == len(legal_actions(page))
        assert page.is_disabled('[data-action="64"]')
        # A click on a square that is no legal move changes nothing.
        before = move_names(page)
        illegal = next(a for a in range(64) if a not in legal_actions(page))
        page.click(f'[data-action="{illegal}"]', force=True)
        assert move_names(page) == before and body(page, "ready") == "1"
    screenshot(page, artifacts, f"{name}_moves")
    assert_clean(page, site_url)


def test_bot_first_probabilities_keyboard_and_undo(site_url, open_page, artifacts):
    page = open_page(site_url + "?game=tictactoe")
    page.wait_for_selector(READY)
    page.check('[data-testid="show-probabilities"]')
    page.check('[data-testid="bot-first"]')  # a new game with the bot as X
    page.wait_for_selector(READY)
    assert len(move_names(page)) == 1 and "you play O" in page.inner_text('[data-testid="status"]')
    assert_matches_rules(page, "tictactoe", 1)
    # The bot's move probabilities on the board: its search's improved policy, summing to 100%.
    shares = [int(text.rstrip("%")) for text in page.locator(".share").all_inner_texts()]
    assert shares and abs(sum(shares) - 100) <= len(shares)
    assert len(page.locator(".top-moves li").all_inner_texts()) == min(5, len(shares))

    # Keyboard: arrows move the cursor, Enter plays; digits pick a TicTacToe cell.
    target = legal_actions(page)[0]
    page.focus("#board")
    for key in ["ArrowUp", "ArrowUp", "ArrowLeft", "ArrowLeft"]:  # to a1, the top left
        page.keyboard.press(key)
    for _ in range(target % 3):
        page.keyboard.press("ArrowRight")
    for _ in range(target // 3):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector(TURN)
    assert move_names(page)[1] == games.make("tictactoe").action_to_text(target)
    assert_matches_rules(page, "tictactoe", 1)
    digit_target = legal_actions(page)[-1]
    page.keyboard.press(str(digit_target + 1))
    page.wait_for_selector(TURN)
    assert len(move_names(page)) >= 4 and move_names(page)[3] == games.make(
        "tictactoe").action_to_text(digit_target)

    # Undo takes back the person's last move and the bot's reply.
    moves = move_names(page)
    page.click('[data-testid="undo"]')
    page.wait_for_selector(READY)
    assert move_names(page) == moves[:3]
    assert_matches_rules(page, "tictactoe", 1)
    # ... and shows again what the bot thought of the move now last.
    assert page.locator(".share").count() > 0
    assert re.fullmatch(r"\d+%", page.inner_text('[data-testid="win-probability"]'))
    screenshot(page, artifacts, "tictactoe_bot_first_probabilities")
    page.click('[data-testid="new-game"]')
    page.wait_for_selector(READY)
    assert len(move_names(page)) == 1

    # Another game from the menu: its board, its model, the bot still first.
    page.select_option('[data-testid="game"]', "othello")
    page.wait_for_function("document.body.dataset.game === 'othello'")
    page.wait_for_selector(READY)
    assert page.url.endswith("?game=othello") and len(move_names(page)) == 1
    assert_matches_rules(page, "othello", 1)
    assert_clean(page, site_url)


def test_a_whole_game_under_the_headers_of_the_serve_command(exports, open_page, artifacts):
    """The `serve` command itself, with its Content-Security-Policy: the network loads and
    plays in the Worker (WebAssembly, module imports, fetches), the stats page draws, and the
    browser reports no violation."""
    with serve_command(str(exports[0])) as (url, _, _):
        page = open_page(url + "?game=tictactoe")
        headers = page.document_response.all_headers()
        for name, value in website.SECURITY_HEADERS.items():
            assert headers.get(name.lower()) == value, name
        page.wait_for_selector(READY)
        assert body(page, "bot") == "network"
        play_to_the_end(page, "tictactoe", 0, random.Random(3))
        assert body(page, "bot") == "network" and page.locator('[data-testid="error"]').is_hidden()
        screenshot(page, artifacts, "serve_command_game_over")
        assert_clean(page, url)
        stats_page = open_page(url + "stats.html?game=tictactoe")
        stats_page.wait_for_selector('body[data-stats-ready="1"]')
        # The run's export has no model card (optional; `ship` writes it): its 404 is logged.
        assert [r for r in stats_page.requests if "card.json" in r]
        assert_clean(stats_page, url, expected_errors=r"status of 404")


def _site_without(folder: pathlib.Path, file_name: str) -> pathlib.Path:
    """A copy of site/ in `folder` without the file called `file_name`."""
    site = folder / "site"
    shutil.copytree(website.site_dir(), site,
                    ignore=shutil.ignore_patterns(*website.DEV_ONLY, file_name))
    return site


BROKEN = {
    # problem: (what to do to a copy of the run's tictactoe folder, given the NaN export's
    #           folder, or the site file to leave out; words the error must say; console
    #           errors the browser itself logs for it)
    "corrupt model": (lambda folder, _: (folder / "model.onnx").write_bytes(b"\x08garbage" * 64),
                      "is corrupt", None),
    "missing model": (lambda folder, _: (folder / "model.onnx").unlink(),
                      "model file is missing", r"404"),
    "missing manifest": (lambda folder, _: (folder / "manifest.json").unlink(),
                         "There is no TicTacToe model", r"404"),
    "model for another game": (
        lambda folder, _: (folder / "manifest.json").write_text(json.dumps(
            {**json.loads((folder / "manifest.json").read_text()), "game": "connect4"})),
        'model for "connect4", not TicTacToe', None),
    "non-finite outputs": (
        lambda folder, nan_dir: [shutil.copy(nan_dir / name, folder / name)
                                 for name in (export.MODEL_FILE, export.MANIFEST_FILE)],
        "returned non-finite numbers", None),
    "missing wasm": ("ort-wasm-simd-threaded.wasm", "WebAssembly runtime could not be loaded",
                     r"404|wasm|WebAssembly|ArrayBuffer instantiation"),
    "missing script": ("search.js", "worker (js/worker.js) stopped", r"404"),
}


@pytest.mark.parametrize("problem", list(BROKEN))
def test_a_broken_model_is_explained_and_a_random_bot_plays(problem, exports, open_page,
                                                            artifacts, tmp_path):
    damage, words, expected_errors = BROKEN[problem]
    run_dir = tmp_path / "run"
    shutil.copytree(exports[0], run_dir)
    site = None
    if isinstance(damage, str):
        site = _site_without(tmp_path, damage)
    else:
        damage(run_dir / "models" / "tictactoe", exports[2])
    with serving(run_dir, site=site) as url:
        page = open_page(url + "?game=tictactoe")
        page.wait_for_selector(READY)
        error = page.locator('[data-testid="error"]')
        assert error.is_visible() and words in error.inner_text()
        assert "the bot plays random moves" in error.inner_text()
        assert body(page, "bot") == "random"
        assert "random" in page.inner_text('[data-testid="model-info"]')
        play_to_the_end(page, "tictactoe", 0, random.Random(2))
        if problem == "corrupt model":
            screenshot(page, artifacts, "corrupt_model_random_fallback")
        assert_clean(page, url, expected_errors)


def test_a_new_export_replaces_the_model_while_the_page_is_open(exports, open_page, artifacts,
                                                               tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(exports[0], run_dir)
    folder = run_dir / "models" / "tictactoe"
    with serving(run_dir) as url:
        page = open_page(url + "?game=tictactoe")
        page.wait_for_selector(READY)
        play(page, 0)
        # What export does: the model, then the manifest that announces it.
        for name in (export.MODEL_FILE, export.MANIFEST_FILE):
            _files.atomic_write_bytes(folder / name, (exports[1] / name).read_bytes())
        note = page.locator('[data-testid="model-note"]')
        note.wait_for(state="visible", timeout=POLL_WAIT_MS)
        assert note.inner_text() == f"New model loaded: step {NEXT_STEP}"
        assert f"step {NEXT_STEP}" in page.inner_text('[data-testid="model-info"]')
        sha = json.loads((folder / export.MANIFEST_FILE).read_text())["sha256"]
        assert any(request.endswith(f"model.onnx?v={sha}") for request in page.requests)
        play(page, legal_actions(page)[0])  # the new model plays
        assert body(page, "bot") == "network" and page.locator('[data-testid="error"]').is_hidden()
        assert_matches_rules(page, "tictactoe", 0)
        screenshot(page, artifacts, "new_model_loaded")
        assert_clean(page, url)


def test_the_built_site_plays_from_a_sub_path(exports, open_page, artifacts, tmp_path):
    root = tmp_path / "www"
    website.build(root / "sub" / "cartridge", exports[0])
    with serving(None, site=root) as url:
        base = url + "sub/cartridge/"
        page = open_page(base + "?game=connect4")
        page.wait_for_selector(READY)
        assert body(page, "bot") == "network"
        play(page, 3)
        assert len(move_names(page)) == 2
        assert_matches_rules(page, "connect4", 0)
        assert page.get_attribute('a[href^="stats.html"]', "href").startswith("stats.html")
        screenshot(page, artifacts, "built_site_sub_path")
        assert_clean(page, base)  # every request stayed under the sub-path
