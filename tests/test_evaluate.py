"""Evaluation measures against hand-computed values: fixed agents, small slices of the refdata."""

import json
import time
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cartridge_jax import config, opponents
from cartridge_jax import games
from cartridge_jax.evaluation import agents, arena, measure, position_sets
from cartridge_jax.model import nets
from cartridge_jax.opponents import perfect as solver
from cartridge_jax.run import checkpoint
from cartridge_jax.training.trainer import Trainer

REFDATA = resources.files("cartridge_jax") / "refdata"
PONS_SETS = ("Test_L1_R1", "Test_L1_R3", "Test_L2_R1", "Test_L3_R1")
KEY = jax.random.key(0)


def zero_net(num_actions):
    """A network with uniform priors and value 0."""

    def apply(params, observations):
        batch = observations.shape[0]
        return jnp.zeros((batch, num_actions)), jnp.zeros(batch)

    return apply


def sign(x):
    return (x > 0) - (x < 0)


# --- Connect 4 --------------------------------------------------------------------------------


def column4_agent(key, states):
    """Always column 4 (action 3) when legal, else the lowest legal column."""
    legal = states.legal_action_mask
    return jnp.where(legal[:, 3], 3, jnp.argmax(legal, axis=-1)).astype(jnp.int32)


def expected_rates(lines, choose):
    """(mistake_rate, optimal_rate) straight from the README's definitions."""
    mistakes = optimal = 0
    for line in lines:
        scores = {int(c): s for c, s in line["move_scores"].items()}
        chosen = scores[choose(scores)]
        mistakes += sign(chosen) < max(sign(s) for s in scores.values())
        optimal += chosen == max(scores.values())
    return mistakes / len(lines), optimal / len(lines)


@pytest.fixture(scope="module")
def pons_slice(tmp_path_factory):
    """(file, lines): 50 lines of each Pons set (200 positions from every stage)."""
    lines = []
    for name in PONS_SETS:
        text = (REFDATA / "connect4" / f"{name}.jsonl").read_text().splitlines()[:50]
        lines += [json.loads(line) for line in text]
    path = tmp_path_factory.mktemp("pons") / "slice.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path, lines


def test_connect4_rates_of_a_fixed_agent_match_the_definition(pons_slice):
    path, lines = pons_slice
    mistake_rate, optimal_rate = expected_rates(lines, lambda s: 4 if 4 in s else min(s))
    assert 0 < mistake_rate < 1 and 0 < optimal_rate < 1, "the slice tells the cases apart"
    # batch_size 16: 200 positions make 12 full chunks and a padded one.
    result = position_sets.connect4_benchmark(column4_agent, path, key=KEY, batch_size=16)
    assert result == {"mistake_rate": mistake_rate, "optimal_rate": optimal_rate, "n": 200}


def test_connect4_raw_zero_network_plays_the_lowest_legal_column(pons_slice):
    path, lines = pons_slice
    agent = agents.search_agent(games.make("connect4"), zero_net(7), {}, 0)
    mistake_rate, optimal_rate = expected_rates(lines, min)
    result = position_sets.connect4_benchmark(agent, path, key=KEY, batch_size=64)
    assert result == {"mistake_rate": mistake_rate, "optimal_rate": optimal_rate, "n": 200}


def test_connect4_hand_made_cases(tmp_path):
    """Column 4 chosen each time: a win is no mistake, a loss where a win exists is, the only
    draw is no mistake, a smaller win is no mistake but not optimal."""
    cases = [
        ({"1": -3, "2": -1, "3": 0, "4": 5, "5": 0, "6": -1, "7": -3}, False, True),
        ({"1": -3, "2": -1, "3": 1, "4": -2, "5": 0, "6": -1, "7": -3}, True, False),
        ({"1": -3, "2": -1, "3": -4, "4": 0, "5": -2, "6": -1, "7": -3}, False, True),
        ({"1": -3, "2": -1, "3": 7, "4": 1, "5": 0, "6": -1, "7": -3}, False, False),
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps({"moves": "", "move_scores": scores}) + "\n"
                            for scores, _, _ in cases))
    result = position_sets.connect4_benchmark(column4_agent, path, key=KEY, batch_size=4)
    assert result["mistake_rate"] == np.mean([m for _, m, _ in cases]) == 0.25
    assert result["optimal_rate"] == np.mean([o for _, _, o in cases]) == 0.5


