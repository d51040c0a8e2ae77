"""The learner: AlphaZero's loss and an optax optimizer, run as jitted chunks of steps.

Loss = soft cross-entropy between the search's policy target and the net's policy over legal
moves + value_loss_weight * squared error between value and the game's final outcome (both from
the side to move's view). Weight decay lives in AdamW, not in the loss.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from cartridge_jax.config import Config
from cartridge_jax.games import Game
from cartridge_jax.model.search import ApplyFn, masked_logits
from cartridge_jax.training import replay


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    step: jax.Array  # int32[]: gradient steps taken: THE step counter of a run


@struct.dataclass
class Losses:
    total: jax.Array  # float32[]
    policy: jax.Array  # float32[]
    value: jax.Array  # float32[]


def _span(config: Config) -> tuple[int, int]:
    """(gradient steps in the run, warmup steps): the warmup is cut to the run's length."""
    total = config.training.iterations * config.training.steps_per_iteration
    return total, min(config.training.warmup_steps, total)


def learning_rate_schedule(config: Config) -> optax.Schedule:
    """Linear warmup from 0.1 x lr to lr, then cosine decay to final_lr_fraction x lr at the
    end of the run (iterations x steps_per_iteration), over gradient steps."""
    training = config.training
    total, warmup = _span(config)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.1 * training.learning_rate,
        peak_value=training.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(total, warmup + 1),
        end_value=training.final_lr_fraction * training.learning_rate,
    )


def learning_rate(config: Config, step: jax.Array | int,
                  time_fraction: jax.Array | float = 0.0) -> jax.Array:
    """The learning rate at gradient step `step` when `time_fraction` of the time budget is
    spent. The warmup counts steps; the cosine decay then stands at whichever is further along,
    the steps or the clock. So a run bounded by `training.time_budget_s` ends fully decayed on
    any CPU, where a schedule over iterations alone would stop it mid-decay on a CPU slower
    than its iteration count assumed."""
    total, warmup = _span(config)
    by_clock = warmup + time_fraction * (total - warmup)
    decaying = jnp.maximum(step, by_clock)
    return learning_rate_schedule(config)(jnp.where(step < warmup, step, decaying))


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Clipping and AdamW at a unit learning rate: `train` scales its updates by
    `learning_rate`, which depends on the clock the optimizer cannot see. The unit schedule
    (not a float) keeps the optimizer state's layout, so checkpoints written when the schedule
    lived here still resume."""
    return optax.chain(
        optax.clip_by_global_norm(config.training.grad_clip_norm),
        optax.adamw(lambda count: 1.0, weight_decay=config.training.weight_decay),
    )


def init_train_state(optimizer: optax.GradientTransformation, params) -> TrainState:
    return TrainState(params=params, opt_state=optimizer.init(params), step=jnp.int32(0))


def apply_gradients(optimizer: optax.GradientTransformation, config: Config,
                    train_state: TrainState, grads, time_fraction: jax.Array | float = 0.0
                    ) -> TrainState:
    """One optimizer step (`make_optimizer`) at `learning_rate(config, step, time_fraction)`."""
    updates, opt_state = optimizer.update(grads, train_state.opt_state, train_state.params)
    rate = learning_rate(config, train_state.step, time_fraction)
    params = optax.apply_updates(train_state.params, jax.tree.map(lambda u: rate * u, updates))
    return TrainState(params, opt_state, train_state.step + 1)


def loss_fn(apply_fn: ApplyFn, value_loss_weight: float, params, batch: replay.Batch):
    """(total loss, Losses) of one batch; illegal moves take no part in the policy softmax."""
    logits, value = apply_fn(params, batch.observation)  # [N, A], [N]
    log_probs = jax.nn.log_softmax(masked_logits(logits, batch.legal_action_mask))
    # The target is zero on illegal moves; where() keeps 0 * (-huge) out of the sum.
    policy_loss = -jnp.sum(
        jnp.where(batch.legal_action_mask, batch.policy_target * log_probs, 0.0), axis=-1
    ).mean()
    value_loss = jnp.mean((value - batch.value_target) ** 2)
    total = policy_loss + value_loss_weight * value_loss
    return total, Losses(total=total, policy=policy_loss, value=value_loss)


def train(
    game: Game,
    apply_fn: ApplyFn,
    optimizer: optax.GradientTransformation,
    config: Config,
    train_state: TrainState,
    buffer: replay.ReplayBuffer,
    key: jax.Array,
    time_fraction: jax.Array | float = 0.0,
    *,
    steps: int,
    mesh: Mesh | None = None,
) -> tuple[TrainState, Losses]:
    """`steps` gradient steps on batches sampled from `buffer`; returns mean losses.
    `time_fraction`: the part of `training.time_budget_s` spent before these steps (0 without
    a budget), which with the step sets the learning rate (`learning_rate`).

    With `mesh`, the buffer is split over its data axis (`replay.partition_spec`) and so is
    each batch, while the train state is replicated: the compiler averages the gradients over
    devices (an all-reduce). The batch is the same as on one device.
    """
    training = config.training
    table = replay.sampling_table(buffer, training.replay_window)

    def gradient_step(train_state: TrainState, key: jax.Array):
        batch = replay.sample(game, buffer, table, key, training.batch_size,
                              augment=config.selfplay.augment, mesh=mesh)
        grads, losses = jax.grad(
            lambda p: loss_fn(apply_fn, training.value_loss_weight, p, batch), has_aux=True
        )(train_state.params)
        return apply_gradients(optimizer, config, train_state, grads, time_fraction), losses

    train_state, losses = jax.lax.scan(gradient_step, train_state, jax.random.split(key, steps))
    return train_state, jax.tree.map(jnp.mean, losses)
