"""Suite "selfplay": positions/s of the Trainer's self-play phase, next to the pgx reference.

A position is one move of one game, searched and recorded. Ours is the Trainer's jitted phase
(search, step, auto-reset with random openings, replay insert with value targets); the reference
is `pgx_reference.selfplay_chunk` with the same network, simulations, batch and chunk length.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from cartridge_jax.bench import flops, pgx_reference, presets, timing
from cartridge_jax.config import Config
from cartridge_jax.model import nets
from cartridge_jax.training.trainer import Trainer


def ours(config: Config) -> tuple[timing.Run, Trainer, nets.Params]:
    """run(i): one self-play chunk of the Trainer's phase, into its replay buffer; the trainer;
    the network's parameters."""
    trainer = Trainer(config)
    state = trainer.initial_state()
    params, games, buffer = state.train_state.params, state.games, state.buffer

    def run(call):
        nonlocal games, buffer  # donated to each call, so the outputs carry on
        games, buffer, _ = trainer.selfplay(params, games, buffer, jax.random.key(call))
        return buffer

    return run, trainer, params


def reference(env: Any, trainer: Trainer, params: nets.Params) -> timing.Run:
    """run(i): one chunk of the pgx reference loop, as long and as wide as the Trainer's, with
    the Trainer's network `params` where pgx's observation has our shape (all three games).

    The same parameters matter: the search's work depends on its trees' depth (mctx walks the
    deepest path of the batch), which depends on the network's priors and values.
    """
    config, network = trainer.config, trainer.network
    games = config.selfplay.games
    rows = -(-config.training.replay_capacity // games)  # as deep as the Trainer's buffer
    if env.observation_shape != trainer.game.observation_shape:
        params = jax.jit(network.init)(jax.random.key(0), jnp.zeros((1, *env.observation_shape)))
    chunk = jax.jit(
        functools.partial(pgx_reference.selfplay_chunk, env, network.apply, config.mcts,
                          trainer.selfplay_chunk),
        donate_argnums=(1, 2),
    )
    states = jax.vmap(env.init)(jax.random.split(jax.random.key(0), games))
    ring = pgx_reference.init_ring(env, rows, games)

    def run(call):
        nonlocal states, ring
        states, ring = chunk(params, states, ring, jax.random.key(call))
        return ring

    return run


def measure(game_names: list[str], net_names: list[str], simulations: list[int],
            games: int | None, moves: int | None, repeats: int, with_pgx: bool,
            dtype: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for name in game_names:
        env = pgx_reference.make_env(name) if with_pgx else None
        for net in net_names:
            for sims in simulations:
                config = presets.preset_config(name, net, simulations=sims, games=games,
                                               moves=moves, dtype=dtype)
                runs = {}
                runs["ours"], trainer, params = ours(config)
                if env is not None:
                    runs["pgx"] = reference(env, trainer, params)
                timings = timing.time_interleaved(runs, repeats)
                positions = trainer.selfplay_chunk * config.selfplay.games
                row = {
                    "game": name, "net": net, "preset": presets.preset_name(name, net),
                    "network": nets.describe(trainer.network, params),
                    "simulations": sims, "games": config.selfplay.games,
                    "moves": trainer.selfplay_chunk,
                    **timing.speeds(timings, "positions_per_s", positions),
                }
                row.update(flops.selfplay_fields(trainer.network, params,
                                                 trainer.game.observation_shape, sims,
                                                 row["ours_positions_per_s"]))
                rows.append(row)
                print(row_text(row), flush=True)
    return rows


def row_text(row: dict[str, Any]) -> str:
    text = (f"{row['game']:>10} {row['net']:>4} net, {row['simulations']:>3} sims, "
            f"{row['games']} games: ours {row['ours_positions_per_s']:>9,.0f} positions/s")
    if "pgx_positions_per_s" in row:
        text += (f", pgx reference {row['pgx_positions_per_s']:>9,.0f}, ours/pgx "
                 f"{row['ours_over_pgx']:.2f} (CPU time {row['ours_over_pgx_cpu']:.2f})")
    return text + (f"; {row['achieved_tflops']:.3g} TFLOP/s, {row['flop_fraction']:.1%} of the "
                   f"measured {row['peak_tflops']:.3g}")


TABLE = (("game", "game", "{}"), ("network", "network", "{}"), ("sims", "simulations", "{}"),
         ("games", "games", "{}"), ("ours positions/s", "ours_positions_per_s", "{:,.0f}"),
         ("pgx reference positions/s", "pgx_positions_per_s", "{:,.0f}"),
         ("ours/pgx", "ours_over_pgx", "{:.2f}"),
         ("ours/pgx, CPU time", "ours_over_pgx_cpu", "{:.2f}"),
         ("GFLOP/position", "gflop_per_position", "{:.3g}"),
         ("share of peak FLOP/s", "flop_fraction", "{:.1%}"))
