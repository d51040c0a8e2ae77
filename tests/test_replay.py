"""The device replay buffer: ring order, value targets from final outcomes, sampling rules."""

import jax
import jax.numpy as jnp
import numpy as np

from cartridge_jax import games
from cartridge_jax.training import replay

GAME = games.make("tictactoe")


def chunk(marker_start, terminated, rewards, player):
    """A hand-made `[T, G]` chunk; each position's policy target carries a unique marker."""
    terminated = np.asarray(terminated, bool)
    moves, num_games = terminated.shape
    markers = marker_start + np.arange(moves * num_games, dtype=np.float32).reshape(moves, num_games)
    policy = np.zeros((moves, num_games, GAME.num_actions), np.float32)
    policy[..., 0] = markers
    return replay.Trajectory(
        observation=jnp.zeros((moves, num_games, *GAME.observation_shape), jnp.uint8),
        policy_target=jnp.asarray(policy),
        legal_action_mask=jnp.ones((moves, num_games, GAME.num_actions), bool),
        player=jnp.asarray(player, jnp.int8),
        terminated=jnp.asarray(terminated),
        rewards=jnp.asarray(rewards, jnp.float32),
    )


def test_capacity_rounds_up_to_whole_rows():
    buffer = replay.init(GAME, capacity=10, games=4)
    assert buffer.capacity == 12 and buffer.complete.shape == (3, 4)


def test_value_targets_come_from_the_final_outcome_for_each_mover():
    buffer = replay.init(GAME, capacity=8, games=2)
    no_reward = [0.0, 0.0]
    # Game column 0 ends at move 1, won by player 1; column 1 runs on.
    first = chunk(0, [[False, False], [True, False]],
                  [[no_reward, no_reward], [[-1.0, 1.0], no_reward]], [[0, 0], [1, 1]])
    buffer = replay.add(buffer, first)
    assert np.array_equal(buffer.complete[:2], [[True, False], [True, False]])
    assert np.array_equal(buffer.value_target[:2, 0], [-1.0, 1.0])  # player 0 lost, 1 won
    assert int(replay.size(buffer)) == 2
    # Next chunk: column 1's game ends at its first move, won by player 0.
    second = chunk(100, [[False, True], [False, False]],
                   [[no_reward, [1.0, -1.0]], [no_reward, no_reward]], [[0, 0], [1, 1]])
    buffer = replay.add(buffer, second)
    assert np.array_equal(buffer.complete[:3, 1], [True, True, True])
    assert np.array_equal(buffer.value_target[:3, 1], [1.0, -1.0, 1.0])
    assert not buffer.complete[3, 1] and not buffer.complete[2, 0] and not buffer.complete[3, 0]


def test_ring_overwrites_the_oldest_rows_in_order():
    buffer = replay.init(GAME, capacity=6, games=2)  # 3 rows
    done = np.ones((2, 2), bool)
    rewards = np.zeros((2, 2, 2))
    player = np.zeros((2, 2))
    buffer = replay.add(buffer, chunk(0, done, rewards, player))  # rows 0, 1
    buffer = replay.add(buffer, chunk(10, done, rewards, player))  # rows 2, 0
    markers = np.asarray(buffer.policy_target[..., 0])
    assert np.array_equal(markers, [[12, 13], [2, 3], [10, 11]])
    assert int(buffer.cursor) == 1


def draw(buffer, seed, batch_size, window=0, augment=False):
    """replay.sample with key `seed` from the positions `window` allows."""
    table = replay.sampling_table(buffer, window)
    return replay.sample(GAME, buffer, table, jax.random.key(seed), batch_size, augment=augment)


def test_sampling_draws_only_complete_positions_and_respects_the_window():
    buffer = replay.init(GAME, capacity=8, games=2)  # 4 rows
    rewards = np.zeros((2, 2, 2))
    rewards[0, 0] = [1.0, -1.0]
    buffer = replay.add(buffer, chunk(0, [[True, False], [False, False]], rewards, np.zeros((2, 2))))
    batch = draw(buffer, 0, 256)
    assert set(np.asarray(batch.policy_target[:, 0]).tolist()) == {0.0}  # the one complete slot
    # Every game ends at the next chunk's first move: the waiting positions 1, 2, 3 complete too.
    buffer = replay.add(buffer, chunk(10, np.ones((2, 2), bool), np.zeros((2, 2, 2)), np.zeros((2, 2))))
    everything = draw(buffer, 1, 512)
    assert set(np.asarray(everything.policy_target[:, 0]).tolist()) == {0, 1, 2, 3, 10, 11, 12, 13}
    newest = draw(buffer, 1, 512, window=2)
    assert set(np.asarray(newest.policy_target[:, 0]).tolist()) == {12.0, 13.0}


def test_augmented_samples_are_symmetric_copies():
    buffer = replay.init(GAME, capacity=4, games=1)
    obs = np.zeros((1, 1, 3, 3, 2), np.uint8)
    obs[0, 0, 0, 0, 0] = 1  # a mark in the corner a1
    policy = np.zeros((1, 1, 9), np.float32)
    policy[0, 0, 0] = 1.0  # and the policy on the same corner
    trajectory = replay.Trajectory(jnp.asarray(obs), jnp.asarray(policy), jnp.ones((1, 1, 9), bool),
                                   jnp.zeros((1, 1), jnp.int8), jnp.ones((1, 1), bool),
                                   jnp.asarray([[[1.0, -1.0]]]))
    buffer = replay.add(buffer, trajectory)
    batch = draw(buffer, 0, 200, augment=True)
    corner_cells = {0, 2, 6, 8}
    marks = np.asarray(batch.observation[..., 0]).reshape(200, 9).argmax(1)
    targets = np.asarray(batch.policy_target).argmax(1)
    assert set(marks.tolist()) == corner_cells  # every corner appears
    assert np.array_equal(marks, targets)  # observation and policy moved together
    assert np.all(np.asarray(batch.value_target) == 1.0)
