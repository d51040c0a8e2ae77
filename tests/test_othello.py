"""Othello rules: perft, hand-checked flips and passes, FForum positions, text and symmetries."""

from pathlib import Path

import jax
import numpy as np
import pytest

from cartridge_jax.games import othello

GAME = othello.GAME
REFDATA = Path(othello.__file__).parents[1] / "refdata" / "othello"
CHUNK = 2048  # one batch size for every batched step below, so `step` compiles once

step_one = jax.jit(othello.step)
step_batch = jax.jit(jax.vmap(othello.step))
observe_one = jax.jit(othello.observe)


def start():
    return othello.init(jax.random.key(0))


def position(rows, side):
    """A `from_text` position from 8 rows of 8 squares, row 1 first."""
    assert len(rows) == 8 and all(len(row) == 8 for row in rows)
    return othello.from_text("".join(rows) + " " + side)


def legal_names(state):
    return sorted(othello.action_to_text(int(a)) for a in np.flatnonzero(state.legal_action_mask))


def take(states, index):
    return jax.tree.map(lambda leaf: np.asarray(leaf)[index], states)


def step_many(states, actions):
    """Steps a host batch of states (numpy leaves) in fixed-size chunks; returns numpy leaves."""
    count = len(actions)
    results = []
    for begin in range(0, count, CHUNK):
        index = np.arange(begin, begin + CHUNK).clip(max=count - 1)  # pad with the last pair
        chunk = step_batch(take(states, index), actions[index])
        results.append(jax.tree.map(lambda leaf: np.asarray(leaf)[: count - begin], chunk))
    return jax.tree.map(lambda *leaves: np.concatenate(leaves), *results)


def random_positions(num_games, plies, seed=0):
    """Snapshots (numpy leaves, stacked) of `num_games` random games after each ply in `plies`."""
    rng = np.random.default_rng(seed)
    states = take(jax.vmap(othello.init)(jax.random.split(jax.random.key(0), num_games)), ...)
    snapshots = []
    for ply in range(1, max(plies) + 1):
        mask = np.asarray(states.legal_action_mask)
        noise = rng.random(mask.shape) * mask  # a random legal move (any move once over)
        states = step_many(states, noise.argmax(-1).astype(np.int32))
        if ply in plies:
            snapshots.append(states)
    return jax.tree.map(lambda *leaves: np.concatenate(leaves), *snapshots)


# --- start position and perft ---------------------------------------------------------------


def test_start_position():
    state = start()
    assert legal_names(state) == ["c4", "d3", "e6", "f5"]
    assert int(state.current_player) == 0
    assert not bool(state.terminated)
    assert int(othello.disc_difference(state)) == 0

    obs = np.asarray(observe_one(state))
    assert obs.shape == GAME.observation_shape and obs.dtype == np.float32
    expected = np.zeros((8, 8, 2), np.float32)
    expected[3, 4, 0] = expected[4, 3, 0] = 1  # Black, to move: e4, d5
    expected[3, 3, 1] = expected[4, 4, 1] = 1  # White: d4, e5
    np.testing.assert_array_equal(obs, expected)

    after = step_one(state, othello.action_from_text("d3"))  # flips d4
    expected = np.zeros((8, 8, 2), np.float32)
    expected[4, 4, 0] = 1  # White, now to move: e5
    expected[[2, 3, 3, 4], [3, 3, 4, 3], 1] = 1  # Black: d3, d4, e4, d5
    np.testing.assert_array_equal(np.asarray(observe_one(after)), expected)
    assert int(othello.disc_difference(after)) == 3
    assert legal_names(after) == ["c3", "c5", "e3"]


def test_perft_from_the_start():
    # Leaf counts at depth 0..6 (Aart Bik's Othello perft); a pass would count as a move.
    expected = [1, 4, 12, 56, 244, 1396, 8200]
    frontier = jax.tree.map(lambda leaf: np.asarray(leaf)[None], start())  # a batch of 1
    counts = [1]
    for depth in range(1, len(expected)):
        parents, actions = np.nonzero(frontier.legal_action_mask)
        counts.append(len(actions))
        if depth < len(expected) - 1:  # the last layer is counted from its parents' masks
            frontier = step_many(take(frontier, parents), actions.astype(np.int32))
    assert counts == expected


