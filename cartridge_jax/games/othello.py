"""Othello (Reversi) on an 8x8 board. Black (X, player 0) moves first.

Squares and actions are row-major, row 1 at the top, column a on the left; moves are named
column letter + row number (the FForum/Edax convention):

        a  b  c  d  e  f  g  h
    1   0  1  2  3  4  5  6  7
    2   8  9 10 11 12 13 14 15
    3  16 17 18 19 20 21 22 23
    4  24 25 26 27 28 29 30 31        start: d4, e5 white; d5, e4 black
    5  32 33 34 35 36 37 38 39
    6  40 41 42 43 44 45 46 47
    7  48 49 50 51 52 53 54 55
    8  56 57 58 59 60 61 62 63        action 64 = pass

Rules: a move must flip at least one line of opponent discs, bracketed between the new disc and
one of the mover's, in any of the 8 directions. Pass (64) is legal only when the side to move
has no other move, and is a real ply. The game ends when neither side can move (a full board
included); more discs wins. Rewards are +1/-1/0 only: the margin is `disc_difference`.
Observation: float32[8, 8, 2]; plane 0 the side to move's discs, plane 1 the opponent's.
Text format (`from_text`): 64 characters for a1..h1, a2..h8 ('X' black, 'O' white, '-' or '.'
empty), whitespace, the side to move ('X' or 'O'); anything after a ';' is ignored, so lines
of Edax .obf files parse as they are. The board drawn by `to_text` parses too.

Boards are bitboards held as two uint32 words (no 64-bit integers: jax_enable_x64 stays off):
the low word holds squares 0..31, the high word squares 32..63, bit i of a word is square
i (+ 32). Moves and flips come from direction-wise flood fills (dumb7fill) over the pair.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from cartridge_jax.games import base

ROWS = COLS = 8
NUM_SQUARES = 64
PASS = 64
NUM_ACTIONS = 65
ENCODING_VERSION = 1

_COLUMN_NAMES = "abcdefgh"
_FULL = np.uint32(0xFFFFFFFF)
# Columns b..g. A bracketed run of discs never touches column a or h in a sideways or diagonal
# direction, so masking the runs to these columns stops shifts from wrapping into the next row.
_INNER = np.uint32(0x7E7E7E7E)
# (square offset, mask of the squares a run may cross) for the 8 directions.
_DIRECTIONS = (
    (1, _INNER),  # east
    (-1, _INNER),  # west
    (8, _FULL),  # south: bits shifted past either end fall off, no wrap possible
    (-8, _FULL),  # north
    (9, _INNER),  # south-east
    (-9, _INNER),  # north-west
    (7, _INNER),  # south-west
    (-7, _INNER),  # north-east
)
_BIT = np.arange(32, dtype=np.uint32)  # [32] bit positions within a word

Bits = tuple[jax.Array, jax.Array]  # a bitboard: (low word, high word), uint32 arrays alike


def _square_bits(squares: np.ndarray) -> np.ndarray:
    """uint32[..., 2]: the bitboard words of a single square each (numpy, at import)."""
    squares = np.asarray(squares, np.int64)
    word = np.stack([squares < 32, squares >= 32], axis=-1)
    return np.where(word, np.left_shift(1, squares[..., None] % 32), 0).astype(np.uint32)


_SQUARE_BITS = _square_bits(np.arange(NUM_SQUARES))  # [64, 2]
# [2, 2] discs of the start position, indexed [player, word].
_START_DISCS = np.stack(
    [_SQUARE_BITS[[28, 35]].sum(0), _SQUARE_BITS[[27, 36]].sum(0)]  # black e4 d5; white d4 e5
).astype(np.uint32)


@struct.dataclass
class State:
    discs: jax.Array  # uint32[2, 2]: discs[p] = player p's bitboard as (low word, high word)
    current_player: jax.Array  # int32[]
    legal_action_mask: jax.Array  # bool[65]
    terminated: jax.Array  # bool[]
    rewards: jax.Array  # float32[2]


def _shift(board: Bits, offset: int) -> Bits:
    """Moves every disc `offset` squares (to higher squares when positive) across both words."""
    low, high = board
    if offset > 0:
        return low << offset, (high << offset) | (low >> (32 - offset))
    offset = -offset
    return (low >> offset) | (high << (32 - offset)), high >> offset


def _legal_moves(own: Bits, opponent: Bits) -> Bits:
    """The empty squares where `own`'s side flips something. Broadcasts over any shape."""
    empty_low, empty_high = ~(own[0] | opponent[0]), ~(own[1] | opponent[1])
    moves_low = moves_high = jnp.zeros_like(empty_low)
    for offset, mask in _DIRECTIONS:
        run_low, run_high = opponent[0] & mask, opponent[1] & mask
        low, high = _shift(own, offset)
        low, high = low & run_low, high & run_high
        for _ in range(5):  # a run is at most 6 discs long
            next_low, next_high = _shift((low, high), offset)
            low, high = low | (next_low & run_low), high | (next_high & run_high)
        low, high = _shift((low, high), offset)
        moves_low, moves_high = moves_low | (low & empty_low), moves_high | (high & empty_high)
    return moves_low, moves_high


