"""The exact solvers against Pons' published per-move scores, and the validation sets they label."""

import json
from importlib import resources

import numpy as np
import pytest

from cartridge_jax import games
from cartridge_jax.evaluation import position_sets
from cartridge_jax.games import othello as othello_rules
from cartridge_jax.solvers import connect4, othello, validation

REFDATA = resources.files("cartridge_jax") / "refdata" / "connect4"
VALDATA = resources.files("cartridge_jax") / "valdata" / "connect4"
OTHELLO_REFDATA = resources.files("cartridge_jax") / "refdata" / "othello"
OTHELLO_VALDATA = resources.files("cartridge_jax") / "valdata" / "othello" / "Val_endgame.obf"


def pons_lines(name: str) -> list[dict]:
    return [json.loads(text) for text in (REFDATA / f"Test_{name}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def solver():
    return connect4.Solver()


@pytest.mark.parametrize("name", ["L3_R1", "L2_R1"])
def test_connect4_solver_gives_every_published_move_score_of_the_end_and_middle_sets(solver, name):
    wrong = []
    for line in pons_lines(name):
        expected = {int(column) - 1: score for column, score in line["move_scores"].items()}
        if (got := solver.move_scores(line["moves"])) != expected:
            wrong.append((line["moves"], got, expected))
    assert not wrong, f"{len(wrong)} positions differ, e.g. {wrong[0]}"


def test_connect4_solver_on_begin_positions_within_a_node_budget():
    """Begin positions are the slow ones: those solved within the budget are exact, and the
    rest are refused rather than guessed."""
    small = connect4.Solver(node_budget=3_000_000)
    solved = 0
    for line in pons_lines("L1_R1")[:20]:
        try:
            got = small.move_scores(line["moves"])
        except connect4.BudgetExceeded:
            continue
        assert got == {int(column) - 1: score for column, score in line["move_scores"].items()}
        solved += 1
    assert solved >= 10


def test_connect4_solver_refuses_a_budget_it_cannot_meet():
    with pytest.raises(connect4.BudgetExceeded):
        connect4.Solver(node_budget=1000).score("")


@pytest.mark.parametrize("moves, problem", [
    ("48", "columns are 1-7"), ("1111111", "full column 1"), ("1212121", "makes four")])
def test_connect4_position_refuses_bad_moves(moves, problem):
    with pytest.raises(ValueError, match=problem):
        connect4.position(moves)


def test_a_generated_set_is_decisive_in_its_stage_and_held_out():
    lines = validation.connect4_set("middle", 20, seed=3)
    excluded = {validation.connect4_key(lines[0]["moves"])}
    fresh = validation.connect4_set("middle", 20, seed=3, excluded=excluded)
    assert lines[0] not in fresh and lines[1:] == fresh[:19]  # same seed, same draws
    for line in lines:
        assert 15 <= len(line["moves"]) <= 28
        signs = {np.sign(score) for score in line["move_scores"].values()}
        assert len(signs) > 1 and line["score"] == max(line["move_scores"].values())


@pytest.fixture(scope="module")
def shipped_validation():
    return {stage: [json.loads(text) for text in
                    (VALDATA / f"Val_{stage}.jsonl").read_text().splitlines()]
            for stage in validation.CONNECT4_STAGES}


def test_shipped_validation_sets_are_held_out_distinct_and_decisive(shipped_validation):
    public = validation.connect4_keys([REFDATA / f"Test_{name}.jsonl"
                                       for name in ("L1_R1", "L1_R3", "L2_R1", "L3_R1")])
    seen = set()
    for stage, lines in shipped_validation.items():
        low, high = validation.CONNECT4_STAGES[stage]
        for line in lines:
            key = validation.connect4_key(line["moves"])
            assert key not in public and key not in seen, line
            seen.add(key)
            assert low <= len(line["moves"]) <= high
            assert len({np.sign(score) for score in line["move_scores"].values()}) > 1


def test_shipped_validation_labels_are_the_solvers(solver, shipped_validation):
    """A sample re-solved: the files hold what the (Pons-checked) solver says."""
    rng = np.random.default_rng(0)
    for stage in ("end", "middle"):
        lines = shipped_validation[stage]
        for index in rng.choice(len(lines), 50, replace=False):
            line = lines[index]
            got = solver.move_scores(line["moves"])
            assert {str(c + 1): s for c, s in got.items()} == line["move_scores"], line


def test_validation_sets_load_by_name_and_measure_agents():
    """A perfect agent (reading the labels) makes no mistake; one that plays the worst move
    makes a mistake in every position (each is decisive)."""
    game = games.make("connect4")
    assert len(position_sets.VALIDATION_SETS["connect4"]) == 3
    for name in position_sets.VALIDATION_SETS["connect4"]:
        lines = [json.loads(text) for text in
                 (VALDATA / name.split("/")[1]).read_text().splitlines()][:64]
        positions = position_sets.load_benchmark(game, name, limit=64)
        best = np.array([int(max(line["move_scores"], key=line["move_scores"].get)) - 1
                         for line in lines])
        worst = np.array([int(min(line["move_scores"], key=line["move_scores"].get)) - 1
                          for line in lines])
        assert positions.score(best)["mistake_rate"] == 0.0
        assert positions.score(worst)["mistake_rate"] == 1.0


def obf_scores(line: str) -> tuple[str, dict[int, int]]:
    position, *pairs = [field.strip() for field in line.split(";")]
    return position, {othello_rules.action_from_text(move): int(score)
                      for move, score in (pair.split(":") for pair in pairs if pair)}


def test_othello_solver_gives_every_listed_score_of_fforum_1_to_19_and_20_to_23():
    """FForum's exact scores (Edax): 14-16 empty squares, then 6-18 (positions 20-23)."""
    lines = (OTHELLO_REFDATA / "fforum-1-19.obf").read_text().splitlines()
    lines += (OTHELLO_REFDATA / "fforum-20-39.obf").read_text().splitlines()[:4]
    for line in lines:
        position, listed = obf_scores(line)
        assert othello.move_scores(position) == listed, position


def test_othello_solver_matches_the_rules_and_refuses_bad_text():
    """Its moves are the rules' legal moves; bad text and a spent budget are refused."""
    rng = np.random.default_rng(1)
    for _ in range(5):
        text = validation.othello_set(1, seed=int(rng.integers(1000)))[0].split(";")[0]
        state = othello_rules.from_text(text)
        legal = set(np.flatnonzero(np.asarray(state.legal_action_mask)[:64]))
        assert set(othello.move_scores(text)) == legal
    with pytest.raises(ValueError, match="not an Othello position"):
        othello.move_scores("XO X")
    with pytest.raises(othello.BudgetExceeded):
        othello.move_scores(obf_scores((OTHELLO_REFDATA / "fforum-1-19.obf").read_text()
                                       .splitlines()[0])[0], node_budget=100)


def test_shipped_othello_validation_set_is_held_out_decisive_and_solved():
    lines = OTHELLO_VALDATA.read_text().splitlines()
    public = validation.othello_texts([OTHELLO_REFDATA / "fforum-1-19.obf",
                                       OTHELLO_REFDATA / "fforum-20-39.obf"])
    positions = [obf_scores(line)[0] for line in lines]
    assert len(set(positions)) == len(positions) == 1000 and not set(positions) & public
    for position, listed in map(obf_scores, lines[:40]):
        low, high = validation.OTHELLO_EMPTIES
        assert low <= position.count("-") <= high
        assert len({np.sign(score) for score in listed.values()}) > 1
        assert othello.move_scores(position) == listed


def test_othello_validation_set_loads_by_name_and_measures_agents():
    game = games.make("othello")
    (name,) = position_sets.VALIDATION_SETS["othello"]
    positions = position_sets.load_benchmark(game, name, limit=64)
    listed = [obf_scores(line)[1] for line in OTHELLO_VALDATA.read_text().splitlines()[:64]]
    best = np.array([max(scores, key=scores.get) for scores in listed])
    worst = np.array([min(scores, key=scores.get) for scores in listed])
    assert positions.score(best)["best_move_rate"] == 1.0
    assert positions.score(best)["mistake_rate"] == 0.0
    assert positions.score(worst)["mistake_rate"] == 1.0
