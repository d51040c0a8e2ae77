"""Batched MCTS whose cost per simulation does not grow with the number of simulations.

A drop-in replacement for `mctx.muzero_policy` and `mctx.gumbel_muzero_policy` (mctx 0.0.71):
same signatures, same key splitting and same arithmetic, so the same inputs give the same
visit counts, actions, action weights and values. The returned `search_tree` is an `mctx.Tree`.

Why not mctx itself: mctx writes its search for ONE game and `jax.vmap`s it. Its backward pass
is a `lax.while_loop` whose trip count (the leaf's depth) differs between games; a vmapped
while loop runs until every game is done and, at each step, keeps the finished games' state
with `select(done, new_tree, old_tree)` over the WHOLE carried tree. That select reads the old
tree after the scatter has written the new one, so XLA also copies every updated tree array
before scattering into it. In the optimised HLO (B=128, S=512, A=7) the backward loop body has:

  %copy.177 = f32[128,513,7] copy(%get-tuple-element.2988)            # children_values
  %wrapped_scatter.11 = f32[128,513,7] fusion(%copy.177, ...)         # the one-element update
  %broadcast_select_fusion.3 = f32[128,513,7] fusion(%wrapped_scatter.11,
                                                     %get-tuple-element.2988, ...)  # select
  (and the same for children_visits s32[128,513,7], node_values f32[128,513], node_visits
  s32[128,513])

so every backward step of every simulation reads and writes the whole tree: O(B * S * A) per
step instead of O(B).

Here the search is written for the batch from the start:
  * The tree is one table `[N, B, R]` (`_Layout`): node-major, one row per node holding all
    its fields. It is carried by the simulation loop and only ever updated in place: the
    node a simulation adds is one `dynamic_update_slice` of row `sim + 1` for every game,
    the other updates are scatters of a few elements per game.
  * The walk from the root is one loop over depth for the whole batch; each step gathers the
    current node's row of each game (`[B, R]`) and records the path. Selection and the
    Q-transforms read only those rows.
  * The backward pass is one loop over depth that reads the recorded path, not the table,
    and scatters 4 elements per game. A game whose path is shorter writes to an
    out-of-range row, which the scatter drops (`mode="drop"`), so nothing selects over the
    table.
  * Per-node embeddings (any pytree, `[N, B, ...]`) are gathered and written the same way.
  * The `mctx.Tree` (`[B, N, ...]`) is unpacked from the table once, after the search.

Only `mctx`'s public types (`RootFnOutput`, `RecurrentFnOutput`, `PolicyOutput`, `Tree`,
`GumbelMuZeroExtraData`) and public Q-transforms are used. Q-transforms are written for one
game's tree and a node index; they are given a batch of one-node trees (the gathered rows of
the current nodes), which they read exactly as they would read the full tree.

Exactness: every quantity is computed with mctx's expressions, on the same dtypes, in the
same order, so XLA emits the same floating-point operations. One thing is outside the
source's control: on CPU, LLVM contracts a multiply and a dependent add into one fused
multiply-add when both are in the same kernel, which rounds once instead of twice. mctx's
backward pass computes `(value * count + leaf) / (count + 1)` in one kernel; so does this one
(see the comment at the `path` buffer), and the tests compare the trees bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import mctx
import numpy as np

Tree = mctx.Tree

# (tree of one game, node index) -> Q-values [A], e.g. mctx.qtransform_by_parent_and_siblings
QTransform = Callable[[Tree, chex.Numeric], chex.Array]
# (keys [B] or None, nodes: a batch of one-node trees, their depth: edges from the root)
# -> action int32[B]
SelectionFn = Callable[[jax.Array | None, Tree, chex.Numeric], jax.Array]


def muzero_policy(
    params: Any,
    rng_key: chex.PRNGKey,
    root: mctx.RootFnOutput,
    recurrent_fn: mctx.RecurrentFn,
    num_simulations: int,
    invalid_actions: chex.Array | None = None,
    max_depth: int | None = None,
    loop_fn: mctx.LoopFn = jax.lax.fori_loop,
    *,
    qtransform: QTransform = mctx.qtransform_by_parent_and_siblings,
    dirichlet_fraction: chex.Numeric = 0.25,
    dirichlet_alpha: chex.Numeric = 0.3,
    pb_c_init: chex.Numeric = 1.25,
    pb_c_base: chex.Numeric = 19652,
    temperature: chex.Numeric = 1.0,
) -> mctx.PolicyOutput[None]:
    """MuZero search (PUCT with Dirichlet noise at the root); as `mctx.muzero_policy`.

    Args:
      params: forwarded to `recurrent_fn`.
      rng_key: consumed.
      root: `prior_logits [B, A]`, `value [B]`, `embedding [B, ...]`.
      recurrent_fn: `(params, key, action [B], embedding [B, ...]) ->
        (RecurrentFnOutput, embedding)`.
      num_simulations: the number of simulations (a Python int).
      invalid_actions: `[B, A]`, nonzero for actions illegal at the root.
      max_depth: the most edges from the root to a leaf; `num_simulations` if None.
      loop_fn: runs the simulations, `jax.lax.fori_loop` or an equivalent (`hk.fori_loop`).
      qtransform: normalises a node's Q-values into the PUCT value score.
      dirichlet_fraction: weight of the Dirichlet noise in the root prior (0: no noise).
      dirichlet_alpha: concentration of the Dirichlet noise.
      pb_c_init: c_1 of PUCT.
      pb_c_base: c_2 of PUCT.
      temperature: the action is sampled from `visit_counts ** (1 / temperature)`; a scalar
        or an array broadcasting against `[B, A]` (e.g. `[B, 1]`).

    Returns:
      `PolicyOutput(action [B], action_weights [B, A] (the root's visit frequencies),
      search_tree)`.
    """
    rng_key, dirichlet_key, search_key = jax.random.split(rng_key, 3)

    probs = jax.nn.softmax(root.prior_logits)  # [B, A]
    batch_size, num_actions = probs.shape
    noise = jax.random.dirichlet(
        dirichlet_key,
        alpha=jnp.full([num_actions], fill_value=dirichlet_alpha),
        shape=(batch_size,),
    )  # [B, A]
    noisy_probs = (1 - dirichlet_fraction) * probs + dirichlet_fraction * noise
    root = root.replace(
        prior_logits=_mask_invalid_actions(_logits_from_probs(noisy_probs), invalid_actions)
    )

    select = functools.partial(
        _puct_action, pb_c_init=pb_c_init, pb_c_base=pb_c_base, qtransform=qtransform
    )
    search_tree = search(
        params,
        search_key,
        root=root,
        recurrent_fn=recurrent_fn,
        root_selection_fn=functools.partial(select, is_root=True),
        interior_selection_fn=functools.partial(select, is_root=False),
        num_simulations=num_simulations,
        max_depth=max_depth,
        invalid_actions=invalid_actions,
        selection_uses_keys=True,
        loop_fn=loop_fn,
    )

    # The action is sampled from the root's visit frequencies, sharpened by the temperature.
    action_weights = search_tree.summary().visit_probs  # [B, A]
    logits = _logits_from_probs(action_weights)
    # Subtracting the max keeps logits / temperature finite for a tiny temperature.
    logits = logits - jnp.max(logits, axis=-1, keepdims=True)
    logits = logits / jnp.maximum(jnp.finfo(logits.dtype).tiny, temperature)
    action = jax.random.categorical(rng_key, logits)
    return mctx.PolicyOutput(action=action, action_weights=action_weights, search_tree=search_tree)


def gumbel_muzero_policy(
    params: Any,
    rng_key: chex.PRNGKey,
    root: mctx.RootFnOutput,
    recurrent_fn: mctx.RecurrentFn,
    num_simulations: int,
    invalid_actions: chex.Array | None = None,
    max_depth: int | None = None,
    loop_fn: mctx.LoopFn = jax.lax.fori_loop,
    *,
    qtransform: QTransform = mctx.qtransform_completed_by_mix_value,
    max_num_considered_actions: int = 16,
    gumbel_scale: chex.Numeric = 1.0,
    reply_depth: int = 0,
) -> mctx.PolicyOutput[mctx.GumbelMuZeroExtraData]:
    """Full Gumbel MuZero search; as `mctx.gumbel_muzero_policy` (with `reply_depth` 0).

    At the root, actions are chosen by Sequential Halving with Gumbel noise; below it, by the
    deterministic selection that matches visit frequencies to softmax(prior_logits + Q).
    ("Policy improvement by planning with Gumbel", https://openreview.net/forum?id=bERaNdoegnO)

    Args:
      params, rng_key, root, recurrent_fn, num_simulations, invalid_actions, max_depth,
      loop_fn: as `muzero_policy`.
      qtransform: completes the Q-values of unvisited actions and scales them.
      max_num_considered_actions: how many actions Sequential Halving starts with (fewer if
        fewer are valid).
      gumbel_scale: scale of the Gumbel noise (0: deterministic).
      reply_depth: a departure from mctx. At a node an odd number of edges below the root (the
        opponent to move, in a game whose players alternate) and at most `reply_depth` deep, a
        legal action with no visit yet is chosen before any other (the highest prior logit
        first, ties to the lowest index; the unvisited actions share one completed Q, so this is
        their order by softmax(prior_logits + completed Q)); once each has a visit, the rule
        above. The rule above never visits an action whose prior is tiny, so a reply the
        network does not expect, a refutation, went unseen at any simulation count (the shipped
        Othello agent lost 30 of 100 games to greedy play, each a wipeout it valued as won).
        0 turns it off. A node counts an action as legal when its prior logit is above half
        the dtype's minimum (illegal actions are masked to the minimum, as
        `search.masked_logits` and `_mask_invalid_actions` do).

    Returns:
      `PolicyOutput(action [B], action_weights [B, A] (the improved policy
      softmax(prior_logits + completed Q)), search_tree)`.
    """
    root = root.replace(prior_logits=_mask_invalid_actions(root.prior_logits, invalid_actions))
    rng_key, gumbel_key = jax.random.split(rng_key)
    gumbel = gumbel_scale * jax.random.gumbel(
        gumbel_key, shape=root.prior_logits.shape, dtype=root.prior_logits.dtype
    )  # [B, A]

    table = jnp.asarray(_considered_visits_table(max_num_considered_actions, num_simulations))
    search_tree = search(
        params,
        rng_key,
        root=root,
        recurrent_fn=recurrent_fn,
        root_selection_fn=functools.partial(
            _gumbel_root_action,
            table=table,
            max_num_considered_actions=max_num_considered_actions,
            qtransform=qtransform,
        ),
        interior_selection_fn=functools.partial(
            _gumbel_interior_action, qtransform=qtransform, reply_depth=reply_depth
        ),
        num_simulations=num_simulations,
        max_depth=max_depth,
        invalid_actions=invalid_actions,
        extra_data=mctx.GumbelMuZeroExtraData(root_gumbel=gumbel),
        selection_uses_keys=False,
        loop_fn=loop_fn,
    )

    # The action: the best by `gumbel + logits + q` among the most visited root actions (in a
    # batch, games with fewer valid actions can have a different most-visited count).
    visit_counts = search_tree.summary().visit_counts  # [B, A], float
    considered_visit = jnp.max(visit_counts, axis=-1, keepdims=True)  # [B, 1]
    completed_qvalues = jax.vmap(qtransform, in_axes=(0, None))(
        search_tree, Tree.ROOT_INDEX
    )  # [B, A]
    scores = _score_considered(
        considered_visit, gumbel, root.prior_logits, completed_qvalues, visit_counts
    )
    action = _masked_argmax(scores, invalid_actions)

    # The policy target: the improved policy.
    action_weights = jax.nn.softmax(
        _mask_invalid_actions(root.prior_logits + completed_qvalues, invalid_actions)
    )
    return mctx.PolicyOutput(action=action, action_weights=action_weights, search_tree=search_tree)


def search(
    params: Any,
    rng_key: chex.PRNGKey,
    *,
    root: mctx.RootFnOutput,
    recurrent_fn: mctx.RecurrentFn,
    root_selection_fn: SelectionFn,
    interior_selection_fn: SelectionFn,
    num_simulations: int,
    max_depth: int | None = None,
    invalid_actions: chex.Array | None = None,
    extra_data: Any = None,
    selection_uses_keys: bool,
    loop_fn: mctx.LoopFn = jax.lax.fori_loop,
) -> Tree:
    """Runs `num_simulations` simulations from `root`; returns the search tree.

    As `mctx.search`, but the selection functions are batched: `(keys, nodes) -> action [B]`,
    where `nodes` is a batch of one-node trees (`[B, 1, ...]`: the rows of each game's current
    node, with the game's `root_invalid_actions` and `extra_data`) and `keys` is each game's
    key `[B]`, or None when `selection_uses_keys` is False (the per-game keys are then not
    computed: they are observable only through the selection functions).

    Node `i` is the node first expanded by simulation `i - 1`; node 0 is the root.
    """
    chex.assert_rank(root.prior_logits, 2)
    batch_size, num_actions = root.prior_logits.shape
    chex.assert_shape(root.value, [batch_size])
    if max_depth is None:
        max_depth = num_simulations
    if invalid_actions is None:
        invalid_actions = jnp.zeros_like(root.prior_logits)
    layout = _Layout(num_actions, root.value.dtype, root.prior_logits.dtype)
    if num_simulations + 1 >= layout.max_exact_int:
        raise ValueError(
            f"num_simulations = {num_simulations}: too many for a {layout.dtype} table"
        )
    num_nodes = num_simulations + 1

    root_row = layout.rows(
        (batch_size,),
        node_visits=1,
        raw_values=root.value,
        node_values=root.value,
        children_prior_logits=root.prior_logits,
    )  # [B, R]
    table = jnp.broadcast_to(layout.rows(()), (num_nodes, batch_size, layout.width))
    table = table.at[Tree.ROOT_INDEX].set(root_row)  # [N, B, R]
    embeddings = jax.tree.map(
        lambda x: jnp.zeros((num_nodes,) + x.shape, x.dtype).at[Tree.ROOT_INDEX].set(x),
        root.embedding,
    )  # [N, B, ...]
    # A walk has at most min(max_depth, num_simulations) edges. At least two rows: with one,
    # XLA would see the backward pass read a loop-invariant row and hoist `node_value * count`
    # out of its loop, splitting the multiply-add that mctx's kernel fuses (and rounds once).
    path = jnp.zeros(
        (max(2, min(max_depth, num_simulations)), batch_size, len(_PATH_COLUMNS)), layout.dtype
    )  # [D, B, 7]

    def view(rows):
        """The rows `[B, R]` as a batch of one-node trees, what the selection functions read."""
        fields = layout.unpack(rows)
        return Tree(
            **{name: field[:, None] for name, field in fields.items()},
            embeddings=None,
            root_invalid_actions=invalid_actions,
            extra_data=extra_data,
        )

    def simulation(sim, carry):
        rng_key, table, embeddings, path = carry
        rng_key, simulate_key, expand_key = jax.random.split(rng_key, 3)
        keys = jax.random.split(simulate_key, batch_size) if selection_uses_keys else None
        walk, path = _traverse(
            keys, table, path, layout, view, root_selection_fn, interior_selection_fn, max_depth
        )
        # Past max_depth a walk can end on a visited edge (never otherwise: a walk of
        # `num_simulations` edges would need more nodes than the tree has).
        table, embeddings, step = _expand(
            params,
            expand_key,
            table,
            embeddings,
            recurrent_fn,
            walk,
            sim + 1,
            layout,
            revisits=max_depth < num_simulations,
        )
        table = _backward(table, path, walk.length, step, layout)
        return rng_key, table, embeddings, path

    _, table, embeddings, _ = loop_fn(
        0, num_simulations, simulation, (rng_key, table, embeddings, path)
    )
    fields = layout.unpack(table)  # [N, B(, A)]
    return Tree(
        **{name: jnp.swapaxes(field, 0, 1) for name, field in fields.items()},
        embeddings=jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), embeddings),
        root_invalid_actions=invalid_actions,
        extra_data=extra_data,
    )


# The fields of a node's row in the packed table: its own, then one per action.
_NODE_FIELDS = ("node_visits", "raw_values", "node_values", "parents", "action_from_parent")
_EDGE_FIELDS = (
    "children_index",
    "children_prior_logits",
    "children_values",
    "children_visits",
    "children_rewards",
    "children_discounts",
)
_INT_FIELDS = ("node_visits", "parents", "action_from_parent", "children_index", "children_visits")
# The fields of a node never expanded.
_EMPTY = {
    "node_visits": 0,
    "raw_values": 0,
    "node_values": 0,
    "parents": Tree.NO_PARENT,
    "action_from_parent": Tree.NO_PARENT,
    "children_index": Tree.UNVISITED,
    "children_prior_logits": 0,
    "children_values": 0,
    "children_visits": 0,
    "children_rewards": 0,
    "children_discounts": 0,
}
# What a walk records at each depth for the backward pass: the node, the action taken there,
# and the statistics the backward pass reads (unchanged between the walk and the backward).
_PATH_COLUMNS = (
    "node",
    "action",
    "node_visits",
    "node_values",
    "children_rewards",
    "children_discounts",
    "children_visits",
)


@dataclasses.dataclass(frozen=True)
class _Layout:
    """How `mctx.Tree`'s fields are packed into one table `[N, B, R]`.

    Node-major: the games' rows of one node are contiguous, so the root (read by every walk)
    and the node each simulation adds (written by every game at once) are one block.

    One row `[R]` holds all of a node's fields: a walk reads one row per step with one gather
    instead of one gather per field. On CPU this matters beyond the memory traffic: XLA splits
    every loop fusion that reads a large buffer into parallel tasks (its cost model counts the
    whole buffer as read), and each split op costs a thread hand-off of several microseconds.

    The table's dtype is the widest of float32 and the value and logits dtypes; integer fields
    (visit counts, node indices) are stored as floats, exact up to `max_exact_int`, and every
    field is cast back to its own dtype when read, so the arithmetic is mctx's.
    """

    num_actions: int
    value_dtype: Any
    logits_dtype: Any

    @property
    def dtype(self):
        return jnp.result_type(jnp.float32, self.value_dtype, self.logits_dtype)

    @property
    def max_exact_int(self) -> int:
        return 2 ** (jnp.finfo(self.dtype).nmant + 1)

    @property
    def width(self) -> int:
        return len(_NODE_FIELDS) + len(_EDGE_FIELDS) * self.num_actions

    def field_dtype(self, name: str):
        if name in _INT_FIELDS:
            return jnp.int32
        return self.logits_dtype if name == "children_prior_logits" else self.value_dtype

    def column(self, name: str, action: chex.Array | None = None):
        """The column of a node field, or of an edge field at `action` (all of them if None)."""
        if name in _NODE_FIELDS:
            return _NODE_FIELDS.index(name)
        start = len(_NODE_FIELDS) + _EDGE_FIELDS.index(name) * self.num_actions
        if action is None:
            return slice(start, start + self.num_actions)
        return start + action

    def columns(self, names, action: chex.Array) -> chex.Array:
        """The columns `[B, len(names)]` of the named fields, edge fields at `action [B]`."""
        return jnp.stack(
            [jnp.broadcast_to(self.column(name, action), action.shape) for name in names], axis=-1
        )

    def store(self, name: str, field: chex.Array) -> chex.Array:
        """`field` as the table stores it: cast to the field's dtype (as storing it into an
        `mctx.Tree` would), then to the table's."""
        return jnp.asarray(field).astype(self.field_dtype(name)).astype(self.dtype)

    def rows(self, shape: tuple[int, ...], **fields) -> chex.Array:
        """Rows `[*shape, R]` with the given fields, the others as in a node never expanded."""
        columns = []
        for name in _NODE_FIELDS + _EDGE_FIELDS:
            field_shape = shape if name in _NODE_FIELDS else shape + (self.num_actions,)
            field = jnp.broadcast_to(self.store(name, fields.get(name, _EMPTY[name])), field_shape)
            columns.append(field[..., None] if name in _NODE_FIELDS else field)
        return jnp.concatenate(columns, axis=-1)

    def unpack(self, rows: chex.Array) -> dict[str, chex.Array]:
        """The fields of rows `[..., R]`: `[...]` node fields, `[..., A]` edge fields."""
        return {
            name: rows[..., self.column(name)].astype(self.field_dtype(name))
            for name in _NODE_FIELDS + _EDGE_FIELDS
        }


