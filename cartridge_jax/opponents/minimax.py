"""Depth-limited minimax with a classic evaluation per game: the `alphabeta:<depth>` opponent.

Alpha-beta pruning only skips branches that cannot change the root's value, so it returns the
value of full-width minimax. On a batched device full width is the faster way to get that value:
each position's tree is expanded level by level with `vmap` (the depth is static), every level
one batched step, with no data-dependent control flow. The cost is the number of leaves,
branching ** depth per move (Connect 4 at depth 5: 7**5 = 16,807).

Values are negamax values, from the side to move's view:
  * a finished game: +-(WIN + plies left in the search) for a win or a loss, 0 for a draw, so a
    win found sooner scores higher and a loss later scores higher (the engine wins fast and
    holds out longest when lost);
  * the search horizon: the game's heuristic `evaluation`, far below WIN:
      TicTacToe  0: wins and losses only (for perfect play use the `perfect` opponent)
      Connect 4  for each of the 69 lines of four that only one side occupies, +2 for two of
                 that side's pieces and +5 for three (the side to move's count positively, the
                 opponent's negatively), plus 3 per piece in the centre column (own - theirs)
      Othello    a positional weight table (corners 100, squares next to corners -20/-50)
                 summed over own discs minus the opponent's, plus 5 x (own legal moves -
                 the opponent's legal moves) (mobility)

`move_values(game, depth, states)` gives the value of every move; `agent` plays uniformly at
random among the moves of equal best value (ties are common: mirrored moves, equal heuristics),
which makes repeated games differ while staying reproducible from the key.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cartridge_jax.games import Game, State, othello
from cartridge_jax.games.base import uniform_among

WIN = 1e6  # beyond any heuristic value; a finished game is worth WIN + plies left

# Moves expanded per position: every action, except Othello's 65 (64 squares and the pass),
# where the legal moves are packed into the first slots. No reachable Othello position is
# known to have more than 33 legal moves; any beyond 33 would be left unsearched.
BRANCHING = {"tictactoe": 9, "connect4": 7, "othello": 33}

# Positions evaluated per move at most (branching ** depth): bounds time and memory per move.
MAX_LEAVES = 1_000_000
LEAVES_PER_CHUNK = 32_768  # positions searched together (see `agent`)


# --- heuristics: float32[] from the side to move's view -----------------------------------------


CONNECT4_CENTRE_WEIGHT = 3.0

OTHELLO_WEIGHTS = np.asarray([
    [100, -20, 10, 5, 5, 10, -20, 100],
    [-20, -50, -2, -2, -2, -2, -50, -20],
    [10, -2, -1, -1, -1, -1, -2, 10],
    [5, -2, -1, -1, -1, -1, -2, 5],
    [5, -2, -1, -1, -1, -1, -2, 5],
    [10, -2, -1, -1, -1, -1, -2, 10],
    [-20, -50, -2, -2, -2, -2, -50, -20],
    [100, -20, 10, 5, 5, 10, -20, 100],
], np.float32)  # [8, 8]
OTHELLO_MOBILITY_WEIGHT = 5.0


def tictactoe_evaluation(state: State) -> jax.Array:
    del state
    return jnp.float32(0.0)


def _pieces_in_lines_of_four(pieces: jax.Array) -> jax.Array:
    """float32[69]: pieces (float32[6, 7], 1 where a piece is) in every line of four.

    Sums of four shifted slices of the board per direction (24 horizontal, 21 vertical,
    12 + 12 diagonal lines): static slices, no gather.
    """
    horizontal = sum(pieces[:, k:k + 4] for k in range(4))  # [6, 4]
    vertical = sum(pieces[k:k + 3, :] for k in range(4))  # [3, 7]
    diagonal = sum(pieces[k:k + 3, k:k + 4] for k in range(4))  # [3, 4]
    anti_diagonal = sum(pieces[k:k + 3, 3 - k:7 - k] for k in range(4))  # [3, 4]
    return jnp.concatenate([x.reshape(-1) for x in (horizontal, vertical, diagonal, anti_diagonal)])


def connect4_evaluation(state: State) -> jax.Array:
    board = state.board.reshape(6, 7)
    own = (board == state.current_player + 1).astype(jnp.float32)  # [6, 7]
    theirs = (board == 2 - state.current_player).astype(jnp.float32)
    own_count = _pieces_in_lines_of_four(own)  # [69]
    their_count = _pieces_in_lines_of_four(theirs)

    def one_sided(count, other_count):  # +2 for two pieces, +5 for three, in lines they alone hold
        weight = jnp.where(count == 2, 2.0, jnp.where(count == 3, 5.0, 0.0))
        return jnp.sum(jnp.where(other_count == 0, weight, 0.0))

    centre = jnp.sum(own[:, 3] - theirs[:, 3])
    return (one_sided(own_count, their_count) - one_sided(their_count, own_count)
            + CONNECT4_CENTRE_WEIGHT * centre)


def othello_evaluation(state: State) -> jax.Array:
    planes = othello.observe(state)  # [8, 8, 2]: own discs, the opponent's
    position = jnp.sum((planes[..., 0] - planes[..., 1]) * jnp.asarray(OTHELLO_WEIGHTS))
    # The opponent's moves: the rules' own constructor of a position, with the other side to move.
    their_state = othello.position(state.discs, 1 - state.current_player)
    mobility = (state.legal_action_mask[:othello.PASS].sum()
                - their_state.legal_action_mask[:othello.PASS].sum())
    return position + OTHELLO_MOBILITY_WEIGHT * mobility


EVALUATIONS = {
    "tictactoe": tictactoe_evaluation,
    "connect4": connect4_evaluation,
    "othello": othello_evaluation,
}


# --- search -------------------------------------------------------------------------------------


def check_depth(game: Game, depth: int) -> None:
    """ValueError (one line) unless `depth` is a searchable depth for `game`."""
    branching = BRANCHING[game.name]
    deepest = int(np.floor(np.log(MAX_LEAVES) / np.log(branching) + 1e-9))
    if not 1 <= depth <= deepest:
        raise ValueError(f"alphabeta:{depth} for {game.display_name}: use a depth from 1 to "
                         f"{deepest} (depth d evaluates {branching}**d positions per move)")


def _children(game: Game, state: State) -> tuple[State, jax.Array, jax.Array]:
    """One position's (children [K], their actions int32[K], bool[K] slots holding a legal move)."""
    branching = BRANCHING[game.name]
    legal = state.legal_action_mask
    if branching == game.num_actions:
        actions = jnp.arange(branching)
        used = legal
    else:
        actions = jnp.nonzero(legal, size=branching, fill_value=0)[0]
        used = jnp.arange(branching) < legal.sum()
    children = jax.vmap(game.step, in_axes=(None, 0))(state, actions)
    return children, actions.astype(jnp.int32), used


