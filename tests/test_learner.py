"""The learner: the loss falls, illegal moves take no part in it, the learning-rate schedule,
and `train` on a replay buffer filled by self-play."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    SELFPLAY_GAMES,
    SELFPLAY_MOVES,
    SELFPLAY_OPENING_MOVES,
    random_trajectory,
    tictactoe_selfplay,
)

from cartridge_jax import games
from cartridge_jax.config import Config
from cartridge_jax.model import nets
from cartridge_jax.training import learner, replay, selfplay

GAME = games.make("tictactoe")
CONFIG = Config()


def with_training(config: Config = CONFIG, **updates) -> Config:
    return config.model_copy(update=dict(training=config.training.model_copy(update=updates)))


def random_batch(size: int, seed: int = 0) -> replay.Batch:
    """Distinct live positions from random TicTacToe games, a random policy target over each
    one's legal moves and a random value target in {-1, 0, 1}."""
    states, _, observations = random_trajectory("tictactoe")
    live = ~states.terminated.reshape(-1)
    observation = observations.reshape(-1, *GAME.observation_shape)[live]
    legal = states.legal_action_mask.reshape(-1, GAME.num_actions)[live]
    _, first = np.unique(observation.reshape(len(observation), -1), axis=0, return_index=True)
    assert len(first) >= size
    observation, legal = observation[np.sort(first)[:size]], legal[np.sort(first)[:size]]
    rng = np.random.default_rng(seed)
    weights = np.where(legal, rng.gamma(0.5, size=legal.shape), 0.0)
    policy = weights / weights.sum(-1, keepdims=True)
    value = rng.integers(-1, 2, size).astype(np.float32)
    return replay.Batch(
        observation=jnp.asarray(observation, jnp.float32),
        policy_target=jnp.asarray(policy, jnp.float32),
        legal_action_mask=jnp.asarray(legal),
        value_target=jnp.asarray(value),
    )


def target_entropy(batch: replay.Batch) -> float:
    """The policy loss's floor: a net matching every target exactly still pays their entropy."""
    p = np.asarray(batch.policy_target)
    return float(-np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), -1).mean())


def test_loss_falls_on_a_fixed_batch():
    steps = 100
    config = with_training(learning_rate=3e-3, warmup_steps=10, iterations=1,
                           steps_per_iteration=steps)
    network = nets.make_network(config.model, GAME)
    params = nets.init_params(network, GAME, jax.random.key(0))
    optimizer = learner.make_optimizer(config)
    batch = random_batch(64)
    loss = functools.partial(learner.loss_fn, network.apply, config.training.value_loss_weight)

    @jax.jit
    def fit(params):
        def step(train_state, _):
            grads, losses = jax.grad(loss, has_aux=True)(train_state.params, batch)
            return learner.apply_gradients(optimizer, config, train_state, grads), losses

        _, losses = jax.lax.scan(step, learner.init_train_state(optimizer, params), length=steps)
        return losses

    losses = jax.tree.map(np.asarray, fit(params))
    assert np.all(np.isfinite(losses.total))
    floor = target_entropy(batch)
    first = losses.policy[0] - floor + losses.value[0]
    last = losses.policy[-1] - floor + losses.value[-1]
    assert last < 0.3 * first, (first, last)
    assert losses.value[-1] < 0.3 * losses.value[0]
    assert losses.policy[-1] - floor < 0.3 * (losses.policy[0] - floor)


def fixed_output(logits, value):
    """An apply_fn that ignores its input and returns these outputs (params are unused)."""
    logits, value = jnp.asarray(logits, jnp.float32), jnp.asarray(value, jnp.float32)
    return lambda params, obs: (logits, value)


def tiny_batch(policy, legal, value):
    policy = jnp.asarray(policy, jnp.float32)
    return replay.Batch(
        observation=jnp.zeros((policy.shape[0], *GAME.observation_shape), jnp.float32),
        policy_target=policy,
        legal_action_mask=jnp.asarray(legal, bool),
        value_target=jnp.asarray(value, jnp.float32),
    )


