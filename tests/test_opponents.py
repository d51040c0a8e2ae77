"""Named opponents: the name grammar, and the classic engines (alpha-beta, rollout MCTS) against
independent truths: immediate wins and blocks, brute-force minimax values, wins over random."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_trajectory

from cartridge_jax import games, opponents
from cartridge_jax.config import opponent_names
from cartridge_jax.evaluation import agents, arena
from cartridge_jax.opponents import minimax, rollout

KEY = jax.random.key(0)


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("random", opponent_names.Opponent("random")),
    ("perfect", opponent_names.Opponent("perfect")),
    ("mcts-rollout:1000", opponent_names.Opponent("mcts-rollout", strength=1000)),
    ("alphabeta:3", opponent_names.Opponent("alphabeta", strength=3)),
    ("site/models/connect4", opponent_names.Opponent("model", path="site/models/connect4")),
    ("./run", opponent_names.Opponent("model", path="./run")),
])
def test_parse(name, expected):
    assert opponent_names.parse(name) == expected


@pytest.mark.parametrize("name, problem", [
    ("minimax", "unknown opponent 'minimax': use random, greedy, perfect"),
    ("alphabeta", "unknown opponent 'alphabeta'"),
    ("alphabeta:0", "alphabeta:<depth> with a whole number of 1 or more, e.g. alphabeta:3"),
    ("mcts-rollout:lots", "mcts-rollout:<simulations> with a whole number"),
])
def test_parse_errors_are_one_line(name, problem):
    with pytest.raises(ValueError, match=problem) as error:
        opponent_names.parse(name)
    assert "\n" not in str(error.value)


def test_builtin_agent_errors():
    with pytest.raises(ValueError, match="TicTacToe only, not Connect 4"):
        opponents.builtin_agent(games.make("connect4"), "perfect")
    with pytest.raises(ValueError, match=r"alphabeta:9 for Connect 4: use a depth from 1 to 7"):
        opponents.builtin_agent(games.make("connect4"), "alphabeta:9")
    with pytest.raises(ValueError, match="is a model path"):
        opponents.builtin_agent(games.make("connect4"), "runs/c4")


def test_one_agent_object_per_game_and_name():  # arenas compile once per agent object
    game = games.make("connect4")
    first = opponents.builtin_agent(game, "alphabeta:2")
    assert opponents.builtin_agent(game, "alphabeta:2") is first


# --- immediate wins and blocks -----------------------------------------------------------------


def states_of(game, move_strings):
    states = [game.from_text(moves) for moves in move_strings]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


# Connect 4: (moves so far, the only good move as an action). Red completes the bottom row;
# Red completes column 2 rather than blocking Yellow's column 5.
WINS = [("112233", 3), ("252525", 1)]
# Yellow must block Red's bottom row at column 4; Yellow must block Red's column 1.
BLOCKS = [("11223", 3), ("17171", 0)]


def assert_plays(name, cases):
    """Opponent `name` plays the given best move in each (Connect 4 moves, best) case, for
    three keys."""
    game = games.make("connect4")
    agent = opponents.builtin_agent(game, name)
    for seed in range(3):
        moves = agents.act(agent, jax.random.key(seed), states_of(game, [m for m, _ in cases]))
        assert moves.tolist() == [best for _, best in cases]


@pytest.mark.parametrize("name", ["alphabeta:1", "alphabeta:2", "mcts-rollout:200"])
def test_takes_immediate_wins(name):
    assert_plays(name, WINS)


@pytest.mark.parametrize("name", ["alphabeta:2", "mcts-rollout:200"])
def test_blocks_immediate_losses(name):
    assert_plays(name, BLOCKS)


# --- minimax values against a brute force ------------------------------------------------------


def lines_of_four():
    """Every line of four cells of the 6 x 7 board, by walking the four directions."""
    lines = []
    for row in range(6):
        for col in range(7):
            for d_row, d_col in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(row + k * d_row, col + k * d_col) for k in range(4)]
                if all(0 <= r < 6 and 0 <= c < 7 for r, c in cells):
                    lines.append([r * 7 + c for r, c in cells])
    return lines


CONNECT4_LINES = lines_of_four()
assert len(CONNECT4_LINES) == 69


def connect4_heuristic(board, player):
    """The documented Connect 4 evaluation, line by line in plain Python."""
    own, theirs = player + 1, 2 - player
    score = 0.0
    for line in CONNECT4_LINES:
        pieces = [board[cell] for cell in line]
        mine, other = pieces.count(own), pieces.count(theirs)
        weight = {2: 2.0, 3: 5.0}
        if other == 0:
            score += weight.get(mine, 0.0)
        if mine == 0:
            score -= weight.get(other, 0.0)
    centre = [board[r * 7 + 3] for r in range(6)]
    return score + 3.0 * (centre.count(own) - centre.count(theirs))


OTHELLO_DIRECTIONS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def othello_move_count(cells, side):
    """Legal moves of `side` (1 Black, 2 White) on cells int[8, 8], from the rules' definition."""
    other, count = 3 - side, 0
    for r in range(8):
        for c in range(8):
            if cells[r, c]:
                continue
            for dr, dc in OTHELLO_DIRECTIONS:
                k, rr, cc = 0, r + dr, c + dc
                while 0 <= rr < 8 and 0 <= cc < 8 and cells[rr, cc] == other:
                    k, rr, cc = k + 1, rr + dr, cc + dc
                if k and 0 <= rr < 8 and 0 <= cc < 8 and cells[rr, cc] == side:
                    count += 1
                    break
    return count