class _Walk(NamedTuple):
    """Where each game's walk from the root ended."""

    parent: chex.Array  # [B] the last node
    action: chex.Array  # [B] the action taken there
    child: chex.Array  # [B] that edge's child: Tree.UNVISITED unless the walk hit max_depth
    length: chex.Array  # [B] the number of edges walked, >= 1


def _traverse(
    keys: jax.Array | None,
    table: chex.Array,
    path: chex.Array,
    layout: _Layout,
    view: Callable[[chex.Array], Tree],
    root_selection_fn: SelectionFn,
    interior_selection_fn: SelectionFn,
    max_depth: int,
) -> tuple[_Walk, chex.Array]:
    """Walks each game from the root to an unvisited edge, or until `max_depth` edges.

    Returns the walk and `path [D, B, 7]`, whose first `length[b]` rows hold game `b`'s
    nodes, actions and the statistics the backward pass reads (`_PATH_COLUMNS`). Later rows
    are stale.
    """
    batch = jnp.arange(table.shape[1])

    def step(keys, depth, node, rows, selection_fn, path):
        """Selects an action at `node [B]` (rows `[B, R]`), records it at `depth` of the path."""
        select_keys = None
        if keys is not None:
            keys, select_keys = _split_each(keys)
        nodes = view(rows)
        action = selection_fn(select_keys, nodes, depth)  # [B]
        edge = {name: getattr(nodes, name)[batch, 0, action] for name in _EDGE_FIELDS}
        record = dict(
            node=node,
            action=action,
            node_visits=nodes.node_visits[:, 0],
            node_values=nodes.node_values[:, 0],
            **edge,
        )
        record = jnp.stack([record[name].astype(path.dtype) for name in _PATH_COLUMNS], axis=-1)
        path = jax.lax.dynamic_update_index_in_dim(path, record, depth, axis=0)
        return keys, action, edge["children_index"], path

    # Every game takes the root step; below the root the games that are still walking all
    # have the same depth, so the depth is one number.
    root = jnp.full_like(batch, Tree.ROOT_INDEX)
    keys, action, child, path = step(keys, 0, root, table[Tree.ROOT_INDEX], root_selection_fn, path)
    last = jnp.stack([root, action, child], axis=-1)  # [B, 3] each game's last edge
    walking = (child != Tree.UNVISITED) & (1 < max_depth)  # [B]

    def cond(state):
        return jnp.any(state[-2])

    def body(state):
        keys, depth, node, last, length, walking, path = state
        # Every game steps from its `node`; only the walking games' steps count. The others
        # stand anywhere (an unvisited child's index, -1, reads the last row); their keys and
        # the rows they record past their length are never read again in this simulation.
        keys, action, child, path = step(
            keys, depth, node, table[node, batch], interior_selection_fn, path
        )
        last = jnp.where(walking[:, None], jnp.stack([node, action, child], axis=-1), last)
        length = length + walking
        walking = walking & (child != Tree.UNVISITED) & (depth + 1 < max_depth)
        return keys, depth + 1, child, last, length, walking, path

    state = (keys, jnp.int32(1), child, last, jnp.ones_like(batch), walking, path)
    _, _, _, last, length, _, path = jax.lax.while_loop(cond, body, state)
    parent, action, child = last.T
    return _Walk(parent=parent, action=action, child=child, length=length), path


