"""Policy-value networks: an MLP for small boards, an AlphaZero-style ResNet for the rest.

    network = make_network(config.model, game)
    params = init_params(network, game, key)
    policy_logits, value = network.apply(params, observations)  # [B, A], [B]

Both are plain Flax linen modules and fully functional: `params` is an ordinary pytree (the
`{"params": ...}` variables dict) and `apply(params, obs)` is pure, with no batch statistics or
other mutable collections. mctx's `recurrent_fn`, the jitted learner (grad inside `lax.scan`) and
the ONNX export (`lambda obs: network.apply(params, obs)`) all rely on that.

Shapes (B = batch, A = game.num_actions):
  input   observation    float32[B, rows, cols, planes], from the side to move's view
  output  policy_logits  float32[B, A]   unmasked; the caller masks illegal moves
          value          float32[B]      in (-1, 1), expected outcome for the side to move

With `dtype=bfloat16` the layers compute in bfloat16 while parameters stay float32 (the
optimiser updates them in full precision); outputs are cast back to float32 so that search,
losses and export never see bfloat16.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from cartridge_jax.config import ModelConfig
from cartridge_jax.games import Game
from cartridge_jax.run.checkpoint import params_fingerprint

Array = jax.Array
Params = Any  # the variables dict returned by `init_params`: {"params": {...}}

# Parameters are always kept in float32, whatever the compute dtype.
PARAM_DTYPE = jnp.float32


def _value_output(value_logit: Array) -> Array:
    """[B, 1] pre-activation -> float32[B] in (-1, 1).

    Cast before the tanh: in bfloat16 tanh rounds to exactly +-1 already for inputs around 3,
    which would make a confident value indistinguishable from a proven result.
    """
    return jnp.tanh(value_logit.astype(jnp.float32))[:, 0]  # [B]


def _check_observation(observation: Array) -> None:
    if observation.ndim != 4:
        raise ValueError(
            f"observation must be [batch, rows, cols, planes], got shape {observation.shape}; "
            "add a batch axis (observation[None]) for a single position"
        )


class MLP(nn.Module):
    """Flatten -> dense+relu trunk -> policy logits and tanh value. For TicTacToe-sized boards."""

    hidden: tuple[int, ...]  # widths of the trunk's hidden layers
    value_hidden: int  # width of the value head's hidden layer
    num_actions: int
    dtype: Any = jnp.float32  # compute dtype

    @nn.compact
    def __call__(self, observation: Array) -> tuple[Array, Array]:
        """float32[B, rows, cols, planes] -> (float32[B, A] logits, float32[B] value)."""
        _check_observation(observation)
        dense = lambda features: nn.Dense(  # noqa: E731
            features, dtype=self.dtype, param_dtype=PARAM_DTYPE
        )
        x = observation.reshape((observation.shape[0], -1))  # [B, rows * cols * planes]
        for width in self.hidden:
            x = nn.relu(dense(width)(x))  # [B, width]

        policy_logits = dense(self.num_actions)(x)  # [B, A]
        value = nn.relu(dense(self.value_hidden)(x))  # [B, value_hidden]
        value = dense(1)(value)  # [B, 1]
        return policy_logits.astype(jnp.float32), _value_output(value)


# Normalisation: LayerNorm over the channel axis at each board cell, in the trunk only.
# - Not BatchNorm: its running statistics are mutable state, which would have to be threaded
#   through mctx's recurrent_fn, the learner's scan and the export, and its train/eval modes
#   make an example's output depend on the rest of its batch. LayerNorm needs neither.
# - Per cell over channels (not over the whole board): the statistics never mix positions or
#   board cells, and it exports as a single ONNX LayerNormalization on the last axis.
# - Never in the heads: their 1-2 channel outputs would be normalised over 1-2 numbers, which
#   is degenerate (1 channel: always 0) and numerically fragile across runtimes (DESIGN.md).


class _ConvNorm(nn.Module):
    """3x3 convolution + channel LayerNorm (no conv bias: the norm's bias takes its place)."""

    channels: int
    dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [B, H, W, C_in] -> [B, H, W, channels]
        x = nn.Conv(
            self.channels, (3, 3), padding="SAME", use_bias=False,
            dtype=self.dtype, param_dtype=PARAM_DTYPE,
        )(x)
        return nn.LayerNorm(dtype=self.dtype, param_dtype=PARAM_DTYPE)(x)


class _ResidualBlock(nn.Module):
    """conv3x3-norm-relu-conv3x3-norm, add the skip, relu."""

    channels: int
    dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [B, H, W, C] -> [B, H, W, C]
        y = nn.relu(_ConvNorm(self.channels, self.dtype)(x))
        y = _ConvNorm(self.channels, self.dtype)(y)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """AlphaZero-style residual tower with a policy head and a value head."""

    blocks: int  # residual blocks in the trunk
    channels: int  # convolution channels in the trunk
    value_hidden: int  # width of the value head's hidden layer
    num_actions: int
    dtype: Any = jnp.float32  # compute dtype

    @nn.compact
    def __call__(self, observation: Array) -> tuple[Array, Array]:
        """float32[B, rows, cols, planes] -> (float32[B, A] logits, float32[B] value)."""
        _check_observation(observation)
        batch = observation.shape[0]
        conv1x1 = lambda features: nn.Conv(  # noqa: E731
            features, (1, 1), dtype=self.dtype, param_dtype=PARAM_DTYPE
        )
        dense = lambda features: nn.Dense(  # noqa: E731
            features, dtype=self.dtype, param_dtype=PARAM_DTYPE
        )

        x = nn.relu(_ConvNorm(self.channels, self.dtype)(observation))  # [B, H, W, C]
        for _ in range(self.blocks):
            x = _ResidualBlock(self.channels, self.dtype)(x)  # [B, H, W, C]

        policy = nn.relu(conv1x1(2)(x))  # [B, H, W, 2]
        policy_logits = dense(self.num_actions)(policy.reshape((batch, -1)))  # [B, A]

        value = nn.relu(conv1x1(1)(x))  # [B, H, W, 1]
        value = nn.relu(dense(self.value_hidden)(value.reshape((batch, -1))))  # [B, value_hidden]
        value = dense(1)(value)  # [B, 1]
        return policy_logits.astype(jnp.float32), _value_output(value)


def make_network(model: ModelConfig, game: Game) -> nn.Module:
    """The network `model` describes, sized for `game`.

    kind "auto": an MLP for TicTacToe (a 3x3 board has too little space for convolutions to pay
    off), the ResNet for every other game.
    """
    kind = model.kind
    if kind == "auto":
        kind = "mlp" if game.name == "tictactoe" else "resnet"
    dtype = jnp.dtype(model.dtype)
    if kind == "mlp":
        return MLP(
            hidden=tuple(model.mlp_hidden),
            value_hidden=model.value_hidden,
            num_actions=game.num_actions,
            dtype=dtype,
        )
    if kind == "resnet":
        return ResNet(
            blocks=model.resnet_blocks,
            channels=model.resnet_channels,
            value_hidden=model.value_hidden,
            num_actions=game.num_actions,
            dtype=dtype,
        )
    raise ValueError(f'model.kind = "{kind}": must be "auto", "mlp" or "resnet"')


def init_params(network: nn.Module, game: Game, key: Array) -> Params:
    """Fresh parameters: the `{"params": ...}` pytree that `network.apply` takes first."""
    dummy = jnp.zeros((1, *game.observation_shape), jnp.float32)  # [1, rows, cols, planes]
    # Jitted: one compilation instead of dispatching (and compiling) every layer's ops eagerly,
    # which for a ResNet is several times slower.
    return jax.jit(network.init)(key, dummy)


def parameter_count(params: Params) -> int:
    """Number of scalar parameters in `params`."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(params))


def describe(network: nn.Module, params: Params) -> str:
    """One line for logs, e.g. "ResNet 4x64, 312,456 parameters"."""
    if isinstance(network, ResNet):
        shape = f"ResNet {network.blocks}x{network.channels}"
    elif isinstance(network, MLP):
        shape = "MLP " + "-".join(str(width) for width in network.hidden)
    else:
        shape = type(network).__name__
    dtype = jnp.dtype(network.dtype)
    compute = "" if dtype == jnp.float32 else f" ({dtype.name} compute)"
    return f"{shape}{compute}, {parameter_count(params):,} parameters"


def identity(game: Game, network: nn.Module, params: Params) -> dict[str, Any]:
    """What a checkpoint must match to be read by this game and network.

    The network is described without its compute dtype: parameters are float32 either way, so
    a run may resume in bfloat16 what it trained in float32, or the other way round.
    """
    return {
        "game": game.name,
        "encoding_version": game.encoding_version,
        "network": describe(network.clone(dtype=jnp.float32), params),
        "params_fingerprint": params_fingerprint(params),
    }