def test_loss_equals_a_hand_computed_cross_entropy_over_legal_moves():
    logits = np.array([[1.0, 2.0, 0.5, 9.0, -3.0, 0.0, 0.0, 0.0, 0.0],
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 1.0]], np.float32)
    legal = np.zeros((2, 9), bool)
    legal[0, :3] = True  # cells 0-2 legal; the big logit on cell 3 must not count
    legal[1, [0, 8]] = True
    policy = np.zeros((2, 9), np.float32)
    policy[0, :3] = [0.5, 0.25, 0.25]
    policy[1, [0, 8]] = [0.0, 1.0]
    value, value_target = np.array([0.5, -0.2]), np.array([1.0, 0.0])

    def cross_entropy(row):
        legal_logits = logits[row][legal[row]]
        log_z = np.log(np.sum(np.exp(legal_logits)))
        return -np.sum(policy[row][legal[row]] * (legal_logits - log_z))

    expected_policy = (cross_entropy(0) + cross_entropy(1)) / 2
    expected_value = ((0.5 - 1.0) ** 2 + (-0.2) ** 2) / 2
    assert np.isclose(cross_entropy(1), np.log(1 + np.e) - 1)  # log(e^0 + e^1) - 1

    batch = tiny_batch(policy, legal, value_target)
    total, losses = learner.loss_fn(fixed_output(logits, value), 0.5, None, batch)
    assert np.isclose(losses.policy, expected_policy, rtol=1e-6)
    assert np.isclose(losses.value, expected_value, rtol=1e-6)
    assert np.isclose(total, expected_policy + 0.5 * expected_value, rtol=1e-6)
    assert np.isclose(losses.total, total)


@functools.lru_cache(maxsize=None)
def policy_losses_with_illegal_offset():
    """Jitted (plain policy loss, policy loss with `offset` x noise added to illegal logits)."""
    network = nets.make_network(CONFIG.model, GAME)
    params = nets.init_params(network, GAME, jax.random.key(0))
    batch = random_batch(32)

    @jax.jit
    def losses(offset):
        def distorted(params, obs):
            logits, value = network.apply(params, obs)
            noise = offset * jax.random.uniform(jax.random.key(1), logits.shape)
            return jnp.where(batch.legal_action_mask, logits, logits + noise), value

        _, plain = learner.loss_fn(network.apply, 1.0, params, batch)
        _, changed = learner.loss_fn(distorted, 1.0, params, batch)
        return plain.policy, changed.policy

    return losses


@pytest.mark.parametrize("offset", [1e6, -1e6, 1e30, np.nan])
def test_policy_loss_ignores_illegal_logits(offset):
    plain, changed = policy_losses_with_illegal_offset()(jnp.float32(offset))
    assert np.isfinite(changed)
    assert np.isclose(plain, changed, rtol=1e-6)