def _expand(
    params: Any,
    rng_key: chex.PRNGKey,
    table: chex.Array,
    embeddings: Any,
    recurrent_fn: mctx.RecurrentFn,
    walk: _Walk,
    new_node: chex.Array,
    layout: _Layout,
    revisits: bool,
) -> tuple[chex.Array, Any, mctx.RecurrentFnOutput]:
    """Evaluates each game's last edge and stores the result as node `new_node`.

    With `revisits` (max_depth below the simulation count), a walk that ended on a visited
    edge evaluates that edge's child again instead: as in mctx, its value, prior and embedding
    are replaced and its visit count incremented, and node `new_node` stays empty.

    Returns the table, the embeddings and the evaluation.
    """
    batch_size = walk.parent.shape[0]
    batch = jnp.arange(batch_size)
    num_nodes = table.shape[0]
    embedding = jax.tree.map(lambda x: x[walk.parent, batch], embeddings)  # [B, ...]
    step, embedding = recurrent_fn(params, rng_key, walk.action, embedding)
    chex.assert_shape(step.prior_logits, [batch_size, layout.num_actions])
    chex.assert_shape([step.reward, step.discount, step.value], [batch_size])

    evaluated = {
        "raw_values": step.value,
        "node_values": step.value,
        "parents": walk.parent,
        "action_from_parent": walk.action,
        "children_prior_logits": step.prior_logits,
    }
    row = layout.rows((batch_size,), node_visits=1, **evaluated)  # [B, R]
    if revisits:
        revisit = walk.child != Tree.UNVISITED  # [B]
        # The visited children: read (before any write), update, write back; the other
        # games write to row `num_nodes`, which the scatter drops.
        old = layout.unpack(table[jnp.where(revisit, walk.child, 0), batch])
        again = layout.rows(
            (batch_size,), **{**old, **evaluated, "node_visits": old["node_visits"] + 1}
        )
        target = jnp.where(revisit, walk.child, num_nodes)
        table = _set(table, (target, batch), again)
        embeddings = jax.tree.map(lambda x, e: _set(x, (target, batch), e), embeddings, embedding)
        # Their row `new_node` keeps the empty node.
        row = jnp.where(revisit[:, None], layout.rows(()), row)
        embedding = jax.tree.map(
            lambda e: jnp.where(revisit.reshape((-1,) + (1,) * (e.ndim - 1)), 0, e), embedding
        )
        child = jnp.where(revisit, walk.child, new_node)
    else:
        child = jnp.full_like(walk.child, new_node)
    # Every game writes row `new_node`: one contiguous block, updated in place.
    table = jax.lax.dynamic_update_index_in_dim(table, row, new_node, axis=0)
    embeddings = jax.tree.map(
        lambda x, e: jax.lax.dynamic_update_index_in_dim(x, e.astype(x.dtype), new_node, axis=0),
        embeddings,
        embedding,
    )
    # The edge to the child.
    edge = {
        "children_index": child,
        "children_rewards": step.reward,
        "children_discounts": step.discount,
    }
    columns = layout.columns(edge, walk.action)  # [B, 3]
    values = jnp.stack([layout.store(name, field) for name, field in edge.items()], axis=-1)
    table = _set(table, (walk.parent[:, None], batch[:, None], columns), values)
    return table, embeddings, step