def _flips(own: Bits, opponent: Bits, move: Bits) -> Bits:
    """The opponent discs that a disc placed on `move` (one bit, or none) flips. Broadcasts."""
    flips_low = flips_high = jnp.zeros_like(move[0] | own[0])
    for offset, mask in _DIRECTIONS:
        run_low, run_high = opponent[0] & mask, opponent[1] & mask
        low, high = _shift(move, offset)
        low, high = low & run_low, high & run_high
        for _ in range(5):
            next_low, next_high = _shift((low, high), offset)
            low, high = low | (next_low & run_low), high | (next_high & run_high)
        # The run is bracketed if the square just past its end is the mover's own.
        end_low, end_high = _shift((low, high), offset)
        bracketed = ((end_low & own[0]) | (end_high & own[1])) != 0
        flips_low = flips_low | jnp.where(bracketed, low, 0)
        flips_high = flips_high | jnp.where(bracketed, high, 0)
    return flips_low, flips_high


def _computed_once(board: Bits, player: jax.Array) -> Bits:
    """`board` unchanged, as values XLA computes once rather than again in every consumer.

    XLA:CPU fuses cheap elementwise producers into each consumer, so without this the ~300-op
    flood fills would be re-run for every output that reads them (each of the 65 mask entries,
    the rewards, ...): 2-4x slower batched steps on CPU. XLA does not duplicate an integer
    division by a value unknown at compile time, so the fusion splits there and the fills run
    once. (`lax.optimization_barrier` does not help: XLA:CPU drops it before fusion.)
    """
    one = jnp.uint32(1) | (player.astype(jnp.uint32) >> 31)  # player is 0 or 1, so always 1
    return board[0] // one, board[1] // one


def _square_mask(board: Bits) -> jax.Array:
    """bool[..., 64]: the squares set in `board`."""
    low, high = board
    return jnp.concatenate(
        [((low[..., None] >> _BIT) & 1) != 0, ((high[..., None] >> _BIT) & 1) != 0], axis=-1
    )


def _disc_counts(discs: jax.Array) -> jax.Array:
    """int32[2]: discs per player."""
    return jax.lax.population_count(discs).astype(jnp.int32).sum(-1)


def _side_boards(discs: jax.Array, player: jax.Array) -> tuple[Bits, Bits]:
    """(own, opponent) bitboards of `player`, selected without a gather."""
    own = jnp.where(player == 0, discs[0], discs[1])  # [2]
    opponent = jnp.where(player == 0, discs[1], discs[0])  # [2]
    return (own[0], own[1]), (opponent[0], opponent[1])


