"""The game contract (games/base.py), checked on every registered game with batched random play."""

import jax
import numpy as np
import pytest
from helpers import BATCH, random_trajectory

from cartridge_jax import games

GAME_NAMES = games.names()


@pytest.mark.parametrize("name", GAME_NAMES)
def test_metadata_is_consistent(name):
    game = games.make(name)
    assert game.name == name
    assert game.observation_shape[:2] == (game.rows, game.cols)
    assert game.board_kind in ("grid", "drop_column")
    assert len(game.player_names) == len(game.player_symbols) == game.num_players == 2
    assert isinstance(game.encoding_version, int) and game.encoding_version >= 1
    assert game.cell_permutations.shape == (game.num_symmetries, game.rows * game.cols)
    assert game.action_permutations.shape == (game.num_symmetries, game.num_actions)
    for table in (game.cell_permutations, game.action_permutations):
        assert np.array_equal(table[0], np.arange(table.shape[1]))  # identity first
        assert all(sorted(row) == list(range(table.shape[1])) for row in table)


@pytest.mark.parametrize("name", GAME_NAMES)
def test_shapes_and_dtypes_under_jit_and_vmap(name):
    game = games.make(name)
    states, actions, observations = random_trajectory(name)
    steps = actions.shape[0]
    assert states.legal_action_mask.shape == (steps + 1, BATCH, game.num_actions)
    assert states.legal_action_mask.dtype == np.bool_
    assert states.terminated.shape == (steps + 1, BATCH) and states.terminated.dtype == np.bool_
    assert states.rewards.shape == (steps + 1, BATCH, 2) and states.rewards.dtype == np.float32
    assert states.current_player.shape == (steps + 1, BATCH)
    assert observations.shape == (steps + 1, BATCH, *game.observation_shape)
    assert observations.dtype == np.float32
    for leaf in jax.tree.leaves(states):
        assert leaf.dtype.itemsize <= 4, "no 64-bit state: jax_enable_x64 stays off"


@pytest.mark.parametrize("name", GAME_NAMES)
def test_every_game_ends_within_the_bound(name):
    states, _, _ = random_trajectory(name)
    assert states.terminated[-1].all()


@pytest.mark.parametrize("name", GAME_NAMES)
def test_rewards_are_zero_sum_and_only_at_the_end(name):
    states, _, _ = random_trajectory(name)
    rewards, terminated = states.rewards, states.terminated
    assert np.all(rewards.sum(axis=-1) == 0)
    assert set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
    just_ended = terminated[1:] & ~terminated[:-1]  # [T, B]
    nonzero = np.any(rewards[1:] != 0, axis=-1)
    assert not np.any(nonzero & ~just_ended), "rewards only on the step that ends the game"
    assert not np.any(rewards[0] != 0)


@pytest.mark.parametrize("name", GAME_NAMES)
def test_legal_mask_never_empty_before_the_end_and_empty_after(name):
    states, _, _ = random_trajectory(name)
    has_move = states.legal_action_mask.any(axis=-1)
    assert np.array_equal(has_move, ~states.terminated)


@pytest.mark.parametrize("name", GAME_NAMES)
def test_step_after_the_end_is_a_no_op(name):
    states, _, _ = random_trajectory(name)
    was_over = states.terminated[:-1]  # [T, B]
    for field, leaf in vars(states).items():
        before, after = leaf[:-1], leaf[1:]
        if field == "rewards":
            assert not np.any(after[was_over] != 0)
        else:
            assert np.array_equal(before[was_over], after[was_over]), field


@pytest.mark.parametrize("name", GAME_NAMES)
def test_observation_planes_are_disjoint_zero_one_and_from_the_movers_view(name):
    states, _, observations = random_trajectory(name)
    assert set(np.unique(observations)) <= {0.0, 1.0}
    assert observations.sum(axis=-1).max() <= 1.0
    # The mover's pieces never shrink by moving, and show as the opponent's on the next view.
    live = ~states.terminated[:-1]
    own_before = observations[:-1, ..., 0].sum(axis=(-2, -1))
    theirs_after = observations[1:, ..., 1].sum(axis=(-2, -1))
    assert np.all(theirs_after[live] >= own_before[live])
    assert np.any(theirs_after[live] > own_before[live])


@pytest.mark.parametrize("name", GAME_NAMES)
def test_illegal_action_forfeits(name):
    game = games.make(name)
    state = game.init(jax.random.key(0))
    step = jax.jit(game.step)
    first = int(np.flatnonzero(np.asarray(state.legal_action_mask))[0])
    after_one = step(state, first)
    illegal = [a for a in range(game.num_actions) if not after_one.legal_action_mask[a]]
    for bad in illegal[:2] + [-1, game.num_actions]:
        lost = step(after_one, bad)
        mover = int(after_one.current_player)
        assert bool(lost.terminated)
        assert lost.rewards[mover] == -1 and lost.rewards[1 - mover] == 1
        assert not np.any(np.asarray(lost.legal_action_mask))
        assert np.array_equal(game.observe(lost), game.observe(after_one)), "board unchanged"


@pytest.mark.parametrize("name", GAME_NAMES)
def test_same_key_same_game_other_key_other_game(name):
    first = random_trajectory(name, seed=1)[1]
    again = random_trajectory.__wrapped__(name, seed=1)[1]
    other = random_trajectory(name, seed=2)[1]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", GAME_NAMES)
def test_text_round_trips(name):
    game = games.make(name)
    for action in range(game.num_actions):
        assert game.action_from_text(game.action_to_text(action)) == action
    with pytest.raises(ValueError):
        game.action_from_text("zz9")
    assert isinstance(game.to_text(game.init(jax.random.key(0))), str)
