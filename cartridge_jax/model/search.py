"""The searches: the network as MuZero root and recurrent functions over the real game rules,
searched by `tree_search` (mctx's algorithms and results, at a cost per simulation that does not
grow with the tree; see that module).

Two-player zero-sum games fit mctx's single-agent search through the discount: every edge has
discount -1, so a child's value (from the child's side to move) becomes the parent's with the
sign flipped, and the reward of an edge is the reward of the player who just moved. A terminal
child has discount 0 and value 0, so nothing is bootstrapped past the end of the game.

Two searches are defined here:
  * `selfplay_search`: Gumbel MuZero (policy target = improved policy) or the classic PUCT
    recipe (Dirichlet noise, temperature), per `[mcts]`.
  * `agent_search`: THE agent used everywhere outside self-play (evaluation, the browser bot,
    terminal play): deterministic Gumbel MuZero over the net's priors and values (no Gumbel
    noise, every legal move considered, every reply to a root move visited once before any
    twice), the move Sequential Halving leaves on top.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import mctx
from flax import struct

from cartridge_jax.config import MctsConfig
from cartridge_jax.games import Game, State
from cartridge_jax.model import tree_search

# (params, observations [B, rows, cols, planes]) -> (policy_logits [B, A], value [B])
ApplyFn = Callable[..., tuple[jax.Array, jax.Array]]

# PUCT's second constant (mctx's pb_c_base) for self-play's PUCT mode: it only matters once
# visits reach ~20k, so it is fixed rather than configurable.
PB_C_BASE = 19652.0


def masked_logits(logits: jax.Array, legal_action_mask: jax.Array) -> jax.Array:
    """Illegal moves' logits set to the dtype's minimum.

    finfo.min and not -inf: a terminal node has no legal move, and a softmax over a row of -inf
    is NaN, which would poison the whole search tree.
    """
    return jnp.where(legal_action_mask, logits, jnp.finfo(logits.dtype).min)


def root_output(game: Game, apply_fn: ApplyFn, params, states: State) -> mctx.RootFnOutput:
    """The search root for a batch of live states `[B]`."""
    logits, value = apply_fn(params, jax.vmap(game.observe)(states))
    return mctx.RootFnOutput(
        prior_logits=masked_logits(logits, states.legal_action_mask),  # [B, A]
        value=value,  # [B], from the side to move's view
        embedding=states,
    )


def make_recurrent_fn(game: Game, apply_fn: ApplyFn):
    """mctx's recurrent_fn: one real game step, then the network on the new position."""

    def recurrent_fn(params, key, action, states):
        del key  # the rules and the network are deterministic
        batch = jnp.arange(action.shape[0])
        next_states = jax.vmap(game.step)(states, action)
        logits, value = apply_fn(params, jax.vmap(game.observe)(next_states))
        terminated = next_states.terminated  # [B]
        output = mctx.RecurrentFnOutput(
            reward=next_states.rewards[batch, states.current_player],  # the mover's reward
            discount=jnp.where(terminated, 0.0, -1.0),
            prior_logits=masked_logits(logits, next_states.legal_action_mask),
            value=jnp.where(terminated, 0.0, value),
        )
        return output, next_states

    return recurrent_fn


@struct.dataclass
class SearchResult:
    action: jax.Array  # int32[B]: the move to play
    policy_target: jax.Array  # float32[B, A]: what the network learns to predict
    # float32[B]: the search's value of the position, side to move's view (the agent's: the Q
    # of its move; self-play's: the root's mean backed-up value)
    root_value: jax.Array
    visit_counts: jax.Array  # float32[B, A]: the root's visits per move (what the web page shows)


def selfplay_search(
    game: Game,
    apply_fn: ApplyFn,
    mcts: MctsConfig,
    params,
    key: jax.Array,
    states: State,
    move_number: jax.Array,
) -> SearchResult:
    """The self-play move and policy target for live `states` [B].

    `move_number` int32[B] counts each game's moves so far: the PUCT temperature drops from
    `temperature` to `final_temperature` after `temperature_drop_move` moves.
    """
    root = root_output(game, apply_fn, params, states)
    recurrent_fn = make_recurrent_fn(game, apply_fn)
    invalid_actions = ~states.legal_action_mask
    if mcts.search == "gumbel":
        output = tree_search.gumbel_muzero_policy(
            params,
            key,
            root,
            recurrent_fn,
            num_simulations=mcts.simulations,
            invalid_actions=invalid_actions,
            max_num_considered_actions=mcts.max_considered_actions,
            gumbel_scale=mcts.gumbel_scale,
        )
    else:
        temperature = jnp.where(
            move_number < mcts.temperature_drop_move, mcts.temperature, mcts.final_temperature
        )
        output = tree_search.muzero_policy(
            params,
            key,
            root,
            recurrent_fn,
            num_simulations=mcts.simulations,
            invalid_actions=invalid_actions,
            dirichlet_fraction=mcts.dirichlet_fraction,
            dirichlet_alpha=mcts.dirichlet_alpha,
            pb_c_init=mcts.c_puct,
            pb_c_base=PB_C_BASE,
            temperature=temperature[:, None],  # [B, 1]: broadcasts over the action logits
        )
    return SearchResult(
        action=output.action.astype(jnp.int32),
        policy_target=output.action_weights,
        root_value=output.search_tree.node_values[:, 0],
        visit_counts=output.search_tree.summary().visit_counts,
    )


