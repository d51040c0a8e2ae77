"""The game contract every game module fulfils, and the helpers they share.

A game is a `Game`: static metadata plus pure, jittable functions over a frozen state pytree.
Every state has at least these fields (shapes for one unbatched game, A = num_actions):

  current_player     int32[]    0 or 1: the side to move (player 0 always starts)
  legal_action_mask  bool[A]    legal moves of the side to move; all False once terminated
  terminated         bool[]     the game is over
  rewards            float32[2] per player id: +1 win / -1 loss / 0 draw, set only by the step
                                that ends the game, zero before and on every no-op step after it

Rules shared by every game (implemented once, in `make_step`):
  * stepping a terminated state is a no-op with zero rewards, so a batch can keep stepping;
  * an illegal action (not in `legal_action_mask`, or out of range) forfeits: the game ends at
    once, the side that played it gets -1 and the other +1, the board is unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

Array = jax.Array


class State(Protocol):
    """What every game's state holds (the module docstring gives the rules); each game's own
    frozen dataclass adds its board. Batched states add a leading axis to every field."""

    current_player: Array  # int32[]
    legal_action_mask: Array  # bool[A]
    terminated: Array  # bool[]
    rewards: Array  # float32[2]

BoardKind = Literal["grid", "drop_column"]


# eq=False: games are singletons compared (and hashed, e.g. as jit cache keys) by identity.
@dataclasses.dataclass(frozen=True, eq=False)
class Game:
    """One board game: metadata, pure rules, symmetry tables and text helpers.

    The functions below take and return *unbatched* states; `jax.vmap` them for batches.
    """

    name: str  # registry id, e.g. "connect4"
    display_name: str
    description: str
    num_actions: int
    observation_shape: tuple[int, int, int]  # (rows, cols, planes), from the side to move's view
    rows: int
    cols: int
    board_kind: BoardKind
    player_names: tuple[str, str]
    player_symbols: tuple[str, str]
    encoding_version: int  # bumped whenever `observe`'s layout or meaning changes

    init: Callable[[Array], State]  # (key) -> start position
    step: Callable[[State, Array], State]  # (state, int action) -> next state
    observe: Callable[[State], Array]  # float32[rows, cols, planes]
    greedy_scores: Callable[[State], Array]  # float32[A]: the greedy baseline's preference per move

    # Symmetries of the board, identity first. `cell_permutations[s, c]` is the cell whose
    # content lands on cell c under symmetry s; `action_permutations[s, a]` likewise for actions.
    cell_permutations: np.ndarray  # int32[S, rows * cols]
    action_permutations: np.ndarray  # int32[S, A]

    # Host-side helpers (plain Python, not jittable).
    from_text: Callable[[str], State]  # a position from the game's text format (see module)
    to_text: Callable[[State], str]  # a board drawn as text, for people
    action_to_text: Callable[[int], str]  # 0-based action -> move name ("d3", "4", "pass")
    action_from_text: Callable[[str], int]  # inverse of action_to_text; ValueError if unknown

    num_players: int = 2

    @property
    def num_symmetries(self) -> int:
        return int(self.action_permutations.shape[0])

    def symmetry(
        self, index: Array, observation: Array, policy: Array, legal_action_mask: Array
    ) -> tuple[Array, Array, Array]:
        """Symmetry number `index` (int32[], 0 = identity) of one training example.

        Args:
          observation: `[rows, cols, planes]` as returned by `observe`.
          policy: `[A]` a distribution (or any per-action values) over actions.
          legal_action_mask: `[A]` bool.
        Returns:
          `([rows, cols, planes], [A], [A])`, mapped together.
        """
        observation, policy = jnp.asarray(observation), jnp.asarray(policy)
        legal_action_mask = jnp.asarray(legal_action_mask)
        cells = observation.reshape(self.rows * self.cols, -1)
        cell_perm = jnp.asarray(self.cell_permutations)[index]  # [rows * cols]
        action_perm = jnp.asarray(self.action_permutations)[index]  # [A]
        return (
            cells[cell_perm].reshape(observation.shape),
            policy[action_perm],
            legal_action_mask[action_perm],
        )

    def symmetries(
        self, observation: Array, policy: Array, legal_action_mask: Array
    ) -> tuple[Array, Array, Array]:
        """Every symmetric copy of one training example, identity first: shapes gain a leading
        `[S]` axis (see `symmetry`)."""
        indices = jnp.arange(self.num_symmetries)
        return jax.vmap(self.symmetry, in_axes=(0, None, None, None))(
            indices, observation, policy, legal_action_mask
        )


@struct.dataclass
class CellBoardState:
    """The state of a game whose position is one int8 per cell (TicTacToe, Connect 4)."""

    board: jax.Array  # int8[cells]: 0 empty, 1 player 0's piece, 2 player 1's
    current_player: jax.Array  # int32[]
    legal_action_mask: jax.Array  # bool[A]
    terminated: jax.Array  # bool[]
    rewards: jax.Array  # float32[2]


def empty_cell_board(cells: int, num_actions: int) -> CellBoardState:
    """An empty board, player 0 to move, every action legal."""
    return CellBoardState(
        board=jnp.zeros(cells, jnp.int8),
        current_player=jnp.int32(0),
        legal_action_mask=jnp.ones(num_actions, jnp.bool_),
        terminated=jnp.bool_(False),
        rewards=jnp.zeros(2, jnp.float32),
    )


def make_step(apply_legal_move: Callable[[State, Array], State]) -> Callable[[State, Array], State]:
    """Wraps a game's move function with the shared rules for finished games and illegal moves.

    `apply_legal_move(state, action)` needs to be right only for legal actions in live games;
    whatever it returns otherwise is discarded (both branches are computed: no Python control
    flow on traced values).
    """

    def step(state: State, action: Array) -> State:
        action = jnp.asarray(action, jnp.int32)
        num_actions = state.legal_action_mask.shape[-1]
        in_range = (action >= 0) & (action < num_actions)
        safe_action = jnp.clip(action, 0, num_actions - 1)
        legal = in_range & state.legal_action_mask[safe_action]

        moved = apply_legal_move(state, safe_action)
        mover = state.current_player
        forfeit = state.replace(
            terminated=jnp.bool_(True),
            legal_action_mask=jnp.zeros_like(state.legal_action_mask),
            rewards=jnp.where(jnp.arange(2) == mover, -1.0, 1.0).astype(jnp.float32),
        )
        finished = state.replace(rewards=jnp.zeros_like(state.rewards))
        return tree_where(state.terminated, finished, tree_where(legal, moved, forfeit))

    return step


def tree_where(condition: Array, on_true: State, on_false: State) -> State:
    """Selects between two states of the same structure, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