def _backward(
    table: chex.Array,
    path: chex.Array,
    length: chex.Array,
    step: mctx.RecurrentFnOutput,
    layout: _Layout,
) -> chex.Array:
    """Backs each game's new value up its path `[D, B, 7]` to the root, one depth at a time.

    Every node on the path gets one more visit and the running mean of the returns through
    it; every edge one more visit and its child's new mean value. The walk recorded the
    statistics this reads; only the last edge's reward and discount are new (`step`).
    """
    batch = jnp.arange(length.shape[0])
    num_nodes = table.shape[0]
    # The leaf's value, as stored in the tree.
    leaf_value = step.value.astype(layout.value_dtype)  # [B]
    last_reward = step.reward.astype(layout.value_dtype)
    last_discount = step.discount.astype(layout.value_dtype)

    def cond(state):
        return state[0] >= 0

    def body(state):
        depth, table, value, child_value = state
        record = jax.lax.dynamic_index_in_dim(path, depth, axis=0, keepdims=False)  # [B, 7]
        record = {name: record[:, i] for i, name in enumerate(_PATH_COLUMNS)}
        node = record["node"].astype(jnp.int32)
        action = record["action"].astype(jnp.int32)
        count = record["node_visits"].astype(jnp.int32)
        on_path = depth < length  # [B]
        is_last = depth == length - 1
        reward = jnp.where(is_last, last_reward, record["children_rewards"].astype(value.dtype))
        discount = jnp.where(
            is_last, last_discount, record["children_discounts"].astype(value.dtype)
        )
        # The return seen from `node`, and its new running mean.
        value = jnp.where(on_path, reward + discount * value, value)
        node_value = record["node_values"].astype(value.dtype)
        parent_value = (node_value * count + value) / (count + 1.0)
        updates = {
            "node_visits": count + 1,
            "node_values": parent_value,
            "children_values": child_value,
            "children_visits": record["children_visits"].astype(jnp.int32) + 1,
        }
        columns = layout.columns(updates, action)  # [B, 4]
        values = jnp.stack([layout.store(name, field) for name, field in updates.items()], -1)
        # The games whose path is shorter write to row `num_nodes`, which the scatter drops.
        row = jnp.where(on_path, node, num_nodes)
        table = _set(table, (row[:, None], batch[:, None], columns), values)
        child_value = jnp.where(on_path, parent_value, child_value)
        return depth - 1, table, value, child_value

    state = (jnp.max(length) - 1, table, leaf_value, leaf_value)
    return jax.lax.while_loop(cond, body, state)[1]