def test_gradient_is_finite_and_zero_on_illegal_logits():
    batch = random_batch(16)
    logits = jax.random.normal(jax.random.key(0), (16, 9))
    value = jnp.zeros(16)
    apply_fn = lambda logits, obs: (logits, value)  # noqa: E731: the params are the logits
    grads, _ = jax.grad(learner.loss_fn, argnums=2, has_aux=True)(apply_fn, 1.0, logits, batch)
    grads = np.asarray(grads)
    assert np.all(np.isfinite(grads))
    assert np.all(grads[~np.asarray(batch.legal_action_mask)] == 0)
    # Soft cross-entropy's gradient: softmax over legal moves minus the target, per example / N.
    masked = jnp.where(batch.legal_action_mask, logits, -jnp.inf)
    expected = (jax.nn.softmax(masked) - batch.policy_target) / 16
    assert np.allclose(grads, np.nan_to_num(np.asarray(expected)), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The learning-rate schedule.


def schedule_config(**updates):
    values = dict(learning_rate=1e-2, warmup_steps=10, iterations=4, steps_per_iteration=25,
                  final_lr_fraction=0.1) | updates
    return with_training(**values)


def test_learning_rate_warms_up_then_decays_by_cosine_to_the_final_fraction():
    lr, warmup, total = 1e-2, 10, 100
    schedule = learner.learning_rate_schedule(schedule_config())
    at = lambda step: float(schedule(step))  # noqa: E731
    assert np.isclose(at(0), 0.1 * lr)
    assert np.isclose(at(warmup // 2), 0.55 * lr)  # linear from 0.1 x lr to lr
    assert np.isclose(at(warmup), lr)
    # Cosine from lr at the end of warmup to 0.1 x lr at iterations x steps_per_iteration.
    for step in (20, 55, 80):
        progress = (step - warmup) / (total - warmup)
        expected = 0.1 * lr + (lr - 0.1 * lr) * 0.5 * (1 + np.cos(np.pi * progress))
        assert np.isclose(at(step), expected, rtol=1e-5), step
    assert np.isclose(at(55), 0.55 * lr)  # halfway down
    assert np.isclose(at(total), 0.1 * lr)
    assert np.isclose(at(total + 50), 0.1 * lr)  # and stays there
    decaying = [at(step) for step in range(warmup, total + 1)]
    assert all(a >= b for a, b in zip(decaying, decaying[1:]))


def test_learning_rate_schedule_edge_cases():
    lr = 1e-2
    # No warmup: the run starts at the peak.
    no_warmup = learner.learning_rate_schedule(schedule_config(warmup_steps=0))
    assert np.isclose(float(no_warmup(0)), lr)
    assert np.isclose(float(no_warmup(100)), 0.1 * lr)
    # Warmup longer than the run: the warmup is cut to the run's length.
    long_warmup = learner.learning_rate_schedule(schedule_config(warmup_steps=1000))
    assert np.isclose(float(long_warmup(0)), 0.1 * lr)
    assert np.isclose(float(long_warmup(100)), lr)
    # final_lr_fraction is honoured.
    to_zero = learner.learning_rate_schedule(schedule_config(final_lr_fraction=0.0))
    assert np.isclose(float(to_zero(100)), 0.0, atol=1e-9)


def test_learning_rate_follows_the_steps_or_the_clock_whichever_is_further():
    config = schedule_config()  # 100 steps, warmup 10
    at = learner.learning_rate_schedule(config)
    rate = lambda step, fraction=0.0: float(learner.learning_rate(config, step, fraction))  # noqa: E731
    assert np.isclose(rate(55), at(55))  # no budget: the schedule over steps
    assert np.isclose(rate(55, 0.2), at(55))  # the steps are further along (10 + 0.2 x 90)
    assert np.isclose(rate(20, 0.5), at(55))  # the clock is: half of the decay is done
    assert np.isclose(rate(20, 1.0), 0.1 * 1e-2)  # a spent budget has decayed fully
    assert np.isclose(rate(5, 0.9), at(5))  # the warmup counts steps only


def test_optimizer_steps_at_a_unit_rate_that_train_scales():
    # Adam's first step moves each parameter by ~1 in the gradient's opposite direction; with
    # zero parameters weight decay adds nothing, and clipping keeps the direction.
    optimizer = learner.make_optimizer(schedule_config())
    params = jnp.zeros(4)
    grads = jnp.array([3.0, -2.0, 0.5, -100.0])
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    assert np.allclose(updates, -np.sign(grads), rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# train() on a buffer filled by self-play.

@functools.lru_cache(maxsize=None)
def filled_buffer():
    """(network, params, buffer) after the self-play shared with test_selfplay.py."""
    network, play, params = tictactoe_selfplay()
    start_key, play_key = jax.random.split(jax.random.key(0))
    start = selfplay.new_games(GAME, start_key, SELFPLAY_GAMES, SELFPLAY_OPENING_MOVES)
    _, trajectory = play(params, start, play_key, moves=SELFPLAY_MOVES)
    capacity = 4 * SELFPLAY_GAMES * SELFPLAY_MOVES
    buffer = replay.add(replay.init(GAME, capacity, SELFPLAY_GAMES), trajectory)
    return network, params, buffer


def test_train_on_a_replay_buffer_advances_the_step_and_returns_finite_losses():
    network, params, buffer = filled_buffer()
    assert int(replay.size(buffer)) > 0
    config = with_training(batch_size=32, learning_rate=1e-2, warmup_steps=0)
    optimizer = learner.make_optimizer(config)
    steps = 5
    train = jax.jit(
        functools.partial(learner.train, GAME, network.apply, optimizer, config, steps=steps)
    )
    state = learner.init_train_state(optimizer, params)
    state, losses = train(state, buffer, jax.random.key(1))
    assert int(state.step) == steps
    for loss in (losses.total, losses.policy, losses.value):
        assert loss.shape == () and np.isfinite(loss)
    assert np.isclose(losses.total, losses.policy + losses.value, rtol=1e-5)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, params)
    assert all(jax.tree.leaves(moved))
    state, _ = train(state, buffer, jax.random.key(2))
    assert int(state.step) == 2 * steps


def test_train_steps_at_the_rate_of_the_budget_spent():
    # Same state, batch and gradients, no warmup: with 55% of the time budget spent the step
    # is the schedule's at 55% of the steps, so every parameter moves that much less far than
    # at the start (cosine: 0.1 + 0.9 x (1 + cos(0.55 pi)) / 2 = 0.48 of the peak).
    network, params, buffer = filled_buffer()
    config = with_training(batch_size=32, learning_rate=1e-2, warmup_steps=0,
                           final_lr_fraction=0.1, iterations=4, steps_per_iteration=25)
    optimizer = learner.make_optimizer(config)
    train = jax.jit(functools.partial(learner.train, GAME, network.apply, optimizer, config,
                                      steps=1))
    state = learner.init_train_state(optimizer, params)
    moves = [jax.tree.map(lambda new, old: np.asarray(new - old),
                          train(state, buffer, jax.random.key(1), fraction)[0].params, params)
             for fraction in (0.0, 0.55)]
    start, later = (np.concatenate([leaf.ravel() for leaf in jax.tree.leaves(move)])
                    for move in moves)
    moved = np.abs(start) > 1e-6
    assert moved.mean() > 0.5
    decayed = 0.1 + 0.9 * (1 + np.cos(0.55 * np.pi)) / 2
    assert np.allclose(later[moved], decayed * start[moved], rtol=1e-3)