def where_batched(condition: Array, on_true: Any, on_false: Any) -> Any:
    """Selects per game between two batched pytrees: `condition` is bool[B], leaves [B, ...]."""
    return jax.tree.map(
        lambda a, b: jnp.where(condition.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
        on_true,
        on_false,
    )


def lines_through_each_cell(rows: int, cols: int, length: int) -> np.ndarray:
    """int32[rows * cols, L, length]: for each cell, the cells of every line of `length` in a
    row (horizontal, vertical, diagonal) through it, L the most lines any cell has.

    Shorter lists are padded with lines of the sentinel cell rows * cols, which the caller keeps
    empty (append a 0 to the board) so it never completes a line. Checking only the lines
    through the cell just played is what makes a win test cheap.
    """
    lines = []
    for row in range(rows):
        for col in range(cols):
            for d_row, d_col in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(row + k * d_row, col + k * d_col) for k in range(length)]
                if all(0 <= r < rows and 0 <= c < cols for r, c in cells):
                    lines.append([r * cols + c for r, c in cells])
    through = [[line for line in lines if cell in line] for cell in range(rows * cols)]
    table = np.full((rows * cols, max(map(len, through)), length), rows * cols, dtype=np.int32)
    for cell, cell_lines in enumerate(through):
        table[cell, : len(cell_lines)] = cell_lines
    return table


def completes_line(board: Array, cell: Array, piece: Array, lines_through: np.ndarray) -> Array:
    """bool[]: whether `piece` on int8 `board` has a full line through `cell`."""
    padded = jnp.append(board, jnp.zeros(1, board.dtype))  # the sentinel cell stays empty
    return jnp.any(jnp.all(padded[jnp.asarray(lines_through)[cell]] == piece, axis=1))


def piece_planes(board: Array, current_player: Array, rows: int, cols: int) -> Array:
    """float32[rows, cols, 2] from an int8 board (0 empty, p + 1 for player p's pieces):
    plane 0 the side to move's pieces, plane 1 the opponent's."""
    own = board == current_player + 1
    opponent = board == 2 - current_player
    return jnp.stack([own, opponent], axis=-1).reshape(rows, cols, 2).astype(jnp.float32)


def outcome_rewards(winner: Array, terminated: Array) -> Array:
    """float32[2] rewards for `winner` (0, 1, or -1 for a draw), zero unless `terminated`."""
    players = jnp.arange(2)
    rewards = jnp.where(winner < 0, 0.0, jnp.where(players == winner, 1.0, -1.0))
    return jnp.where(terminated, rewards, 0.0).astype(jnp.float32)