@jax.jit
def position(discs: jax.Array, player: jax.Array) -> State:
    """The full state of the board `discs` with `player` to move: legal moves, pass, the end.

    Shared by `step` (after every move), `init` / `from_text` (so a parsed position is exactly
    the state play would reach) and alpha-beta's evaluation (the other side's mobility).
    """
    player = jnp.asarray(player, jnp.int32)
    # Both sides' moves in one set of ops: row 0 for `player`, row 1 for the opponent.
    own, opponent = _side_boards(discs, player)
    both_own = (jnp.stack([own[0], opponent[0]]), jnp.stack([own[1], opponent[1]]))  # [2] each
    both_opponent = (both_own[0][::-1], both_own[1][::-1])
    moves_low, moves_high = _computed_once(_legal_moves(both_own, both_opponent), player)  # [2]
    can_move = (moves_low | moves_high) != 0  # [2]: player, opponent
    terminated = ~can_move[0] & ~can_move[1]
    must_pass = ~can_move[0] & can_move[1]
    legal_action_mask = jnp.concatenate(
        [_square_mask((moves_low[0], moves_high[0])), must_pass[None]]
    )  # [65]; all False when terminated since neither side has a move
    counts = _disc_counts(discs)
    winner = jnp.where(counts[0] > counts[1], 0, jnp.where(counts[1] > counts[0], 1, -1))
    return State(
        discs=discs,
        current_player=player,
        legal_action_mask=legal_action_mask,
        terminated=terminated,
        rewards=base.outcome_rewards(winner, terminated),
    )


def init(key: jax.Array) -> State:
    """The standard start, Black to move. The start is deterministic: `key` is unused."""
    del key
    return position(jnp.asarray(_START_DISCS), jnp.int32(0))


def _apply_legal_move(state: State, action: jax.Array) -> State:
    mover = state.current_player
    own, opponent = _side_boards(state.discs, mover)
    # The move's bit; both words are 0 for the pass, which then flips nothing.
    shift = (action & 31).astype(jnp.uint32)
    move = (
        jnp.where(action < 32, jnp.uint32(1) << shift, jnp.uint32(0)),
        jnp.where((action >= 32) & (action < PASS), jnp.uint32(1) << shift, jnp.uint32(0)),
    )
    flips = _computed_once(_flips(own, opponent, move), mover)
    new_own = jnp.stack([own[0] | move[0] | flips[0], own[1] | move[1] | flips[1]])  # [2]
    new_opponent = jnp.stack([opponent[0] & ~flips[0], opponent[1] & ~flips[1]])  # [2]
    discs = jnp.where(
        mover == 0, jnp.stack([new_own, new_opponent]), jnp.stack([new_opponent, new_own])
    )  # [2, 2]
    return position(discs, 1 - mover)


step = base.make_step(_apply_legal_move)


def observe(state: State) -> jax.Array:
    """float32[8, 8, 2]: the side to move's discs, then the opponent's."""
    own, opponent = _side_boards(state.discs, state.current_player)
    planes = jnp.stack([_square_mask(own), _square_mask(opponent)], axis=-1)  # [64, 2]
    return planes.reshape(ROWS, COLS, 2).astype(jnp.float32)


def greedy_scores(state: State) -> jax.Array:
    """float32[65]: how many discs each move flips (the pass scores 0; illegal moves too)."""
    own, opponent = _side_boards(state.discs, state.current_player)
    every_move = (jnp.asarray(_SQUARE_BITS[:, 0]), jnp.asarray(_SQUARE_BITS[:, 1]))  # [64] each
    low, high = _flips(own, opponent, every_move)  # [64] each
    counts = jax.lax.population_count(low) + jax.lax.population_count(high)
    return jnp.concatenate([counts, jnp.zeros(1, counts.dtype)]).astype(jnp.float32)


def disc_difference(state: State) -> jax.Array:
    """int32[]: Black's (player 0's) discs minus White's. The margin, apart from `rewards`."""
    counts = _disc_counts(state.discs)
    return counts[0] - counts[1]


