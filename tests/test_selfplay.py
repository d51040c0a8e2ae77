"""Self-play: the trajectory a batch of games records, auto-reset, and random openings."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SELFPLAY_GAMES as NUM_GAMES
from helpers import SELFPLAY_MOVES as MOVES
from helpers import SELFPLAY_OPENING_MOVES as OPENING_MOVES
from helpers import tictactoe_selfplay

from cartridge_jax import games
from cartridge_jax.training import selfplay

GAME = games.make("tictactoe")


def compiled_play():
    """selfplay.play for the shared configuration, jitted once; and fresh random params."""
    _, play, params = tictactoe_selfplay()
    return play, params


@functools.lru_cache(maxsize=None)
def played(seed: int = 0):
    """(games after, trajectory) as numpy, from fresh games and key `seed`."""
    play, params = compiled_play()
    start_key, play_key = jax.random.split(jax.random.key(seed))
    start = selfplay.new_games(GAME, start_key, NUM_GAMES, OPENING_MOVES)
    after, trajectory = play(params, start, play_key, moves=MOVES)
    return jax.tree.map(np.asarray, start), jax.tree.map(np.asarray, after), jax.tree.map(
        np.asarray, trajectory
    )


def board_pieces(board):
    return (board != 0).sum(-1)


def observed_pieces(observation):
    """[..., 3, 3, 2] side-to-move planes -> (own, opponent) piece counts [...]."""
    return observation[..., 0].sum((-1, -2)), observation[..., 1].sum((-1, -2))


def test_trajectory_shapes_and_dtypes():
    _, after, trajectory = played()
    assert trajectory.observation.shape == (MOVES, NUM_GAMES, 3, 3, 2)
    assert trajectory.observation.dtype == np.uint8
    assert trajectory.policy_target.shape == (MOVES, NUM_GAMES, 9)
    assert trajectory.policy_target.dtype == np.float32
    assert trajectory.legal_action_mask.shape == (MOVES, NUM_GAMES, 9)
    assert trajectory.legal_action_mask.dtype == np.bool_
    assert trajectory.player.shape == (MOVES, NUM_GAMES) and trajectory.player.dtype == np.int8
    assert trajectory.terminated.shape == (MOVES, NUM_GAMES)
    assert trajectory.rewards.shape == (MOVES, NUM_GAMES, 2)
    assert after.move_number.shape == (NUM_GAMES,) and after.state.board.shape == (NUM_GAMES, 9)


def test_recorded_positions_are_live_with_targets_over_legal_moves_only():
    _, _, trajectory = played()
    legal = trajectory.legal_action_mask
    assert np.all(legal.any(-1)), "a finished position was recorded"
    policy = trajectory.policy_target
    assert np.all(np.isfinite(policy)) and np.all(policy >= 0)
    assert np.allclose(policy.sum(-1), 1, atol=1e-5)
    assert np.all(policy[~legal] == 0)
    # The observation matches the mask and the recorded mover: X moves on even piece counts.
    own, opponent = observed_pieces(trajectory.observation)
    occupied = trajectory.observation.sum(-1).reshape(MOVES, NUM_GAMES, 9) > 0
    assert np.array_equal(legal, ~occupied)
    assert np.array_equal(trajectory.player, (own + opponent) % 2)
    assert np.all(opponent - own == trajectory.player)


def test_rewards_only_when_a_game_ends():
    _, _, trajectory = played()
    ended = trajectory.terminated
    rewards = trajectory.rewards
    assert np.all(rewards[~ended] == 0)
    assert np.all(rewards[ended].sum(-1) == 0)  # zero-sum
    assert set(np.unique(rewards[ended][:, 0])) <= {-1.0, 0.0, 1.0}
    # The winner is the player who just moved (nobody wins by the opponent's move).
    winners = ended & (np.abs(rewards).sum(-1) > 0)
    mover_reward = np.take_along_axis(rewards, trajectory.player[..., None].astype(int), -1)[..., 0]
    assert np.all(mover_reward[winners] == 1)


def test_finished_games_restart_in_place():
    _, after, trajectory = played()
    own, opponent = observed_pieces(trajectory.observation)
    pieces = own + opponent  # [T, G]
    ended = trajectory.terminated
    assert np.all(ended.any(0)), "every game should end within MOVES moves"
    # After an ending move the game's next position is a fresh one (at most the opening moves);
    # otherwise the game goes on with one more piece.
    assert np.all(pieces[1:][ended[:-1]] <= OPENING_MOVES)
    assert np.all(pieces[1:][~ended[:-1]] == pieces[:-1][~ended[:-1]] + 1)
    # The batch carried on is live, and each game's move counter counts its pieces.
    assert not np.any(after.state.terminated)
    assert np.array_equal(after.move_number, board_pieces(after.state.board))


def test_same_key_same_trajectory_and_another_key_another():
    play, params = compiled_play()
    start = selfplay.new_games(GAME, jax.random.key(5), NUM_GAMES, OPENING_MOVES)
    first = play(params, start, jax.random.key(7), moves=MOVES)
    again = play(params, start, jax.random.key(7), moves=MOVES)
    other = play(params, start, jax.random.key(8), moves=MOVES)
    same = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), first, again)
    assert all(jax.tree.leaves(same))
    assert not np.array_equal(first[1].observation, other[1].observation)


@pytest.mark.parametrize(
    "game_name, opening_moves", [("tictactoe", 0), ("tictactoe", 3), ("connect4", 4)]
)
def test_new_games_start_after_up_to_k_random_moves(game_name, opening_moves):
    game = games.make(game_name)
    batch = 128
    fresh = jax.jit(
        functools.partial(selfplay.new_games, game, games=batch, opening_moves=opening_moves)
    )
    started = jax.tree.map(np.asarray, fresh(jax.random.key(3)))
    pieces = board_pieces(started.state.board)
    assert np.array_equal(started.move_number, pieces)
    assert not np.any(started.state.terminated)
    assert np.array_equal(started.state.current_player, pieces % 2)
    # The number of random moves is uniform over 0..k: every count shows up in the batch.
    assert set(pieces.tolist()) == set(range(opening_moves + 1))
    # Random moves: the openings differ between games and between keys.
    if opening_moves > 0:
        assert len(np.unique(started.state.board, axis=0)) > opening_moves + 1
        other = jax.tree.map(np.asarray, fresh(jax.random.key(4)))
        assert not np.array_equal(other.state.board, started.state.board)


def test_new_games_that_random_moves_would_end_start_empty():
    # Nine random TicTacToe moves fill the board: every such game ends, so it starts empty.
    started = selfplay.new_games(GAME, jax.random.key(0), 64, opening_moves=9)
    pieces = board_pieces(np.asarray(started.state.board))
    assert not np.any(started.state.terminated)
    assert np.array_equal(np.asarray(started.move_number), pieces)
    assert np.any(pieces == 0) and np.all(pieces <= 8)
