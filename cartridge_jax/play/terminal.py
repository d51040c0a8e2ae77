"""Playing the agent in a terminal: `python -m cartridge_jax play GAME --model PATH`.

    bot = Bot(game, model.network.apply, model.params, simulations=64)
    play(game, bot, human=0, ask=stream_ask(sys.stdin, sys.stdout), out=sys.stdout)

The board is drawn with `game.to_text`; moves are typed in the game's own names
(`game.action_from_text`: TicTacToe cells like b2, Connect 4 columns 1-7, Othello squares like
d3 or pass). A move that is unknown or illegal is asked again with the reason and the legal
moves. The bot is THE agent of `search.agent_search` (deterministic Gumbel MuZero over the
net), compiled once when the bot is made and reused for every move.

`ask` works like `input()`: it shows a prompt, returns the typed line and raises EOFError at
the end of the input, so a pipe, a test's stream or a notebook's `input` can all drive a game.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, TextIO

import jax
import numpy as np
from etils import epath

from cartridge_jax.games import Game, State
from cartridge_jax.model import load, search

Ask = Callable[[str], str]  # prompt -> the line typed; EOFError at the end of the input

QUIT_WORDS = ("quit", "exit")


class Bot:
    """THE agent over one model: `think(state)` -> (move, the search's value of the position).

    The search is compiled here, once, for a batch of one position; every move reuses it. It
    calls `search.agent_search` itself rather than `agents.search_agent` (which wraps it but
    returns only the move): the win probability shown comes from the same search's root value.
    """

    def __init__(self, game: Game, apply_fn: search.ApplyFn, params, *, simulations: int):
        search.check_simulations(simulations)
        self.simulations = simulations
        self._params = params
        # The agent is deterministic: its key changes nothing, so one serves every move.
        self._key = jax.random.key(0)
        agent = jax.jit(functools.partial(search.agent_search, game, apply_fn,
                                          simulations=simulations))
        start = _batch_of_one(game.init(jax.random.key(0)))
        self._search = agent.lower(params, self._key, start).compile()

    def think(self, state: State) -> tuple[int, float]:
        """(move, value) for a live `state`: the value is the search's root value, in [-1, 1]
        from the side to move's (the bot's) view."""
        result = self._search(self._params, self._key, _batch_of_one(state))
        return int(result.action[0]), float(result.root_value[0])


def _batch_of_one(state: State) -> State:
    return jax.tree.map(lambda leaf: leaf[None], state)


def stream_ask(inp: TextIO, out: TextIO) -> Ask:
    """An `input()` over any pair of streams. Input that is not a terminal (a pipe, a file) is
    echoed after the prompt, so the transcript reads like a session."""
    echo = not inp.isatty()

    def ask(prompt: str) -> str:
        out.write(prompt)
        out.flush()
        line = inp.readline()
        if not line:
            raise EOFError
        if echo:
            out.write(line if line.endswith("\n") else line + "\n")
        return line.rstrip("\n")

    return ask


def legal_moves(game: Game, state: State) -> list[str]:
    """Names of the legal moves of `state`, in action order."""
    return [game.action_to_text(int(a)) for a in np.flatnonzero(state.legal_action_mask)]


def read_move(game: Game, state: State, text: str) -> int:
    """The action `text` names, if it is legal in `state`; else a ValueError saying why."""
    try:
        action = game.action_from_text(text)
    except ValueError as error:
        raise ValueError(f"unknown move: {error}") from None
    if not bool(state.legal_action_mask[action]):
        raise ValueError(illegal_reason(game, state, action))
    return action


def illegal_reason(game: Game, state: State, action: int) -> str:
    """Why the known move `action` is illegal in the live `state`, for people."""
    name = game.action_to_text(action)
    cells = game.rows * game.cols
    if game.board_kind == "drop_column":  # the only way a column is illegal: it is full
        return f"column {name} is full"
    if action >= cells:  # a move that is not a square: a pass
        return f"{name} is allowed only when you have no other move"
    pieces = np.asarray(game.observe(state)).reshape(cells, -1).sum(axis=-1)  # [cells]
    if pieces[action] > 0:
        return f"{name} is occupied"
    return f"{name} is not a legal {game.display_name} move here"


def play(game: Game, bot: Bot, *, human: int, ask: Ask, out: TextIO) -> np.ndarray | None:
    """One game of a person (player `human`: 0 moves first) against `bot`.

    Returns the final rewards float32[2], or None when the person quit or the input ended.
    """
    step = jax.jit(game.step)
    state = game.init(jax.random.key(0))
    mine, theirs = game.player_symbols[human], game.player_symbols[1 - human]
    seat = "first" if human == 0 else "second"
    name, symbol = game.player_names[human], game.player_symbols[human]
    you_are = name if name == symbol else f"{name} ({symbol})"
    _say(out, f"{game.display_name}: you are {you_are} and move {seat}; the bot searches "
              f"{bot.simulations} simulations a move. Type a move, or help, undo, quit.\n")
    _say(out, game.to_text(state))
    taken_back: list[State] = []  # the positions before each of your moves, for undo
    while not bool(state.terminated):
        if int(state.current_player) != human:
            action, value = bot.think(state)
            state = step(state, action)
            _say(out, f"\nBot ({theirs}) plays {game.action_to_text(action)} (it rates its "
                      f"position {value:+.2f}: {(value + 1) / 2:.0%} win probability, a draw "
                      "counting half)")
            _say(out, game.to_text(state))
            continue
        try:
            text = ask(f"\nYour move ({mine}): ").strip().lower()
        except EOFError:
            _say(out, "\nEnd of input: game left unfinished.")
            return None
        if not text:
            continue
        if text in QUIT_WORDS:
            _say(out, "You quit. Goodbye.")
            return None
        if text == "help":
            _say(out, _help(game, state))
            continue
        if text == "undo":
            if not taken_back:
                _say(out, "Nothing to undo: you have not moved yet.")
                continue
            state = taken_back.pop()
            _say(out, "Took back your last move and the bot's reply.")
            _say(out, game.to_text(state))
            continue
        try:
            action = read_move(game, state, text)
        except ValueError as error:
            _say(out, f"{error}; legal moves: {' '.join(legal_moves(game, state))}")
            continue
        taken_back.append(state)
        state = step(state, action)
        _say(out, f"\nYou ({mine}) play {game.action_to_text(action)}")
        _say(out, game.to_text(state))
    rewards = np.asarray(state.rewards)
    if rewards[human] > 0:
        _say(out, f"\nResult: {mine} (you) wins.")
    elif rewards[human] < 0:
        _say(out, f"\nResult: {theirs} (bot) wins.")
    else:
        _say(out, "\nResult: draw.")
    return rewards


def _help(game: Game, state: State) -> str:
    return (f"Type a move by its name; legal now: {' '.join(legal_moves(game, state))}.\n"
            "Commands: undo (take back your last move), help, quit.")


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def run(config, model_path, *, sims: int | None, bot_first: bool, ask: Ask, out: TextIO) -> int:
    """Loads the model at `model_path` (any path `model.load` reads), makes the
    bot (`sims` simulations, default `load.default_simulations`) and plays one game. ValueErrors
    (an unreadable model) have one-line messages."""
    model = load.load_model(model_path, config)
    game, iteration = model.game, model.iteration
    simulations = load.default_simulations(model_path, config) if sims is None else sims
    started = time.perf_counter()
    _say(out, f"Loading the bot: {game.display_name} model {epath.Path(model_path)} "
              f"(iteration {iteration}), {simulations} simulations a move...")
    bot = Bot(game, model.network.apply, model.params, simulations=simulations)
    _say(out, f"Ready in {time.perf_counter() - started:.1f} s (compiled the search once).\n")
    play(game, bot, human=1 if bot_first else 0, ask=ask, out=out)
    return 0