# --- flips, passes, the end ------------------------------------------------------------------


def test_a_move_flips_several_directions_at_once():
    state = position(
        [
            "--------",
            "---X----",
            "--XO---X",  # h3 X: "west of a4" if a shift wrapped around the board edge
            "OOO-OOX-",
            "--OOX---",
            "-X-O----",
            "--------",
            "--------",
        ],
        "X",
    )
    d4 = othello.action_from_text("d4")
    assert bool(state.legal_action_mask[d4])
    assert float(jax.jit(othello.greedy_scores)(state)[d4]) == 4
    after = step_one(state, d4)
    # North: d3 (bracketed by d2). East: e4 f4 (by g4). South-west: c5 (by b6). Not west: a4-c4
    # reach the edge; not south: d5 d6 end on an empty d7; not north-west/south-east: no run.
    assert othello.position_text(after) == "".join(
        [
            "--------",
            "---X----",
            "--XX---X",
            "OOOXXXX-",
            "--XOX---",
            "-X-O----",
            "--------",
            "--------",
        ]
    ) + " O"
    assert int(othello.disc_difference(after)) == 11 - 5


def test_greedy_scores_at_the_start():
    scores = np.asarray(jax.jit(othello.greedy_scores)(start()))
    assert scores.shape == (65,)
    legal = np.asarray(start().legal_action_mask)
    np.testing.assert_array_equal(scores[legal], [1, 1, 1, 1])
    assert scores[othello.PASS] == 0


def test_pass_only_when_no_other_move():
    # Black's b1 cannot outflank anything; White can play c1.
    state = othello.from_text("OX" + "-" * 62 + " X")
    assert not bool(state.terminated)
    assert np.flatnonzero(state.legal_action_mask).tolist() == [othello.PASS]
    assert legal_names(state) == ["pass"]

    passed = step_one(state, othello.PASS)
    np.testing.assert_array_equal(passed.discs, state.discs)
    assert int(passed.current_player) == 1
    assert legal_names(passed) == ["c1"]
    np.testing.assert_array_equal(passed.rewards, [0, 0])

    # White's c1 takes Black's last disc: neither side can move, White wins.
    over = step_one(passed, othello.action_from_text("c1"))
    assert bool(over.terminated)
    assert not np.any(over.legal_action_mask)
    np.testing.assert_array_equal(over.rewards, [-1, 1])
    assert int(othello.disc_difference(over)) == -3

    # Passing when a move exists is illegal: it forfeits.
    forfeit = step_one(start(), othello.PASS)
    assert bool(forfeit.terminated)
    np.testing.assert_array_equal(forfeit.rewards, [-1, 1])


def test_neither_side_can_move():
    state = othello.from_text("XX" + "-" * 61 + "O O")
    assert bool(state.terminated)
    assert not np.any(state.legal_action_mask)
    np.testing.assert_array_equal(state.rewards, [1, -1])
    assert int(othello.disc_difference(state)) == 1

    draw = othello.from_text("X" + "-" * 62 + "O X")
    assert bool(draw.terminated)
    np.testing.assert_array_equal(draw.rewards, [0, 0])


def test_full_board_ends_the_game():
    full = othello.from_text("XO" * 16 + "OX" * 15 + "OO O")  # 31 Black, 33 White
    assert bool(full.terminated)
    assert not np.any(full.legal_action_mask)
    np.testing.assert_array_equal(full.rewards, [-1, 1])
    assert int(othello.disc_difference(full)) == -2

    # Black fills the last square, h8, flipping g8: 64-0.
    last = othello.from_text("X" * 62 + "O- X")
    assert legal_names(last) == ["h8"]
    over = step_one(last, othello.action_from_text("h8"))
    assert bool(over.terminated)
    np.testing.assert_array_equal(over.rewards, [1, -1])
    assert int(othello.disc_difference(over)) == 64
    assert othello.position_text(over) == "X" * 64 + " O"


# --- reference positions ---------------------------------------------------------------------


def fforum_lines():
    files = sorted(REFDATA.glob("fforum-*.obf"))
    assert len(files) == 2, f"FForum files missing under {REFDATA}"
    return [line for path in files for line in path.read_text().splitlines() if line.strip()]


