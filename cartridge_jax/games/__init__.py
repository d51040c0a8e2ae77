"""Board games as pure JAX functions, behind one registry.

    game = games.make("connect4")
    state = jax.vmap(game.init)(jax.random.split(key, 1024))
    state = jax.vmap(game.step)(state, actions)

See `base.Game` for the contract every game fulfils.
"""

from cartridge_jax.games import connect4, othello, tictactoe
from cartridge_jax.games.base import Game, State

_REGISTRY: dict[str, Game] = {
    module.GAME.name: module.GAME for module in (tictactoe, connect4, othello)
}


class UnknownGameError(ValueError):
    pass


def names() -> list[str]:
    """Registered game ids, in a fixed order."""
    return list(_REGISTRY)


def make(name: str) -> Game:
    """The game registered as `name`; `UnknownGameError` lists the available ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownGameError(
            f"unknown game {name!r}: available games are {', '.join(names())}"
        ) from None


__all__ = ["Game", "State", "UnknownGameError", "make", "names"]
