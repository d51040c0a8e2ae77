"""The benchmark: every suite runs at tiny sizes and writes the fields its readers rely on, and
the pgx reference loop plays legal games (replayed move by move through our own rules)."""

import functools
import importlib.util
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TINY_TOML

from cartridge_jax import games
from cartridge_jax.bench import flops, iteration, pgx_reference, presets
from cartridge_jax.config import MctsConfig
from cartridge_jax.games.base import where_batched
from cartridge_jax.model import nets

HAVE_PGX = importlib.util.find_spec("pgx") is not None
needs_pgx = pytest.mark.skipif(
    not HAVE_PGX, reason='pgx is not installed (pip install -e ".[dev]"): the comparisons need it')

# Tiny sizes: what is tested is that each suite runs and reports, not the numbers.
TINY_ARGS = ["--games", "tictactoe", "--batch-sizes", "8", "--steps", "4", "--repeats", "2",
             "--nets", "tiny", "--sims", "2", "--selfplay-games", "4", "--selfplay-moves", "2",
             "--learner-steps", "2", "--search-sims", "2,4", "--search-batches", "2"]


@pytest.fixture(scope="module")
def bench_output(tmp_path_factory):
    """(JSON result, markdown, PNG bytes) of one run of every suite at tiny sizes."""
    from cartridge_jax import cli

    folder = tmp_path_factory.mktemp("bench")
    (folder / "tiny.toml").write_text(TINY_TOML)
    argv = ["bench", "--suite", "all", *TINY_ARGS, "--config", str(folder / "tiny.toml"),
            "--out", str(folder / "out" / "b.json"), *([] if HAVE_PGX else ["--no-pgx"])]
    saved = {name: getattr(jax.config, name) for name in (
        "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")}
    try:
        assert cli.main(argv) == 0
    finally:  # keep the test session's compilation cache settings
        for name, value in saved.items():
            jax.config.update(name, value)
    out = folder / "out"
    return (json.loads((out / "b.json").read_text()), (out / "b.md").read_text(),
            (out / "b.png").read_bytes())


def assert_ratios_match_speeds(row, speed):
    """The ratio columns are our speed over pgx's for the same work."""
    assert row[f"ours_{speed}"] > 0 and row["ours_compile_s"] >= 0
    if HAVE_PGX:
        assert row[f"pgx_{speed}"] > 0 and row["ours_over_pgx_cpu"] > 0
        assert row["ours_over_pgx"] == pytest.approx(row[f"ours_{speed}"] / row[f"pgx_{speed}"])
    else:
        assert f"pgx_{speed}" not in row and "ours_over_pgx" not in row