def _split_each(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`jax.random.split` of each game's key: (the next keys [B], the keys to use now [B])."""
    pairs = jax.vmap(jax.random.split)(keys)  # [B, 2]
    return pairs[:, 0], pairs[:, 1]


def _set(x: chex.Array, index: tuple[chex.Array, ...], value: chex.Array) -> chex.Array:
    """`x` with `x[index] = value`, updated in place by XLA; out-of-range rows are dropped."""
    return x.at[index].set(value, mode="drop")


def _puct_action(
    keys: jax.Array,
    nodes: Tree,
    depth: chex.Numeric,
    *,
    is_root: bool,
    pb_c_init: chex.Numeric,
    pb_c_base: chex.Numeric,
    qtransform: QTransform,
) -> chex.Array:
    """PUCT (MuZero, Appendix B of https://arxiv.org/abs/1911.08265): action `[B]`.

    `nodes`: a batch of one-node trees; `keys [B]` give a tiny noise that breaks ties. At the
    root the invalid actions are excluded.
    """
    del depth
    visit_counts = nodes.children_visits[:, 0]  # [B, A]
    node_visit = nodes.node_visits  # [B, 1]
    pb_c = pb_c_init + jnp.log((node_visit + pb_c_base + 1.0) / pb_c_base)  # [B, 1]
    prior_probs = jax.nn.softmax(nodes.children_prior_logits[:, 0])  # [B, A]
    policy_score = jnp.sqrt(node_visit) * pb_c * prior_probs / (visit_counts + 1)
    value_score = jax.vmap(qtransform, in_axes=(0, None))(nodes, 0)  # [B, A]
    num_actions = visit_counts.shape[-1]
    noise = 1e-7 * jax.vmap(lambda key: jax.random.uniform(key, (num_actions,)))(keys)
    scores = value_score + policy_score + noise
    return _masked_argmax(scores, nodes.root_invalid_actions if is_root else None)


def _gumbel_root_action(
    keys: None,
    nodes: Tree,
    depth: chex.Numeric,
    *,
    table: chex.Array,
    max_num_considered_actions: int,
    qtransform: QTransform,
) -> chex.Array:
    """Sequential Halving with Gumbel at the root: action `[B]`.

    Of the actions with the visit count that Sequential Halving considers now, the one with
    the highest `gumbel + logits + q`.
    """
    del keys, depth
    visit_counts = nodes.children_visits[:, 0]  # [B, A]
    completed_qvalues = jax.vmap(qtransform, in_axes=(0, None))(nodes, 0)  # [B, A]
    num_valid_actions = jnp.sum(1 - nodes.root_invalid_actions, axis=-1).astype(jnp.int32)
    num_considered = jnp.minimum(max_num_considered_actions, num_valid_actions)  # [B]
    # Each simulation visits one root action, so their visit sum is the simulation index.
    simulation_index = jnp.sum(visit_counts, axis=-1)  # [B]
    considered_visit = table[num_considered, simulation_index][:, None]  # [B, 1]
    scores = _score_considered(
        considered_visit,
        nodes.extra_data.root_gumbel,
        nodes.children_prior_logits[:, 0],
        completed_qvalues,
        visit_counts,
    )
    return _masked_argmax(scores, nodes.root_invalid_actions)


def _gumbel_interior_action(
    keys: None, nodes: Tree, depth: chex.Numeric, *, qtransform: QTransform,
    reply_depth: int = 0,
) -> chex.Array:
    """Gumbel MuZero below the root: action `[B]`, deterministic, at nodes `depth` edges deep.

    The action whose visit frequency lags most behind softmax(prior_logits + completed Q).
    With `reply_depth` (not in mctx), at an odd depth up to `reply_depth`: first each legal
    action not visited yet, the highest prior logit first (see `gumbel_muzero_policy`).
    """
    del keys
    visit_counts = nodes.children_visits[:, 0]  # [B, A]
    completed_qvalues = jax.vmap(qtransform, in_axes=(0, None))(nodes, 0)  # [B, A]
    logits = nodes.children_prior_logits[:, 0]  # [B, A]
    probs = jax.nn.softmax(logits + completed_qvalues)
    scores = probs - visit_counts / (1 + jnp.sum(visit_counts, axis=-1, keepdims=True))
    if reply_depth:
        legal = logits > jnp.finfo(logits.dtype).min / 2
        unvisited = legal & (visit_counts == 0)  # [B, A]
        replying = (depth % 2 == 1) & (depth <= reply_depth)
        first = replying & jnp.any(unvisited, axis=-1, keepdims=True)
        # The unvisited actions share one completed Q, so their order by the improved policy
        # is their order by prior logit, which is compared exactly (no softmax rounding).
        scores = jnp.where(first, jnp.where(unvisited, logits, -jnp.inf), scores)
    return jnp.argmax(scores, axis=-1).astype(jnp.int32)


def _score_considered(considered_visit, gumbel, logits, qvalues, visit_counts):
    """Sequential Halving's score `[B, A]`: -inf for actions without `considered_visit` visits.

    `gumbel + logits + qvalues`, floored at -1e9 so that an action remains choosable when it is
    the only one considered.
    """
    logits = logits - jnp.max(logits, axis=-1, keepdims=True)
    penalty = jnp.where(visit_counts == considered_visit, 0, -jnp.inf)
    return jnp.maximum(-1e9, gumbel + logits + qvalues) + penalty


def _considered_visits_table(max_num_considered_actions: int, num_simulations: int) -> np.ndarray:
    """Sequential Halving's schedule: `table[m, i]` is the visit count that root actions must
    have to be chosen by simulation `i` when `m` actions are considered.

    Shape `[max_num_considered_actions + 1, num_simulations]`. Each phase visits every
    considered action equally, `max(1, num_simulations // (ceil(log2 m) * considered))` times,
    then halves the considered actions (to no fewer than 2).
    """
    table = np.zeros((max_num_considered_actions + 1, num_simulations), np.int32)
    for considered_max in range(max_num_considered_actions + 1):
        if considered_max <= 1:
            table[considered_max] = np.arange(num_simulations)
            continue
        log2max = math.ceil(math.log2(considered_max))
        sequence: list[int] = []
        visits = 0
        considered = considered_max
        while len(sequence) < num_simulations:
            extra_visits = max(1, int(num_simulations / (log2max * considered)))
            for _ in range(extra_visits):
                sequence += [visits] * considered
                visits += 1
            considered = max(2, considered // 2)
        table[considered_max] = sequence[:num_simulations]
    return table


def _masked_argmax(scores: chex.Array, invalid_actions: chex.Array | None) -> chex.Array:
    """The best valid action `[B]` (action 0 when none is valid)."""
    if invalid_actions is not None:
        scores = jnp.where(invalid_actions, -jnp.inf, scores)
    return jnp.argmax(scores, axis=-1).astype(jnp.int32)


def _mask_invalid_actions(logits: chex.Array, invalid_actions: chex.Array | None):
    """Logits with the invalid actions at the dtype's minimum, after subtracting the max.

    A finite minimum rather than -inf: when every action is invalid (a terminal state) a
    softmax over -inf would be NaN.
    """
    if invalid_actions is None:
        return logits
    chex.assert_equal_shape([logits, invalid_actions])
    logits = logits - jnp.max(logits, axis=-1, keepdims=True)
    return jnp.where(invalid_actions, jnp.finfo(logits.dtype).min, logits)


def _logits_from_probs(probs: chex.Array) -> chex.Array:
    return jnp.log(jnp.maximum(probs, jnp.finfo(probs.dtype).tiny))
