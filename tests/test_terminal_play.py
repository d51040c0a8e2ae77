"""Terminal play (`play` command, cartridge_jax/terminal.py): whole TicTacToe games typed through
an input stream, checked move by move with an independent referee; the reasons illegal input is
refused in every game; undo, help, quit, end of input; the command line.

The bot is a freshly initialised tiny network, exported as `train` exports: its moves are weak but
must be legal, and the transcript must tell the game exactly as the rules play it.
"""

import io
import re

import jax
import pytest

from cartridge_jax import config as config_lib
from cartridge_jax import games
from cartridge_jax.config import ModelConfig
from cartridge_jax.model import export, load, nets
from cartridge_jax.play import terminal

SIMULATIONS = 4
TICTACTOE = games.make("tictactoe")
# Every cell in order, after an occupied cell (a1 again) and an unknown name: a person who types
# this finishes any game, since a cell the bot took is refused and the next one is tried.
EVERY_CELL = ["a1", "a1", "zz", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"]

# The referee: TicTacToe from scratch, independent of the package's rules.
LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
CELLS = [column + row for row in "123" for column in "abc"]  # a1 b1 c1 a2 ... row-major
MOVE = re.compile(r"^(You|Bot) \(([XO])\) plays? ([a-c][1-3])\b")
LISTED = re.compile(r"legal (?:moves:|now:) ([a-c1-3 ]+)")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """An exported, freshly initialised tiny TicTacToe network."""
    folder = tmp_path_factory.mktemp("model")
    model_config = ModelConfig(kind="mlp", mlp_hidden=(16, 16), value_hidden=8)
    network = nets.make_network(model_config, TICTACTOE)
    params = nets.init_params(network, TICTACTOE, jax.random.key(0))
    export.export_model(TICTACTOE, network, params, model_config, folder, step=0, iteration=0,
                        opset=18, ir_version=10)
    return folder


@pytest.fixture(scope="module")
def config():
    flags = {"common.game": "tictactoe", "common.preset": "none",
             "evaluation.simulations": SIMULATIONS}
    return config_lib.load_config(env={}, flags=flags)[0]


@pytest.fixture(scope="module")
def bot(model_dir, config):
    model = load.load_model(model_dir, config)
    return terminal.Bot(model.game, model.network.apply, model.params, simulations=SIMULATIONS)


def _stream(lines):
    """(ask, out) for a game typed as `lines` into a pipe."""
    out = io.StringIO()
    return terminal.stream_ask(io.StringIO("".join(f"{line}\n" for line in lines)), out), out


def _referee(transcript: str) -> str | None:
    """Replays the transcript's moves by the rules; checks turns, occupancy, takebacks, and that
    every list of legal moves shown is exactly the empty cells. Returns the winner's symbol,
    "draw", or None for an unfinished game."""
    board = {}  # cell index -> "X" / "O"
    played = []  # cell indices in order
    winner = None
    for line in transcript.splitlines():
        if line.startswith("Took back"):  # your move and the bot's reply
            for _ in range(2):
                del board[played.pop()]
        if listed := LISTED.search(line):
            empty = [CELLS[c] for c in range(9) if c not in board]
            assert listed.group(1).split() == empty, line
        if not (move := MOVE.match(line)):
            continue
        _, symbol, name = move.groups()
        cell = CELLS.index(name)
        assert winner is None, "a move after the game ended"
        assert symbol == "XO"[len(played) % 2], f"{symbol} moved out of turn: {line}"
        assert cell not in board, f"{name} was already taken: {line}"
        board[cell] = symbol
        played.append(cell)
        if any(board.get(a) == board.get(b) == board.get(c) == symbol for a, b, c in LINES):
            winner = symbol
    return winner or ("draw" if len(board) == 9 else None)


def _result_line(outcome: str, human: str) -> str:
    if outcome == "draw":
        return "Result: draw."
    return f"Result: {outcome} ({'you' if outcome == human else 'bot'}) wins."


def test_a_whole_game_through_standard_input(model_dir, config):
    ask, out = _stream(EVERY_CELL)
    assert terminal.run(config, model_dir, sims=None, bot_first=False, ask=ask, out=out) == 0
    transcript = out.getvalue()
    outcome = _referee(transcript)
    assert outcome is not None, transcript
    assert transcript.rstrip().splitlines()[-1] == _result_line(outcome, "X")
    assert f"{SIMULATIONS} simulations a move" in transcript  # evaluation.simulations
    # The refused entries, each re-asked with its reason and the legal moves.
    assert "Your move (X): a1\na1 is occupied; legal moves: " in transcript
    assert "Your move (X): zz\nunknown move: 'zz' is not a TicTacToe cell" in transcript
    bot_lines = [line for line in transcript.splitlines() if line.startswith("Bot (O) plays")]
    assert bot_lines
    for line in bot_lines:  # the value shown and its win probability agree (both rounded)
        value, percent = re.search(r"position ([-+]\d\.\d\d): (\d+)% win", line).groups()
        assert -1 <= float(value) <= 1
        assert abs(int(percent) - 50 * (float(value) + 1)) <= 1


def test_the_bot_can_move_first_and_help_lists_the_legal_moves(bot):
    ask, out = _stream(["help", *EVERY_CELL])
    rewards = terminal.play(TICTACTOE, bot, human=1, ask=ask, out=out)
    transcript = out.getvalue()
    assert transcript.splitlines()[0].startswith("TicTacToe: you are O and move second")
    first_move = next(line for line in transcript.splitlines() if MOVE.match(line))
    assert first_move.startswith("Bot (X) plays")
    assert "Your move (O): help\nType a move by its name; legal now: " in transcript
    outcome = _referee(transcript)
    assert transcript.rstrip().splitlines()[-1] == _result_line(outcome, "O")
    expected = {"X": [1, -1], "O": [-1, 1], "draw": [0, 0]}[outcome]
    assert rewards.tolist() == expected


def test_undo_takes_back_your_move_and_the_reply(bot):
    ask, out = _stream(["undo", "b2", "undo", "undo", "b2", "quit"])
    assert terminal.play(TICTACTOE, bot, human=0, ask=ask, out=out) is None
    transcript = out.getvalue()
    empty_board = TICTACTOE.to_text(TICTACTOE.init(jax.random.key(0)))
    assert "Your move (X): undo\nNothing to undo" in transcript
    took_back = transcript.index("Took back your last move and the bot's reply.")
    assert transcript[took_back:].split("\n", 1)[1].startswith(empty_board)
    assert transcript.count("Nothing to undo") == 2
    assert transcript.count("You (X) play b2") == 2
    assert _referee(transcript) is None  # unfinished, and consistent through the takeback
    assert transcript.rstrip().endswith("You quit. Goodbye.")


def test_end_of_input_leaves_the_game(bot):
    ask, out = _stream(["b2"])
    assert terminal.play(TICTACTOE, bot, human=0, ask=ask, out=out) is None
    assert out.getvalue().rstrip().endswith("End of input: game left unfinished.")


@pytest.mark.parametrize("name, moves, typed, reason", [
    ("connect4", "444444", "4", "column 4 is full"),
    ("connect4", "", "9", "unknown move: '9' is not a Connect 4 column"),
    ("othello", None, "d4", "d4 is occupied"),
    ("othello", None, "a1", "a1 is not a legal Othello move here"),
    ("othello", None, "pass", "pass is allowed only when you have no other move"),
    ("othello", None, "j9", "unknown move: 'j9' is not an Othello move"),
    ("tictactoe", "5", "b2", "b2 is occupied"),
])
def test_refused_moves_say_why(name, moves, typed, reason):
    game = games.make(name)
    state = game.init(jax.random.key(0)) if moves is None else game.from_text(moves)
    with pytest.raises(ValueError) as error:
        terminal.read_move(game, state, typed)
    assert str(error.value).startswith(reason)


@pytest.mark.parametrize("name, moves, typed", [
    ("connect4", "444444", "3"), ("othello", None, "d3"), ("tictactoe", "5", "a1")])
def test_legal_moves_are_read_as_their_actions(name, moves, typed):
    game = games.make(name)
    state = game.init(jax.random.key(0)) if moves is None else game.from_text(moves)
    action = terminal.read_move(game, state, typed)
    assert bool(state.legal_action_mask[action]) and game.action_to_text(action) == typed
    assert typed in terminal.legal_moves(game, state)


def test_play_command_reads_a_pipe_and_exits_0_on_quit(run_cli, monkeypatch, model_dir):
    monkeypatch.setattr("sys.stdin", io.StringIO("b2\nquit\n"))
    status, out, err = run_cli("play", "tictactoe", "--model", str(model_dir), "--sims", "2")
    assert status == 0, err
    assert "2 simulations a move" in out and "You (X) play b2" in out
    assert _referee(out) is None and out.rstrip().endswith("You quit. Goodbye.")


def test_play_command_refuses_a_model_of_another_game(run_cli, model_dir):
    status, _, err = run_cli("play", "connect4", "--model", str(model_dir))
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "plays tictactoe, not connect4" in err