def test_fforum_positions_parse_and_their_moves_are_legal():
    lines = fforum_lines()
    assert len(lines) == 39
    for number, line in enumerate(lines, start=1):
        state = othello.from_text(line)
        fields = [field.strip() for field in line.split(";")]
        squares, side = fields[0].split()
        assert othello.position_text(state) == squares.replace(".", "-") + " " + side
        assert not bool(state.terminated), f"FForum #{number} is over"
        moves = [field.split(":")[0] for field in fields[1:] if field]
        assert moves, f"FForum #{number} lists no moves"
        for move in moves:
            assert bool(state.legal_action_mask[othello.action_from_text(move)]), (
                f"FForum #{number}: {move} is not legal"
            )


# --- text --------------------------------------------------------------------------------------


def assert_same_position(a, b):
    np.testing.assert_array_equal(a.discs, b.discs)
    assert int(a.current_player) == int(b.current_player)
    np.testing.assert_array_equal(a.legal_action_mask, b.legal_action_mask)
    assert bool(a.terminated) == bool(b.terminated)


def test_text_round_trips():
    assert othello.to_text(start()).splitlines() == [
        "  a b c d e f g h",
        "1 . . . . . . . .",
        "2 . . . . . . . .",
        "3 . . . . . . . .",
        "4 . . . O X . . .",
        "5 . . . X O . . .",
        "6 . . . . . . . .",
        "7 . . . . . . . .",
        "8 . . . . . . . .",
        "Black (X) to move",
    ]
    positions = random_positions(4, [10, 40, 70])  # 70 plies: some games are over
    for i in range(12):
        state = take(positions, i)
        assert_same_position(othello.from_text(othello.to_text(state)), state)
        assert_same_position(othello.from_text(othello.position_text(state)), state)
    assert_same_position(othello.from_text(othello.to_text(start())), start())
    # '.' reads as empty, the side to move after any whitespace.
    dotted = othello.position_text(start()).replace("-", ".").replace(" ", "\n ")
    assert_same_position(othello.from_text(dotted), start())


def test_action_text_round_trips():
    for action in range(GAME.num_actions):
        text = othello.action_to_text(action)
        assert othello.action_from_text(text) == action
        assert othello.action_from_text(text.upper()) == action
    assert othello.action_to_text(0) == "a1"
    assert othello.action_to_text(63) == "h8"
    assert othello.action_from_text("D3") == 19
    for bad in ["", "i1", "a0", "a9", "d33", "pas"]:
        with pytest.raises(ValueError, match="not an Othello move"):
            othello.action_from_text(bad)


@pytest.mark.parametrize(
    "text, message",
    [
        ("X" * 63 + " X", "not an Othello position"),
        ("X" * 64, "not an Othello position"),
        ("X" * 63 + "Z X", "square characters"),
        ("X" * 64 + " B", "side to move"),
    ],
)
def test_from_text_rejects_bad_text(text, message):
    with pytest.raises(ValueError, match=message):
        othello.from_text(text)


# --- symmetries --------------------------------------------------------------------------------


def test_symmetries_match_transformed_positions():
    assert GAME.num_symmetries == 8
    np.testing.assert_array_equal(GAME.action_permutations[:, 64], 64)
    positions = random_positions(4, [6, 20, 35, 50], seed=1)
    rng = np.random.default_rng(2)
    symmetries = jax.jit(GAME.symmetries)
    for i in range(16):
        state = take(positions, i)
        squares, side = othello.position_text(state).split()
        obs = np.asarray(observe_one(state))
        policy = rng.random(GAME.num_actions).astype(np.float32)
        sym_obs, sym_policy, sym_mask = symmetries(obs, policy, state.legal_action_mask)
        for s, perm in enumerate(GAME.cell_permutations):
            moved = othello.from_text("".join(squares[c] for c in perm) + " " + side)
            np.testing.assert_array_equal(np.asarray(observe_one(moved)), sym_obs[s])
            np.testing.assert_array_equal(np.asarray(moved.legal_action_mask), sym_mask[s])
            assert bool(moved.terminated) == bool(state.terminated)
        np.testing.assert_array_equal(sym_policy[:, 64], policy[64])
