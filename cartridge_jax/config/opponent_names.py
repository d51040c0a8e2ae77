"""Opponent names, as data: what `evaluation.opponents`, `eval --opponent` and `ladder` accept.

    random             a uniformly random legal move
    greedy             win now, else don't hand over a win (Othello: flip the most discs)
    perfect            a random minimax-optimal move (TicTacToe only; exhaustive solver)
    mcts-rollout:<N>   classic MCTS, N simulations valued by random playouts, no network
    alphabeta:<D>      minimax D plies deep with a classic evaluation per game
    <path>             a trained model: a run directory or an exported model folder, played
                       by the agent's search; a path names a folder with a "/" in it (write
                       ./name for a folder here)

`parse` checks a name without JAX or a game, so the configuration validates with it; the agents
behind the names live in `cartridge_jax.opponents`.
"""

from __future__ import annotations

import dataclasses

BUILTIN = ("random", "greedy", "perfect")
WITH_STRENGTH = {"mcts-rollout": "simulations", "alphabeta": "depth"}
_EXAMPLE = {"mcts-rollout": 1000, "alphabeta": 3}
NAMES_HELP = ("random, greedy, perfect (TicTacToe), mcts-rollout:<simulations>, "
              "alphabeta:<depth> or a model folder path with a '/' in it")


@dataclasses.dataclass(frozen=True)
class Opponent:
    """A parsed opponent name."""

    kind: str  # "random", "greedy", "perfect", "mcts-rollout", "alphabeta" or "model"
    strength: int = 0  # simulations (mcts-rollout) or depth (alphabeta)
    path: str = ""  # the model folder (model)


def parse(name: str) -> Opponent:
    """The opponent `name` stands for; ValueError with a one-line message if none."""
    if name in BUILTIN:
        return Opponent(name)
    kind, colon, strength = name.partition(":")
    if colon and kind in WITH_STRENGTH:
        if not strength.isdigit() or int(strength) < 1:
            raise ValueError(f"opponent {name!r}: write {kind}:<{WITH_STRENGTH[kind]}> with a "
                             f"whole number of 1 or more, e.g. {kind}:{_EXAMPLE[kind]}")
        return Opponent(kind, strength=int(strength))
    if "/" in name:
        return Opponent("model", path=name)
    raise ValueError(f"unknown opponent {name!r}: use {NAMES_HELP}")