def _finished_value(states: State, plies_left: int) -> jax.Array:
    """float32[M]: finished games' values for their side to move: -(WIN + plies_left) for a
    loss, + for a win, 0 for a draw."""
    rewards = jnp.take_along_axis(states.rewards, states.current_player[:, None], axis=1)[:, 0]
    return rewards * (WIN + plies_left)


def move_values(game: Game, depth: int, state: State) -> jax.Array:
    """float32[A]: the minimax value of each legal move of `state` (one position), searched
    `depth` plies deep counting the move itself, from the mover's view; -inf for illegal moves.

    The tree is kept level by level as flat batches (level l holds K**l positions), so each
    level is one batched step and the leaves one batched evaluation: nested vmaps, one per
    level, compile and run several times slower on CPU.
    """
    branching = BRANCHING[game.name]
    flat = lambda tree: jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), tree)
    levels = [jax.tree.map(lambda x: x[None], state)]  # [1]: the root
    used = []
    for _ in range(depth):
        children, actions, slot_used = jax.vmap(functools.partial(_children, game))(levels[-1])
        levels.append(flat(children))
        used.append(slot_used)  # [K**level, K]
    leaves = levels[-1]
    values = jnp.where(leaves.terminated, _finished_value(leaves, 0),
                       jax.vmap(EVALUATIONS[game.name])(leaves))
    for level in reversed(range(depth)):
        slot_values = jnp.where(used[level], -values.reshape(-1, branching), -jnp.inf)  # [M, K]
        parents = levels[level]
        values = jnp.where(parents.terminated, _finished_value(parents, depth - level),
                           jnp.max(slot_values, axis=-1))
    _, root_actions, _ = _children(game, state)  # [K]; recomputing them is cheap
    # Unused slots also name action 0: take each action's best slot, not a scatter's last.
    slot_is_action = root_actions[:, None] == jnp.arange(game.num_actions)  # [K, A]
    return jnp.max(jnp.where(slot_is_action, slot_values[0][:, None], -jnp.inf), axis=0)


def agent(game: Game, depth: int):
    """A batched agent `(key, states [B]) -> int32[B]`: a random move among the best valued."""
    check_depth(game, depth)
    # Trees a few at a time: the working set of one chunk stays in cache (all trees at once
    # ran ~10x slower per leaf at 25 Connect 4 roots of depth 5).
    roots_per_chunk = max(1, LEAVES_PER_CHUNK // BRANCHING[game.name] ** depth)

    def act(key, states):
        values = jax.lax.map(functools.partial(move_values, game, depth), states,
                             batch_size=roots_per_chunk)  # [B, A]
        best = states.legal_action_mask & (values == jnp.max(values, axis=-1, keepdims=True))
        keys = jax.random.split(key, states.current_player.shape[0])
        return jax.vmap(uniform_among)(keys, best)

    return act
