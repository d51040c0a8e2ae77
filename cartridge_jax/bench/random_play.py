"""Suite "games": random-play steps/s of each game, next to pgx's implementation.

Every game of a batch plays uniformly random legal moves and restarts when it ends (auto-reset),
`steps` moves per game inside one jitted `lax.scan`. The same loop runs over pgx's version of
each game in the same process, so the ratio ours/pgx compares like with like.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from cartridge_jax import games
from cartridge_jax.bench import pgx_reference, timing
from cartridge_jax.games.base import where_batched


def _random_play(init: Callable, step: Callable, batch_size: int, steps: int) -> timing.Run:
    """run(i): the final states of `batch_size` auto-resetting random games, from key i."""

    def play(key):
        fresh = jax.vmap(init)(jax.random.split(key, batch_size))

        def move(state, key):
            # A uniform legal move as the argmax of random bits over legal moves: several times
            # cheaper than jax.random.categorical on CPU, which would otherwise dominate.
            noise = jax.random.bits(key, state.legal_action_mask.shape, jnp.uint32) >> 1
            legal_noise = jnp.where(state.legal_action_mask, noise.astype(jnp.int32), -1)
            actions = jnp.argmax(legal_noise, -1)
            state = jax.vmap(step)(state, actions)
            return where_batched(state.terminated, fresh, state), None

        final, _ = jax.lax.scan(move, fresh, jax.random.split(key, steps))
        return final

    play = jax.jit(play)
    return lambda call: play(jax.random.key(call))


def measure(game_names: list[str], batch_sizes: list[int], steps: int, repeats: int,
            with_pgx: bool) -> list[dict[str, Any]]:
    rows = []
    for name in game_names:
        game = games.make(name)
        env = pgx_reference.make_env(name) if with_pgx else None
        for batch_size in batch_sizes:
            runs = {"ours": _random_play(game.init, game.step, batch_size, steps)}
            if env is not None:
                runs["pgx"] = _random_play(env.init, env.step, batch_size, steps)
            timings = timing.time_interleaved(runs, repeats)
            row = {"game": name, "batch_size": batch_size, "steps": steps,
                   **timing.speeds(timings, "steps_per_s", batch_size * steps)}
            rows.append(row)
            print(row_text(row), flush=True)
    return rows


def row_text(row: dict[str, Any]) -> str:
    text = (f"{row['game']:>10} batch {row['batch_size']:>5}: "
            f"ours {row['ours_steps_per_s']:>12,.0f} steps/s")
    if "pgx_steps_per_s" in row:
        text += (f", pgx {row['pgx_steps_per_s']:>12,.0f} steps/s, ours/pgx "
                 f"{row['ours_over_pgx']:.2f} (CPU time {row['ours_over_pgx_cpu']:.2f})")
    return text


TABLE = (("game", "game", "{}"), ("batch", "batch_size", "{}"),
         ("ours steps/s", "ours_steps_per_s", "{:,.0f}"),
         ("pgx steps/s", "pgx_steps_per_s", "{:,.0f}"),
         ("ours/pgx", "ours_over_pgx", "{:.2f}"),
         ("ours/pgx, CPU time", "ours_over_pgx_cpu", "{:.2f}"))