def othello_heuristic(state, player):
    """Positional table over own minus opposing discs + 5 x (own - their legal moves)."""
    from cartridge_jax.games import othello

    cells = othello._cells(state)  # int[8, 8]: 0 empty, 1 Black, 2 White
    own, theirs = player + 1, 2 - player
    position = np.sum(minimax.OTHELLO_WEIGHTS * ((cells == own).astype(float) - (cells == theirs)))
    return position + 5.0 * (othello_move_count(cells, own) - othello_move_count(cells, theirs))


def brute_force_values(game, state, depth, heuristic):
    """[A] negamax values of every legal move by plain recursion over the package's rules."""
    step = jax.jit(game.step)

    def value(state, depth):  # side to move's view
        player = int(state.current_player)
        if bool(state.terminated):
            return float(state.rewards[player]) * (minimax.WIN + depth)
        if depth == 0:
            return heuristic(state, player)
        legal = np.flatnonzero(np.asarray(state.legal_action_mask))
        return max(-value(step(state, a), depth - 1) for a in legal)

    values = np.full(game.num_actions, -np.inf)
    for action in np.flatnonzero(np.asarray(state.legal_action_mask)):
        values[action] = -value(step(state, action), depth - 1)
    return values


@pytest.mark.parametrize("game_name, depth", [("connect4", 3), ("othello", 2)])
def test_minimax_values_equal_a_brute_force(game_name, depth):
    game = games.make(game_name)
    if game_name == "connect4":  # the start, middle games, and wins in one and two plies
        states = [game.from_text(moves) for moves in ["", "4453", "44444326", "112233", "334455"]]
        heuristic = lambda state, player: connect4_heuristic(np.asarray(state.board).tolist(),
                                                              player)
    else:  # the start and three positions of a random game
        trajectory, _, _ = random_trajectory("othello")
        states = [jax.tree.map(lambda x: x[ply, 0], trajectory) for ply in (0, 7, 20, 41)]
        heuristic = othello_heuristic
    values_of = jax.jit(jax.vmap(functools.partial(minimax.move_values, game, depth)))
    got = np.asarray(values_of(jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)))
    for state, values in zip(states, got):
        assert not bool(state.terminated)
        np.testing.assert_allclose(values, brute_force_values(game, state, depth, heuristic),
                                   rtol=1e-6)


# --- beating random ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alphabeta:2", "mcts-rollout:100"])
def test_beats_random_convincingly(name):
    game = games.make("connect4")
    result = arena.match_summary(game, opponents.builtin_agent(game, name), "random", 40, KEY)
    assert result["wins"] >= 36, result


def test_playout_outcomes():
    game = games.make("connect4")
    states = states_of(game, ["1122334", ""])  # Red has just won; the start
    batch = jax.tree.map(lambda x: jnp.repeat(x, 500, axis=0), states)
    outcomes = np.asarray(jax.jit(functools.partial(rollout.playout_outcome, game))(KEY, batch))
    assert set(np.unique(outcomes)) <= {-1.0, 0.0, 1.0}
    assert np.all(outcomes[:500] == 1.0)  # a finished game keeps its outcome
    # Random play from the start: the first player wins clearly more often than not.
    assert 0.0 < outcomes[500:].mean() < 0.4