# The deepest replies the agent visits all of (`tree_search.gumbel_muzero_policy`'s
# `reply_depth`): the opponent's replies to the root moves and to the agent's next moves.
REPLY_DEPTH = 3


def check_simulations(simulations: int) -> None:
    """The agent's simulation count: 0 (the raw network) or more; ValueError otherwise."""
    if simulations < 0:
        raise ValueError(f"simulations = {simulations}: use 0 (raw network) or more")


def agent_search(
    game: Game,
    apply_fn: ApplyFn,
    params,
    key: jax.Array,
    states: State,
    *,
    simulations: int,
) -> SearchResult:
    """The agent: Gumbel MuZero without Gumbel noise, `simulations` per move.

    Every legal move is considered; Sequential Halving spends the simulations on them, halving
    the candidates by `logits + completed Q` until the move to play is left (the policy's own
    choice among the most visited moves, not the argmax of the visits: the finalists get
    near-equal visits). Without noise the search is deterministic: `key` changes nothing, and
    ties go to the lowest action index, as in the browser's reimplementation. It replaced PUCT
    (c 1.25, the most visited move): on the shipped Connect 4 model at 128 simulations it makes
    3.4 / 4.6 / 4.1 / 15.7% mistakes on Pons' L3_R1 / L2_R1 / L1_R1 / L1_R3 sets where PUCT made
    4.6 / 7.8 / 6.5 / 15.8%, in a third to a half of the time (no per-node tie-breaking noise).
    One departure from mctx (`REPLY_DEPTH`): at the opponent's nodes one and three plies below
    the root, every legal reply is visited once (the most likely first) before Gumbel's interior
    rule takes over. That rule alone never visits a reply with a tiny prior, so a refutation
    the network does not expect went unseen at any simulation count: the shipped Othello agent
    lost 30 of 100 games to greedy play, every one a wipeout it valued as won, at 16, 64 or 256
    simulations alike. Visiting every reply one ply down took that to 16 losses, FForum
    best-move rates from 47 / 45% to 47 / 50% and Connect 4's Pons mistakes to 1.9 / 2.6 / 3.4 /
    14.3%. A later network still lost 11 of 100 at 1024 simulations, every loss again a
    wipeout, two moves deep; three plies down it lost 4 of 200, with the same held-out
    endgame mistakes (Val_endgame 8.6%) and Connect 4's held-out mistakes within noise
    (docs/strength.md). At every depth the rule cost Othello's endgame (FForum 32 / 35%).
    Self-play keeps mctx's rule.
    The policy target is the improved policy, softmax(logits + completed Q).
    The root value is the Q of the move played, not the root's mean backed-up value: that mean
    gives the finalists' equal visits equal weight, the losing ones' included.

    With `simulations == 0` it plays the raw network's most likely legal move.
    """
    root = root_output(game, apply_fn, params, states)
    if simulations == 0:
        return SearchResult(
            action=jnp.argmax(root.prior_logits, axis=-1).astype(jnp.int32),
            policy_target=jax.nn.softmax(root.prior_logits),
            root_value=root.value,
            visit_counts=jnp.zeros_like(root.prior_logits),
        )
    output = tree_search.gumbel_muzero_policy(
        params,
        key,
        root,
        make_recurrent_fn(game, apply_fn),
        num_simulations=simulations,
        invalid_actions=~states.legal_action_mask,
        max_num_considered_actions=game.num_actions,
        gumbel_scale=0.0,
        reply_depth=REPLY_DEPTH,
    )
    summary = output.search_tree.summary()
    action = output.action.astype(jnp.int32)
    return SearchResult(
        action=action,
        policy_target=output.action_weights,
        root_value=jnp.take_along_axis(summary.qvalues, action[:, None], axis=-1)[:, 0],
        visit_counts=summary.visit_counts,
    )
