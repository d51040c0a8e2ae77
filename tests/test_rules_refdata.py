"""The rules against external ground truth (cartridge_jax/refdata: published counts, Pons' sets)."""

import json
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cartridge_jax import games
from cartridge_jax.evaluation import position_sets
from cartridge_jax.games import perft

REFDATA = resources.files("cartridge_jax") / "refdata"
COUNTS = json.loads((REFDATA / "counts.json").read_text())


@pytest.fixture(scope="module")
def tictactoe_levels():
    return list(perft.levels(games.make("tictactoe"), 9))


def test_tictactoe_paths_by_ply(tictactoe_levels):
    expected = COUNTS["tictactoe"]["perft_paths_by_ply_chess_style"]
    assert [level.paths for level in tictactoe_levels] == expected


def test_tictactoe_255168_games_with_the_published_split(tictactoe_levels):
    counts = COUNTS["tictactoe"]
    ended = [level.ended for level in tictactoe_levels]
    assert sum(e["player0"] for e in ended) == counts["games_x_wins"] == 131184
    assert sum(e["player1"] for e in ended) == counts["games_o_wins"]
    assert sum(e["draw"] for e in ended) == counts["games_draws"]
    assert sum(sum(e.values()) for e in ended) == counts["games_total"] == 255168
    by_length = {str(level.ply): sum(level.ended.values()) for level in tictactoe_levels
                 if sum(level.ended.values())}
    assert by_length == counts["games_by_length"]


def test_tictactoe_5478_reachable_positions(tictactoe_levels):
    counts = COUNTS["tictactoe"]
    assert [level.distinct for level in tictactoe_levels] == counts["distinct_positions_by_ply"]
    assert sum(level.distinct for level in tictactoe_levels) == 5478


def test_connect4_distinct_positions_a212693_and_game_ends():
    counts = COUNTS["connect4_7x6"]
    found = list(perft.levels(games.make("connect4"), 9))
    assert [level.distinct for level in found] == counts[
        "A212693_distinct_legal_positions_after_n_plies"][:10]
    assert [level.paths for level in found] == counts[
        "perft_paths_reaching_ply_d_chess_style_computed"][:10]
    ended = counts["games_ending_exactly_at_ply_d_computed"]
    for level in found[7:]:
        assert sum(level.ended.values()) == ended[str(level.ply)]
        assert level.ended["player1" if level.ply % 2 == 1 else "player0"] == 0, "only the mover wins"


@pytest.mark.parametrize("depth", range(9))
def test_connect4_perft(depth):
    expected = COUNTS["connect4_7x6"]["perft_paths_reaching_ply_d_chess_style_computed"]
    assert perft.perft(games.make("connect4"), depth) == expected[depth]


@pytest.mark.parametrize("depth", range(10))
def test_othello_perft_aart_bik(depth):
    # A pass is one ply. No game ends before ply 9, so chess-style perft equals Bik's mode 1 here.
    expected = COUNTS["othello_8x8"]["perft_mode1_pass_counts_as_ply_ended_games_count_as_leaves"]
    assert perft.perft(games.make("othello"), depth) == expected[depth]


def _pons_sets():
    return sorted(path.name for path in (REFDATA / "connect4").iterdir() if path.name.endswith(".jsonl"))


@pytest.mark.parametrize("set_name", _pons_sets())
def test_connect4_pons_positions_replay_and_immediate_results(set_name):
    """Each move sequence is legal with no earlier win, and exact scores of the next move agree
    with our win detection: a move wins at once, or lets the opponent win at once, exactly when
    its score says so.

    Score convention: 22 - (stones the winner has played when it wins), negative for a loss. With
    n stones on the board the mover has played n // 2 and the opponent n - n // 2, so an
    immediate win scores 22 - n // 2 - 1 and an immediate loss -(22 - (n - n // 2) - 1).
    """
    game = games.make("connect4")
    lines = [json.loads(line) for line in (REFDATA / "connect4" / set_name).read_text().splitlines()]
    moves = position_sets.digit_moves_array(game, [line["moves"] for line in lines])  # [N, 42]
    final, ok = position_sets.replay_moves(game, jnp.asarray(moves))
    actions = jnp.arange(game.num_actions)
    step_each_action = jax.vmap(game.step, in_axes=(None, 0))

    @jax.jit
    def one_and_two_plies(final):
        after = jax.vmap(step_each_action, in_axes=(0, None))(final, actions)  # [N, 7] states
        replies = jax.vmap(jax.vmap(step_each_action, in_axes=(0, None)), in_axes=(0, None))(
            after, actions)  # [N, 7, 7] states
        return after, replies

    ok, final, (after, replies) = jax.tree.map(np.asarray, (ok, final, one_and_two_plies(final)))
    assert ok.all(), "every benchmark sequence is legal and reaches no earlier win"
    assert not final.terminated.any()
    immediate_losses = 0
    for row, line in enumerate(lines):
        stones = len(line["moves"])
        mover = stones % 2
        legal = {c + 1 for c in np.flatnonzero(final.legal_action_mask[row])}
        assert set(map(int, line["move_scores"])) == legal
        for column, score in line["move_scores"].items():
            a = int(column) - 1
            wins = after.terminated[row, a] and after.rewards[row, a, mover] == 1
            assert wins == (score == 22 - stones // 2 - 1), (line["moves"], column, score)
            loses = not wins and bool(np.any(
                after.legal_action_mask[row, a] & (replies.rewards[row, a, :, 1 - mover] == 1)))
            board_left = stones + 1 < 42  # else the move fills the board: a draw, scored 0 too
            expected_loss = board_left and score == -(22 - (stones - stones // 2) - 1)
            assert loses == expected_loss, (line["moves"], column, score)
            immediate_losses += loses
    assert immediate_losses > 0, "the set exercises the immediate-loss check"