def threat_scores(step: Callable[[State, Array], State], state: State) -> Array:
    """Greedy preferences for games won by making a line: win now, else don't let them win next.

    float32[A]: 2 for a move that wins at once, -1 for a move after which the opponent has an
    immediate win (so the block of a single threat is the only move scored 0), 0 otherwise.
    Costs A * A steps: meant for small games (TicTacToe, Connect 4).
    """
    num_actions = state.legal_action_mask.shape[-1]
    actions = jnp.arange(num_actions)
    mover = state.current_player
    step_all = jax.vmap(step, in_axes=(None, 0))
    after = step_all(state, actions)  # [A] states
    wins_now = after.rewards[:, mover] > 0  # [A]

    def opponent_wins_next(next_state: State) -> Array:
        replies = step_all(next_state, actions)
        return jnp.any(next_state.legal_action_mask & (replies.rewards[:, 1 - mover] > 0))

    loses_next = jax.vmap(opponent_wins_next)(after)  # [A]
    return jnp.where(wins_now, 2.0, jnp.where(loses_next, -1.0, 0.0)).astype(jnp.float32)


def dihedral_permutations(size: int) -> np.ndarray:
    """int32[8, size*size]: the 8 symmetries of a square board as cell permutations.

    Row r of the result maps target cell c to the source cell whose content lands there.
    Identity first, then the three rotations, then the four reflections (transpose, rotated).
    """
    index = np.arange(size * size).reshape(size, size)
    views = [np.rot90(index, turns) for turns in range(4)]
    views += [np.rot90(index.T, turns) for turns in range(4)]
    return np.stack([v.reshape(-1) for v in views]).astype(np.int32)


def mirror_permutation(rows: int, cols: int) -> np.ndarray:
    """int32[2, rows*cols]: identity and the left-right mirror of a rows x cols board."""
    index = np.arange(rows * cols).reshape(rows, cols)
    return np.stack([index.reshape(-1), index[:, ::-1].reshape(-1)]).astype(np.int32)


def board_text(
    cells: np.ndarray, symbols: str, column_labels: str, row_labels: list[str]
) -> str:
    """Draws a board: `cells` int[rows, cols] indexes `symbols`; labels around the grid."""
    width = max(len(label) for label in row_labels)
    lines = [" " * (width + 1) + " ".join(column_labels)]
    for label, row in zip(row_labels, cells):
        lines.append(label.rjust(width) + " " + " ".join(symbols[v] for v in row))
    return "\n".join(lines)


def replay_digit_moves(game: Game, moves: str) -> State:
    """The position after `moves`, one 1-based action digit per ply from the start.

    Host-side (for text input and tests); a ValueError names the first bad or illegal move.
    """
    digits = "123456789"[: game.num_actions]
    state = game.init(jax.random.key(0))
    step_once = jax.jit(game.step)
    for ply, char in enumerate(moves.strip(), start=1):
        if char not in digits:
            raise ValueError(
                f"{game.display_name} move {char!r} at ply {ply}: use digits 1-{game.num_actions}"
            )
        action = int(char) - 1
        if bool(state.terminated) or not bool(state.legal_action_mask[action]):
            raise ValueError(f"{game.display_name} move {char!r} at ply {ply} of {moves!r} is illegal")
        state = step_once(state, action)
    return state


# --- random choices among allowed moves (openings, baseline agents, playouts) -----------------


def uniform_among(key: jax.Array, allowed: jax.Array) -> jax.Array:
    """A uniformly random index among the True entries of bool[A] `allowed`."""
    # finfo.min rather than -inf: an all-False row (a finished game) must not produce NaN.
    logits = jnp.where(allowed, 0.0, jnp.finfo(jnp.float32).min)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def index_among(uniform: jax.Array, allowed: jax.Array) -> jax.Array:
    """The index of the k-th True entry of bool[A] `allowed`, k = floor(`uniform` x their count):
    a uniformly random allowed index from one uniform number in [0, 1).

    Self-play's random openings use it: one uniform per game and ply is cheaper than a
    categorical over every move. The agents keep `uniform_among`, whose random stream the
    shipped models' cards were measured with.
    """
    count = jnp.sum(allowed, dtype=jnp.int32)
    k = jnp.minimum(jnp.floor(uniform * count).astype(jnp.int32), count - 1)
    return jnp.argmax(jnp.cumsum(allowed, dtype=jnp.int32) > k).astype(jnp.int32)
