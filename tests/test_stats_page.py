"""The stats page (site/stats.html) in a real browser, drawing the stats.json of a real training run.

A tiny TicTacToe run writes stats.json and an exported model, `cartridge_jax.modelcard` its card;
`cartridge_jax.website` serves a copy of site/ (without its shipped models) with the run laid
over it. Debian's chromium, driven by playwright (the play page's test fixtures), opens the page.
It must draw one chart point per history entry, the benchmarks against the training clock (or
positions or steps, as chosen; steps when the points lack the clock), show the run's counters,
the model and its card, ask for nothing from another origin, log no console error, and pick up a
rewritten stats.json by itself. A screenshot goes to $CARTRIDGE_ARTIFACTS_DIR (default: a pytest
temporary folder).
"""

import io
import json
import pathlib
import shutil

import pytest
from helpers import TINY_TOML
from test_browser import artifacts, assert_clean, open_page, screenshot  # noqa: F401
from test_website import serving

from cartridge_jax import config as config_lib
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.training import loop
from cartridge_jax.web import ship, website

pytestmark = pytest.mark.slow

ITERATIONS = 2
POLL_WAIT_MS = 15_000  # the page polls every 5 s
READY = 'body[data-stats-ready="1"]'
ERROR = '[data-testid="stats-error"]'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> pathlib.Path:
    """A finished tiny run with an exported model and its card: stats.json, models/tictactoe/."""
    folder = tmp_path_factory.mktemp("stats_page")
    toml = folder / "tiny.toml"
    toml.write_text(TINY_TOML)
    config, _ = config_lib.load_config(config_file=str(toml), env={}, flags={
        "common.run_dir": str(folder / "run"), "training.iterations": ITERATIONS,
        "export.enabled": True, "evaluation.benchmarks": ["exhaustive"]})
    loop.run(config, out=io.StringIO(), progress=False)
    run = folder / "run"
    model = run / "models" / "tictactoe"
    stats = stats_lib.read_stats(run / "stats.json")
    # The card's strength results: the run's own latest matches (a real suite takes minutes).
    results = [{"measure": f"vs {entry.opponent}", "games": entry.games, "wins": entry.wins,
                "draws": entry.draws, "losses": entry.losses, "score": entry.score}
               for entry in stats.last_eval.values()]
    manifest = json.loads((model / "manifest.json").read_text())
    card = ship.build_card(stats, manifest, results, command="tiny test run")
    (model / ship.CARD_FILE).write_text(json.dumps(card))
    return run


@pytest.fixture(scope="module")
def served(run_dir, tmp_path_factory):
    """(site folder, its URL): a copy of site/ without its shipped models, served over the run."""
    site = tmp_path_factory.mktemp("site") / "site"
    shutil.copytree(website.site_dir(), site,
                    ignore=shutil.ignore_patterns(*website.DEV_ONLY, "models"))
    with serving(run_dir, site=site) as url:
        yield site, url


def expect(locator):
    from playwright.sync_api import expect as playwright_expect  # once the browser fixture ran

    return playwright_expect(locator)


def _points(page, chart: str) -> int:
    return int(page.get_attribute(f'[data-chart="{chart}"]', "data-points"))


def _tooltip(page, chart: str) -> str:
    """The tooltip's text with the cursor at the right end of `chart` (its last x)."""
    page.mouse.move(0, 0)  # away first: a chart drawn anew under a resting cursor shows no tooltip
    plot = page.locator(f'[data-chart="{chart}"] .u-over')
    box = plot.bounding_box()
    plot.hover(position={"x": box["width"] - 2, "y": box["height"] / 2})
    tooltip = page.locator(f'[data-chart="{chart}"] .chart-tooltip')
    tooltip.wait_for(state="visible")
    return tooltip.inner_text()


def _x_value(tooltip: str, label: str) -> str:
    """The x in a tooltip's first line, "<label>: <x>"."""
    first = tooltip.splitlines()[0]
    assert first.startswith(f"{label}: "), tooltip
    return first.removeprefix(f"{label}: ")


def _card_value(page, label: str) -> str:
    card = page.locator(".stats-card", has=page.locator(".stats-card-label", has_text=label))
    return card.locator(".stats-card-value").inner_text()