@pytest.mark.slow
def test_device_and_suites_are_recorded(bench_output):
    result, markdown, png = bench_output
    assert result["suites"] == ["games", "selfplay", "learner", "iteration", "scaling", "search"]
    device = result["device"]
    assert {"platform", "device_kind", "device_count", "cpu", "cpu_cores", "load_average_1min",
            "jax_version", "jaxlib_version", "flax_version", "mctx_version"} <= set(device)
    assert device["platform"] == jax.default_backend()
    assert ("pgx_version" in device) == HAVE_PGX
    headings = [line for line in markdown.splitlines() if line.startswith("# ")]
    assert headings == ["# Random play, steps/s",
                        "# Self-play, positions/s (search + step + replay insert)",
                        "# Learner, gradient steps/s",
                        "# One training iteration, seconds per phase",
                        "# Scaling over devices (global batches fixed)",
                        "# Search, milliseconds per simulation", "# Device"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.slow
def test_games_and_selfplay_rows(bench_output):
    result, _, _ = bench_output
    (row,) = result["random_play"]
    assert (row["game"], row["batch_size"], row["steps"]) == ("tictactoe", 8, 4)
    assert_ratios_match_speeds(row, "steps_per_s")
    (row,) = result["selfplay"]
    assert (row["game"], row["net"], row["simulations"], row["games"], row["moves"]) == (
        "tictactoe", "tiny", 2, 4, 2)
    assert row["network"].startswith("MLP 32,")
    assert_ratios_match_speeds(row, "positions_per_s")
    # The FLOP fields: 3 evaluations per position at 2 simulations, at the measured speed.
    assert row["achieved_tflops"] == pytest.approx(
        row["gflop_per_position"] * row["ours_positions_per_s"] / 1e3)
    assert row["flop_fraction"] == pytest.approx(row["achieved_tflops"] / row["peak_tflops"])
    assert 0 < row["flop_fraction"] < 1


@pytest.mark.parametrize("game_name, net", [("tictactoe", "tiny"), ("connect4", "cpu")])
def test_evaluation_flops_of_an_mlp_are_its_matrix_products(game_name, net):
    # An MLP evaluation is 2 FLOPs per kernel weight (a multiply and an add), plus a few
    # elementwise ones (biases, activations) that XLA counts too.
    config = presets.preset_config(game_name, net)
    game = games.make(game_name)
    network = nets.make_network(config.model, game)
    params = nets.init_params(network, game, jax.random.key(0))
    kernel_weights = sum(leaf.size for path, leaf in jax.tree_util.tree_leaves_with_path(params)
                         if "kernel" in jax.tree_util.keystr(path))
    counted = flops.evaluation_flops(network, params, game.observation_shape)
    assert 2 * kernel_weights <= counted <= 1.05 * 2 * kernel_weights


@pytest.mark.slow
def test_learner_row(bench_output):
    result, _, _ = bench_output
    (row,) = result["learner"]
    preset_batch = presets.preset_config("tictactoe", "tiny").training.batch_size
    assert (row["game"], row["batch_size"], row["steps"]) == ("tictactoe", preset_batch, 2)
    assert row["steps_per_s"] > 0
    assert row["samples_per_s"] == pytest.approx(row["steps_per_s"] * preset_batch)


@pytest.mark.slow
def test_iteration_row(bench_output):
    result, _, _ = bench_output
    (row,) = result["iteration"]
    # The tiny configuration's sizes, not a preset's: the suite measures what `train` would run.
    assert (row["game"], row["games"], row["moves"], row["simulations"]) == ("tictactoe", 8, 8, 4)
    assert row["network"].startswith("MLP 16,")
    assert set(row["seconds"]) == set(iteration.PHASES)
    assert all(seconds > 0 for seconds in row["seconds"].values())
    assert set(row["compile_s"]) == {"selfplay", "train", "evaluate"}
    assert row["positions"] == 8 * 8
    assert row["positions_per_s"] == pytest.approx(row["positions"] / row["seconds"]["selfplay"])
    # replay.py's count for TicTacToe: 18 observation + 36 policy + 9 legal + 4 value + 1 player
    # + 2 flags.
    assert row["replay_bytes_per_position"] == 70
    assert row["peak_host_memory_mb"] > 0


@pytest.mark.slow
def test_scaling_rows(bench_output):
    result, _, _ = bench_output
    # One row per device count this process has (test_distributed checks 1, 2 and 4 devices).
    rows = result["scaling"]
    assert [row["devices"] for row in rows] == [1, 2, 4][:len(rows)] and rows
    assert rows[0]["selfplay_speedup"] == rows[0]["train_speedup"] == 1.0
    assert all(row["positions_per_s"] > 0 and row["steps_per_s"] > 0 for row in rows)
    assert (rows[0]["game"], rows[0]["net"], rows[0]["games"]) == ("tictactoe", "tiny", 4)


@pytest.mark.slow
def test_search_rows(bench_output):
    """Both sweeps, both policies, zero-cost and preset networks; ours next to mctx."""
    result, markdown, _ = bench_output
    rows = result["search"]
    assert {(row["policy"], row["network"], row["batch"], row["simulations"]) for row in rows} == {
        (policy, network, batch, sims) for policy in ("puct", "gumbel") for network, batch, sims in
        (("zero-cost", 128, 2), ("zero-cost", 128, 4), ("zero-cost", 2, 64),
         ("tictactoe tiny", 128, 2), ("tictactoe tiny", 128, 4))}
    for row in rows:
        assert row["ours_ms_per_sim"] > 0 and row["mctx_ms_per_sim"] > 0
        ratio = row["mctx_ms_per_sim"] / row["ours_ms_per_sim"]
        assert row["ours_over_mctx"] == pytest.approx(ratio)
    assert "# Search, milliseconds per simulation" in markdown


def test_missing_pgx_is_one_line_naming_the_extra(run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pgx", None)  # makes `import pgx` fail
    status, _, err = run_cli("bench", "--games", "tictactoe", "--batch-sizes", "8", "--steps", "2",
                             "--repeats", "1", "--out", "b.json")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert 'pip install -e ".[bench]"' in err and "--no-pgx" in err


def test_bad_suite_is_one_line(run_cli):
    status, _, err = run_cli("bench", "--suite", "games,speed")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "'speed'" in err


# ---------------------------------------------------------------------------------------------
# The pgx reference loop plays legal games.

REFERENCE_GAMES, REFERENCE_MOVES = 4, {"tictactoe": 12, "connect4": 16, "othello": 16}


@functools.lru_cache(maxsize=None)
def reference_records(name: str):
    """The records [T, G] (numpy) of one reference chunk from fresh games, a random tiny net."""
    env = pgx_reference.make_env(name)
    module = nets.make_network(presets.preset_config(name, "tiny").model, games.make(name))
    params = jax.jit(module.init)(jax.random.key(1), jnp.zeros((1, *env.observation_shape)))
    mcts = MctsConfig(simulations=2, max_considered_actions=4)
    moves = REFERENCE_MOVES[name]
    chunk = jax.jit(functools.partial(pgx_reference.selfplay_chunk, env, module.apply, mcts, moves))
    states = jax.vmap(env.init)(jax.random.split(jax.random.key(2), REFERENCE_GAMES))
    ring = pgx_reference.init_ring(env, moves, REFERENCE_GAMES)
    _, ring = chunk(params, states, ring, jax.random.key(3))
    assert int(ring.cursor) == 0  # one chunk as long as the ring: rows 0..T-1 in move order
    return jax.tree.map(np.asarray, ring.records)


@needs_pgx
@pytest.mark.parametrize("name", [
    "tictactoe", pytest.param("connect4", marks=pytest.mark.slow),
    pytest.param("othello", marks=pytest.mark.slow)])
def test_reference_games_replay_through_our_rules(name):
    """Every recorded move is legal, and our rules, replaying the moves (a fresh game after
    each ending move), see the same positions, legal moves, endings and rewards as pgx's."""
    game = games.make(name)
    records = reference_records(name)

    @jax.jit
    def replay_move(state, action):
        next_state = jax.vmap(game.step)(state, action)
        fresh = jax.vmap(game.init)(jax.random.split(jax.random.key(0), REFERENCE_GAMES))
        return (jax.vmap(game.observe)(state), state.legal_action_mask, next_state.terminated,
                next_state.rewards, state.current_player,
                where_batched(next_state.terminated, fresh, next_state))

    state = jax.vmap(game.init)(jax.random.split(jax.random.key(0), REFERENCE_GAMES))
    ended = 0
    for t in range(REFERENCE_MOVES[name]):
        action = records.action[t]
        *seen, state = replay_move(state, action)
        observation, legal, terminated, rewards, mover = map(np.asarray, seen)
        assert np.array_equal(observation, records.observation[t].astype(np.float32)), t
        assert np.array_equal(legal, records.legal_action_mask[t]), t
        assert legal[np.arange(REFERENCE_GAMES), action].all(), f"an illegal move at move {t}"
        assert np.array_equal(terminated, records.terminated[t]), t
        assert np.array_equal(rewards[np.arange(REFERENCE_GAMES), mover], records.reward[t]), t
        policy = records.policy_target[t]
        assert np.allclose(policy.sum(-1), 1, atol=1e-5) and np.all(policy[~legal] == 0)
        ended += int(terminated.sum())
    if name == "tictactoe":  # 12 moves: every game ends, and the next one starts, at least once
        assert ended >= REFERENCE_GAMES


def test_dtype_overrides_only_the_presets_compute_dtype():
    preset = presets.preset_config("connect4", "gpu")
    full = presets.preset_config("connect4", "gpu", dtype="float32")
    assert (preset.model.dtype, full.model.dtype) == ("bfloat16", "float32")
    assert full.model.model_copy(update={"dtype": "bfloat16"}) == preset.model
    assert presets.preset_config("connect4", "tiny", dtype="bfloat16").model.mlp_hidden == (32,)