def action_to_text(action: int) -> str:
    if action == PASS:
        return "pass"
    if not 0 <= action < PASS:
        raise ValueError(f"{action!r} is not an Othello action: use 0-63 for a square, 64 to pass")
    return _COLUMN_NAMES[action % COLS] + str(action // COLS + 1)


def action_from_text(text: str) -> int:
    text = text.strip().lower()
    if text == "pass":
        return PASS
    if len(text) != 2 or text[0] not in _COLUMN_NAMES or text[1] not in "12345678":
        raise ValueError(
            f"{text!r} is not an Othello move: use a column a-h and a row 1-8 (e.g. d3), or pass"
        )
    return (int(text[1]) - 1) * COLS + _COLUMN_NAMES.index(text[0])


def _squares_from_drawing(text: str) -> tuple[str, str] | None:
    """(64 square characters, side) from a board drawn by `to_text`; None if it isn't one."""
    rows = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == COLS + 1 and fields[0] in "12345678" and len(fields[0]) == 1:
            rows[int(fields[0])] = "".join(fields[1:])
    side = re.search(r"\(([XO])[ )]", text)
    if sorted(rows) != list(range(1, ROWS + 1)) or side is None:
        return None
    return "".join(rows[r] for r in range(1, ROWS + 1)), side.group(1)


def from_text(text: str) -> State:
    """The position in `text` (see the module docstring), with its legal moves.

    A finished position (neither side can move) carries its outcome in `rewards`.
    """
    body = text.split(";")[0]
    fields = body.split()
    if len(fields) == 2 and len(fields[0]) == NUM_SQUARES:
        squares, side = fields
    elif (drawn := _squares_from_drawing(body)) is not None:
        squares, side = drawn
    else:
        raise ValueError(
            f"{text[:80]!r} is not an Othello position: write 64 squares a1..h8 "
            "(X, O, - or .), a space and the side to move (X or O)"
        )
    if len(squares) != NUM_SQUARES:
        raise ValueError(f"Othello board has {len(squares)} squares: write 64, a1..h8")
    if bad := sorted(set(squares) - set("XO-.")):
        raise ValueError(f"Othello square characters {bad} unknown: use X, O, - or . (empty)")
    if side not in ("X", "O"):
        raise ValueError(f"Othello side to move {side!r} unknown: use X (Black) or O (White)")
    cells = np.frombuffer(squares.encode(), np.uint8)  # [64]
    discs = np.stack(
        [_SQUARE_BITS[cells == ord(symbol)].sum(0, dtype=np.uint32) for symbol in "XO"]
    )  # [2, 2]; distinct single bits, so the sum is their union
    return position(discs, np.int32("XO".index(side)))


def position_text(state: State) -> str:
    """The compact form `from_text` reads: 64 squares a1..h8, a space, the side to move."""
    cells = _cells(state).reshape(-1)
    return "".join("-XO"[c] for c in cells) + " " + "XO"[int(state.current_player)]


def _cells(state: State) -> np.ndarray:
    """int[8, 8]: 0 empty, 1 Black, 2 White."""
    discs = np.asarray(state.discs)
    bits = (discs[..., None] >> np.arange(32, dtype=np.uint32)) & 1  # [2, 2, 32]
    black, white = bits.reshape(2, NUM_SQUARES)
    return (black + 2 * white).reshape(ROWS, COLS)


def to_text(state: State) -> str:
    board = base.board_text(_cells(state), ".XO", _COLUMN_NAMES, [str(r + 1) for r in range(ROWS)])
    player = int(state.current_player)
    mover = f"{GAME.player_names[player]} ({GAME.player_symbols[player]})"
    if not bool(state.terminated):
        return f"{board}\n{mover} to move"
    cells = _cells(state)
    black, white = int(np.sum(cells == 1)), int(np.sum(cells == 2))
    return f"{board}\nGame over, Black {black} - White {white} ({GAME.player_symbols[player]} next)"


_SYMMETRIES = base.dihedral_permutations(ROWS)  # [8, 64]

GAME = base.Game(
    name="othello",
    display_name="Othello",
    description=(
        "Outflank and flip your opponent's discs on an 8x8 board; the most discs at the end wins."
        " Black moves first; pass only when you have no move."
    ),
    num_actions=NUM_ACTIONS,
    observation_shape=(ROWS, COLS, 2),
    rows=ROWS,
    cols=COLS,
    board_kind="grid",
    player_names=("Black", "White"),
    player_symbols=("X", "O"),
    encoding_version=ENCODING_VERSION,
    init=init,
    step=step,
    observe=observe,
    greedy_scores=greedy_scores,
    cell_permutations=_SYMMETRIES,
    # The pass is its own image under every symmetry.
    action_permutations=np.concatenate(
        [_SYMMETRIES, np.full((len(_SYMMETRIES), 1), PASS, np.int32)], axis=1
    ),
    from_text=from_text,
    to_text=to_text,
    action_to_text=action_to_text,
    action_from_text=action_from_text,
)