def test_stats_page_draws_a_real_run_and_follows_updates(served, run_dir, open_page, artifacts):
    _, base = served
    stats_path = run_dir / "stats.json"
    stats = stats_lib.read_stats(stats_path)
    manifest = json.loads((run_dir / "models" / "tictactoe" / "manifest.json").read_text())
    card = json.loads((run_dir / "models" / "tictactoe" / "card.json").read_text())
    assert len(stats.history) == ITERATIONS and stats.eval_history  # what the page will draw

    page = open_page(base + "stats.html?game=tictactoe")
    page.wait_for_selector(READY)

    # One chart point per history entry; one evaluation chart per opponent, a point per match.
    assert _points(page, "loss") == len(stats.history)
    assert _points(page, "learning-rate") == len(stats.history)
    assert _points(page, "throughput") == len(stats.history)
    for opponent in {entry.opponent for entry in stats.eval_history}:
        matches = [entry for entry in stats.eval_history if entry.opponent == opponent]
        assert _points(page, f"eval-{opponent}") == len(matches)
    assert _points(page, "benchmarks") == len({point.step for point in stats.benchmarks})

    # The loss chart's canvas is really drawn on: plenty of non-transparent pixels.
    painted = page.evaluate("""() => {
        const canvas = document.querySelector('[data-chart="loss"] canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let count = 0;
        for (let i = 3; i < pixels.length; i += 4) count += pixels[i] > 0;
        return count;
    }""")
    assert painted > 1000

    # Hovering the loss chart's right end shows the last step in a tooltip.
    assert f"step: {stats.history[-1].step}" in _tooltip(page, "loss")

    # The benchmarks are drawn against the training clock, in minutes, their rates in percent;
    # the control switches the x axis to positions generated and to steps.
    last_point = stats.benchmarks[-1]
    assert all(point.clock_s is not None for point in stats.benchmarks)
    assert page.input_value('[data-testid="benchmark-x"]') == "clock"
    tooltip = _tooltip(page, "benchmarks")
    minutes = float(_x_value(tooltip, "training clock (min)"))
    assert minutes == pytest.approx(last_point.clock_s / 60, rel=1e-2)  # 3 significant digits
    measured = {f"{point.name} {point.metric}": point.value
                for point in stats.benchmarks if point.step == last_point.step}
    shown = dict(line.split(": ", 1) for line in tooltip.splitlines()[1:])
    assert shown.keys() == measured.keys()  # TicTacToe's are all rates: optimal_rate, raw_...
    for label, value in shown.items():
        assert value.endswith("%")
        assert float(value[:-1]) == pytest.approx(100 * measured[label], abs=0.05)
    page.select_option('[data-testid="benchmark-x"]', "positions")
    shown_positions = _x_value(_tooltip(page, "benchmarks"), "positions generated")
    assert shown_positions == str(last_point.positions_generated)  # a tiny run's: under 1,000
    page.select_option('[data-testid="benchmark-x"]', "step")
    assert _x_value(_tooltip(page, "benchmarks"), "step") == f"{last_point.step:,}"
    page.select_option('[data-testid="benchmark-x"]', "clock")

    # The summary cards show the run's counters, the model panel the exported model and its card.
    assert _card_value(page, "Step") == f"{stats.step:,}"
    assert _card_value(page, "Iteration") == str(stats.iteration)
    assert _card_value(page, "Games played") == f"{stats.games_played:,}"
    assert _card_value(page, "Replay buffer") == f"{stats.replay_size:,}"
    model = page.locator("#model-facts").inner_text()
    assert f"step\n{manifest['step']}" in model and manifest["network"] in model
    page.click("#model-card > details > summary")
    card_text = page.locator("#model-card > details").inner_text()
    assert card["hardware"]["cpu"] in card_text and card["run_id"] in card_text
    assert "vs random" in card_text  # a row of the evaluation table
    assert page.locator(ERROR).is_hidden()

    # The loss chart's lines: total, policy and value, each raw and as a rolling mean (the
    # default); with the rolling means off only the raw three, on the same points.
    legend = page.locator('[data-chart="loss"] .u-legend .u-series')
    expect(legend).to_have_count(6)
    page.select_option('select[name="smoothing"]', "1")
    expect(legend).to_have_count(3)
    assert _points(page, "loss") == len(stats.history)

    # The trainer finishes one more iteration, its loss diverged (null): the page shows it by
    # itself, the point counted (a gap in the chart) and the latest loss shown as missing. Its
    # benchmark point has no clock, as in a file written before the clock was recorded: the
    # benchmarks fall back to steps.
    last = stats.history[-1]
    grown = stats_lib.record_iteration(
        stats, step=last.step + 4, iteration=last.iteration + 1,
        losses={"total": None, "policy": None, "value": None}, learning_rate=last.learning_rate,
        throughput={"positions_per_s": 100.0, "games_per_s": 10.0}, replay_size=last.replay_size,
        samples_seen=stats.samples_seen, positions_generated=stats.positions_generated,
        games_played=stats.games_played, wall_time_s=stats.wall_time_s + 1)
    stats_lib.write_stats(stats_path, stats_lib.record_benchmarks(grown, [
        last_point.model_copy(update={"step": last.step + 4, "iteration": last.iteration + 1,
                                      "clock_s": None})]))
    expect(page.locator('[data-chart="loss"]')).to_have_attribute(
        "data-points", str(len(stats.history) + 1), timeout=POLL_WAIT_MS)
    assert page.input_value('[data-testid="benchmark-x"]') == "step"
    assert page.locator('[data-testid="benchmark-x"] option[value="clock"]').is_disabled()
    assert _x_value(_tooltip(page, "benchmarks"), "step") == f"{last.step + 4:,}"
    assert _card_value(page, "Step") == f"{last.step + 4:,}"
    assert _card_value(page, "Total loss") == "–"
    assert page.locator("#model-card > details").get_attribute("open") is not None  # still open

    screenshot(page, artifacts, "stats_page")
    assert_clean(page, base)

    # Another game without a run: the page says how to make one, and the address follows.
    page.select_option("#game", "connect4")
    error = page.locator(ERROR)
    error.wait_for(state="visible")
    assert "no training stats yet for connect4" in error.inner_text()
    assert "python scripts/train.py --game connect4" in error.inner_text()
    assert page.url.endswith("stats.html?game=connect4")
    assert_clean(page, base, expected_errors="404")  # connect4's files are absent


def test_stats_page_refuses_a_newer_schema(served, open_page):
    site, base = served
    folder = site / "models" / "othello"
    folder.mkdir(parents=True, exist_ok=True)
    newer = stats_lib.SCHEMA_VERSION + 1
    (folder / "stats.json").write_text(json.dumps({"schema_version": newer, "game": "othello"}))
    page = open_page(base + "stats.html?game=othello")
    error = page.locator(ERROR)
    error.wait_for(state="visible")
    assert f"schema_version {newer}" in error.inner_text()
    assert f"reads up to {stats_lib.SCHEMA_VERSION}:" in error.inner_text()
    assert page.get_attribute("body", "data-stats-ready") is None