@pytest.mark.parametrize("content, problem", [
    ("not json\n", "line 1 is not a Connect 4 benchmark line"),
    ('{"moves": "44"}\n', "line 1 is not a Connect 4 benchmark line"),
    ('{"moves": "4x", "move_scores": {"1": 0}}\n', "characters ['x']"),
    ('{"moves": "4444444", "move_scores": {"1": 0}}\n', "line 1: its moves are illegal"),
    ('{"moves": "", "move_scores": {"1": 0}}\n', "line 1: move_scores must list exactly"),
    ("", "holds no positions"),
])
def test_connect4_bad_files(tmp_path, content, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        position_sets.connect4_benchmark(column4_agent, path, key=KEY)


def test_load_benchmark_by_refdata_name_and_limit():
    game = games.make("connect4")
    positions = position_sets.load_benchmark(game, "connect4/Test_L2_R1.jsonl", limit=30)
    assert positions.name == "connect4/Test_L2_R1"
    assert positions.states.current_player.shape == (30,)
    lines = [json.loads(line) for line in
             (REFDATA / "connect4" / "Test_L2_R1.jsonl").read_text().splitlines()[:30]]
    mistake_rate, optimal_rate = expected_rates(lines, lambda s: 4 if 4 in s else min(s))
    assert positions.measure(column4_agent, KEY) == {
        "mistake_rate": mistake_rate, "optimal_rate": optimal_rate, "n": 30}
    othello = position_sets.load_benchmark(games.make("othello"), "othello/fforum-1-19.obf", limit=5)
    assert othello.name == "othello/fforum-1-19" and othello.measure(
        lookup_agent(obf_lines()[:5], lambda listed: listed[0]), KEY)["best_move_rate"] == 1.0
    with pytest.raises(ValueError, match="exhaustive evaluation is for TicTacToe only"):
        position_sets.load_benchmark(game, "exhaustive")


def test_missing_positions_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read positions file"):
        position_sets.connect4_benchmark(column4_agent, tmp_path / "missing.jsonl", key=KEY)


# --- Othello ----------------------------------------------------------------------------------


def obf_lines():
    return [line for name in ("fforum-1-19.obf", "fforum-20-39.obf")
            for line in (REFDATA / "othello" / name).read_text().splitlines() if line.strip()]


def listed_moves(line):
    """[(action, score)] of a .obf line, in file order (best first)."""
    pairs = [p.strip() for p in line.split(";")[1:] if p.strip()]
    game = games.make("othello")
    return [(game.action_from_text(p.split(":")[0]), int(p.split(":")[1])) for p in pairs]


def lookup_agent(lines, pick):
    """An agent that recognises each file position by its discs and plays `pick(listed)`."""
    game = games.make("othello")
    discs = jnp.asarray(np.stack([np.asarray(game.from_text(line).discs) for line in lines]))
    moves = jnp.asarray([pick(listed_moves(line))[0] for line in lines], jnp.int32)

    def agent(key, states):
        same = jnp.all(states.discs[:, None] == discs[None], axis=(2, 3))  # [B, N]
        return moves[jnp.argmax(same, axis=1)]

    return agent


@pytest.fixture(scope="module")
def obf_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("obf") / "fforum-1-39.obf"
    path.write_text("\n".join(obf_lines()) + "\n")
    return path


def test_othello_first_listed_move_is_best_with_no_loss(obf_file):
    lines = obf_lines()
    agent = lookup_agent(lines, lambda listed: listed[0])
    result = position_sets.othello_benchmark(agent, obf_file, key=KEY, batch_size=16)
    assert result == {"best_move_rate": 1.0, "mistake_rate": 0.0, "mean_disc_loss": 0.0,
                      "unknown_move_rate": 0.0, "n": 39}


def test_othello_second_listed_move(obf_file):
    lines = obf_lines()
    assert all(len(listed_moves(line)) >= 2 for line in lines)
    agent = lookup_agent(lines, lambda listed: listed[1])
    scores = [[s for _, s in listed_moves(line)] for line in lines]
    result = position_sets.othello_benchmark(agent, obf_file, key=KEY, batch_size=16)
    assert result["best_move_rate"] == np.mean([s[1] == s[0] for s in scores])
    assert result["mistake_rate"] == np.mean([np.sign(s[1]) < np.sign(s[0]) for s in scores])
    assert 0 < result["mistake_rate"] < result["best_move_rate"] + result["mistake_rate"] <= 1
    assert result["mean_disc_loss"] == pytest.approx(np.mean([s[0] - s[1] for s in scores]))
    assert result["mean_disc_loss"] > 0
    assert result["unknown_move_rate"] == 0.0 and result["n"] == 39


def test_othello_unlisted_moves_are_counted_apart(obf_file):
    def always_pass(key, states):  # never listed (every position has moves)
        return jnp.full(states.current_player.shape, 64, jnp.int32)

    result = position_sets.othello_benchmark(always_pass, obf_file, key=KEY)
    assert result == {"best_move_rate": 0.0, "mistake_rate": 1.0, "mean_disc_loss": None,
                      "unknown_move_rate": 1.0, "n": 39}


def test_othello_bad_lines(tmp_path):
    good = obf_lines()[0]
    for content, problem in [
        ("XO X; A1:+2;\n", "line 1 is not an Othello position"),
        (good.split(";")[0] + ";\n", "line 1 lists no scored moves"),
        (good.split(";")[0] + "; A1:+2;\n", r"line 1 lists illegal moves \['a1'\]"),
        (good + "\n" + good.replace(":", "=") + "\n", "line 2 is not an Othello position"),
    ]:
        path = tmp_path / "bad.obf"
        path.write_text(content)
        with pytest.raises(ValueError, match=problem):
            position_sets.othello_benchmark(column4_agent, path, key=KEY)


# --- TicTacToe --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def perfect():
    return solver.perfect_agent(solver.optimal_move_table())


def test_tictactoe_exhaustive_perfect_and_random(perfect):
    assert position_sets.tictactoe_exhaustive(perfect, key=KEY) == {"optimal_rate": 1.0, "n": 4520}
    random = opponents.builtin_agent(games.make("tictactoe"), "random")
    assert position_sets.tictactoe_exhaustive(random, key=KEY, batch_size=1000)["optimal_rate"] < 0.9


def test_tictactoe_exhaustive_of_the_raw_zero_network_is_its_lowest_legal_cell():
    boards = solver.live_positions()
    expected = np.mean([min(i for i in range(9) if b[i] == 0) in solver.optimal_moves(b)
                        for b in boards])
    agent = agents.search_agent(games.make("tictactoe"), zero_net(9), {}, 0)
    assert position_sets.tictactoe_exhaustive(agent, key=KEY)["optimal_rate"] == expected


def test_search_agent_with_simulations_takes_an_immediate_win():
    game = games.make("tictactoe")
    # X X . / O O . / . . .  X to move: c1 (2) wins; the lowest legal cell (2) would too, so
    # also O's turn after X X . / O O . / X . . : O wins with c2 (5), the lowest legal is 2.
    boards = [(1, 1, 0, 2, 2, 0, 0, 0, 0), (1, 1, 0, 2, 2, 0, 1, 0, 0)]
    agent = agents.search_agent(game, zero_net(9), {}, 32)
    moves = jax.jit(lambda states: agent(KEY, states))(solver.states_of(game, boards))
    assert moves.tolist() == [2, 5]


# --- arena ------------------------------------------------------------------------------------


def test_perfect_against_perfect_draws_every_game_with_both_colours(perfect):
    result = arena.match_summary(games.make("tictactoe"), perfect, "perfect", 32, KEY)
    assert result["draws"] == 32 and result["games"] == 32 and result["score"] == 0.5
    assert result["score_low"] < 0.5 < result["score_high"]


def test_random_against_perfect_loses_a_lot():
    game = games.make("tictactoe")
    random = opponents.builtin_agent(game, "random")
    result = arena.match_summary(game, random, "perfect", 64, KEY)
    assert result["wins"] == 0 and result["losses"] >= 40
    assert result["wins"] + result["draws"] + result["losses"] == result["games"] == 64
    assert result["score_low"] <= result["score"] <= result["score_high"]


def test_arena_errors(perfect):
    tictactoe, connect4 = games.make("tictactoe"), games.make("connect4")
    with pytest.raises(ValueError, match="unknown opponent 'minimax': use random, greedy"):
        arena.match_summary(tictactoe, perfect, "minimax", 8, KEY)
    with pytest.raises(ValueError, match="TicTacToe only, not Connect 4"):
        arena.match_summary(connect4, column4_agent, "perfect", 8, KEY)
    with pytest.raises(ValueError, match="games = 7: use an even number"):
        arena.match_summary(tictactoe, perfect, "random", 7, KEY)


# --- evaluate(): loading a model and choosing the measure --------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """(config, params): a TicTacToe run directory holding a tiny network's checkpoint."""
    directory = tmp_path_factory.mktemp("run")
    cfg, _ = config.load_config(env={}, flags={
        "common.game": "tictactoe", "common.run_dir": str(directory), "model.kind": "mlp",
        "model.mlp_hidden": "[16, 16]", "model.value_hidden": "8", "evaluation.games": "8"})
    trainer = Trainer(cfg)
    state = trainer.initial_state()
    with checkpoint.Checkpoints(directory / "checkpoints", max_to_keep=2) as saved:
        saved.save(3, state, trainer.identity(state.train_state.params))
    return cfg, trainer, state.train_state.params


def test_evaluate_a_run_directory(run_dir):
    cfg, trainer, params = run_dir
    path = cfg.common.run_dir
    result = measure.evaluate(cfg, model_dir_or_run_dir=path, sims=0, exhaustive=True)
    agent = agents.search_agent(trainer.game, trainer.network.apply, params, 0)
    expected = position_sets.tictactoe_exhaustive(agent, key=jax.random.key(cfg.common.seed))
    assert result.pop("search_seconds") > 0
    assert result == {"game": "tictactoe", "model": path, "iteration": 3, "simulations": 0,
                      **expected}
    match = measure.evaluate(cfg, model_dir_or_run_dir=path, sims=0, opponent="perfect")
    assert match["opponent"] == "perfect" and match["games"] == 8 and match["wins"] == 0
    match = measure.evaluate(cfg, model_dir_or_run_dir=path, sims=0, opponent="alphabeta:2")
    assert match["opponent"] == "alphabeta:2" and match["games"] == 8
    assert match["wins"] + match["draws"] + match["losses"] == 8


def test_evaluate_an_exported_model(tmp_path):
    export = pytest.importorskip("cartridge_jax.model.export")
    cfg, _ = config.load_config(env={}, flags={"common.game": "tictactoe", "model.kind": "mlp",
                                               "model.mlp_hidden": "[16, 16]"})
    game = games.make("tictactoe")
    network = nets.make_network(cfg.model, game)
    params = nets.init_params(network, game, jax.random.key(1))
    export.export_model(game, network, params, cfg.model, tmp_path, step=5, iteration=2,
                        opset=cfg.export.onnx_opset, ir_version=cfg.export.onnx_ir_version,
                        agent={"search": "gumbel", "simulations": 3})
    # Without --sims an export plays at its manifest's simulations (the web bot's), not at the
    # configuration's evaluation.simulations.
    assert cfg.evaluation.simulations != 3
    assert measure.evaluate(cfg, model_dir_or_run_dir=tmp_path, exhaustive=True)["simulations"] == 3
    started = time.perf_counter()
    result = measure.evaluate(cfg, model_dir_or_run_dir=tmp_path, sims=0, exhaustive=True)
    wall = time.perf_counter() - started
    agent = agents.search_agent(game, network.apply, params, 0)
    assert result["iteration"] == 2
    assert 0 < result["search_seconds"] < wall  # the play alone, without loading or compiling
    assert result["optimal_rate"] == position_sets.tictactoe_exhaustive(
        agent, key=jax.random.key(cfg.common.seed))["optimal_rate"]
    # A model folder as the opponent: the raw network is deterministic, so against itself
    # each game is played once from each side and the score is exactly one half.
    match = measure.evaluate(cfg, model_dir_or_run_dir=tmp_path, sims=0,
                              opponent=str(tmp_path), games=4)
    assert match["wins"] == match["losses"] and match["score"] == 0.5
    connect4_cfg, _ = config.load_config(env={}, flags={"common.game": "connect4"})
    with pytest.raises(ValueError, match="holds a tictactoe model, not connect4"):
        measure.evaluate(connect4_cfg, model_dir_or_run_dir=tmp_path, exhaustive=True)


def test_evaluate_errors(run_dir, tmp_path):
    cfg, _, _ = run_dir
    path = cfg.common.run_dir
    pons = REFDATA / "connect4" / "Test_L1_R1.jsonl"
    for kwargs, problem in [
        ({}, "choose exactly one measure"),
        ({"exhaustive": True, "opponent": "random"}, "got opponent, exhaustive"),
        ({"positions": pons}, "holds Connect 4 positions, but the model plays TicTacToe"),
        ({"positions": tmp_path / "x.csv"}, "use a Connect 4 .jsonl"),
        ({"opponent": "nobody"}, "unknown opponent 'nobody'"),
    ]:
        with pytest.raises(ValueError, match=problem):
            measure.evaluate(cfg, model_dir_or_run_dir=path, sims=0, **kwargs)
    with pytest.raises(ValueError, match="neither a run directory, an exported model folder"):
        measure.evaluate(cfg, model_dir_or_run_dir=tmp_path / "missing", exhaustive=True)
    with pytest.raises(ValueError, match="no checkpoint"):
        measure.evaluate(cfg, model_dir_or_run_dir=tmp_path, exhaustive=True)
