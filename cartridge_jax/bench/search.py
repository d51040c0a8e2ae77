"""Suite "search": milliseconds per simulation of one batched search, ours next to mctx's.

Both searches get the same root, recurrent function, key and settings (`model.tree_search` is
tested equal to mctx), so the ratio is the cost of the search loops alone. Networks:
  zero-cost   a one-number embedding and closed-form priors and values (A = 7, Connect 4's
              width): what remains is the search's own bookkeeping;
  tiny, cpu, gpu  the presets' networks over the game's real rules (search.make_recurrent_fn),
              from positions a few random moves deep.
Two sweeps: simulations (16 to 1024 at 128 games) and batch size (1 to 4096 at 64
simulations). Compilation is timed apart (call 0, see timing.py).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import mctx

from cartridge_jax import games as games_lib
from cartridge_jax.bench import presets, timing
from cartridge_jax.model import nets, search, tree_search
from cartridge_jax.training import selfplay

POLICIES = {"puct": (tree_search.muzero_policy, mctx.muzero_policy),
            "gumbel": (tree_search.gumbel_muzero_policy, mctx.gumbel_muzero_policy)}
SWEEP_BATCH = 128  # games in the simulations sweep
SWEEP_SIMULATIONS = 64  # simulations in the batch sweep
ZERO_COST_ACTIONS = 7

TABLE = (
    ("policy", "policy", "{}"),
    ("network", "network", "{}"),
    ("games", "batch", "{:,}"),
    ("sims", "simulations", "{}"),
    ("ours ms/sim", "ours_ms_per_sim", "{:.3f}"),
    ("mctx ms/sim", "mctx_ms_per_sim", "{:.3f}"),
    ("ours/mctx speed", "ours_over_mctx", "{:.2f}"),
    ("ours compile s", "ours_compile_s", "{:.1f}"),
)


def zero_cost(batch: int):
    """(root, recurrent_fn, params) of a network that costs nothing: the embedding is one int
    per node, priors and values are cheap functions of it, no node is terminal."""
    actions = jnp.arange(ZERO_COST_ACTIONS)

    def recurrent_fn(params, key, action, embedding):
        del params, key
        child = embedding * 7 + action + 1  # [B]: a distinct number per path
        logits = jnp.sin(child[:, None] * 0.37 + actions * 1.3)  # [B, A]
        output = mctx.RecurrentFnOutput(reward=jnp.zeros(batch), discount=-jnp.ones(batch),
                                        prior_logits=logits, value=jnp.cos(child * 0.1))
        return output, child

    root = mctx.RootFnOutput(
        prior_logits=jax.random.normal(jax.random.key(1), (batch, ZERO_COST_ACTIONS)),
        value=jnp.zeros(batch), embedding=jnp.zeros(batch, jnp.int32))
    return root, recurrent_fn, ()


def _preset_network(game_name: str, net: str, batch: int):
    """(root, recurrent_fn, params): the preset's network, randomly initialised, over `batch`
    positions 0-7 random moves deep (self-play's random openings)."""
    config = presets.preset_config(game_name, net)
    game = games_lib.make(game_name)
    network = nets.make_network(config.model, game)
    params = nets.init_params(network, game, jax.random.key(0))
    states = jax.jit(selfplay.new_games, static_argnums=(0, 2, 3))(
        game, jax.random.key(2), batch, 7).state
    root = search.root_output(game, network.apply, params, states)
    return root, search.make_recurrent_fn(game, network.apply), params


def _run(policy, root, recurrent_fn, params, simulations: int, name: str) -> timing.Run:
    invalid = root.prior_logits <= jnp.finfo(root.prior_logits.dtype).min
    if name == "puct":
        settings = {"dirichlet_fraction": 0.0, "pb_c_init": 1.25}
    else:
        settings = {"max_num_considered_actions": 16}
    search_once = jax.jit(functools.partial(
        policy, params, recurrent_fn=recurrent_fn, num_simulations=simulations,
        invalid_actions=invalid, **settings))

    def run(call):
        output = search_once(rng_key=jax.random.key(call), root=root)
        return output.action_weights

    return run


def _row(name: str, network: str, batch: int, simulations: int, source, repeats: int,
         with_mctx: bool) -> dict[str, Any]:
    root, recurrent_fn, params = source
    ours, theirs = POLICIES[name]
    runs = {"ours": _run(ours, root, recurrent_fn, params, simulations, name)}
    if with_mctx:
        runs["mctx"] = _run(theirs, root, recurrent_fn, params, simulations, name)
    timings = timing.time_interleaved(runs, repeats)
    row = {"policy": name, "network": network, "batch": batch, "simulations": simulations}
    for who, measured in timings.items():
        row[f"{who}_ms_per_sim"] = 1e3 * measured.seconds / simulations
        row[f"{who}_compile_s"] = measured.compile_s
    if with_mctx:
        row["ours_over_mctx"] = row["mctx_ms_per_sim"] / row["ours_ms_per_sim"]
    mctx_text = (f", mctx {row['mctx_ms_per_sim']:.3f} ({row['ours_over_mctx']:.2f}x)"
                 if with_mctx else "")
    print(f"  {name:>6} {network:>20} {batch:>5} games {simulations:>5} sims: ours "
          f"{row['ours_ms_per_sim']:.3f} ms/sim{mctx_text}", flush=True)
    return row


def measure(game_names: list[str], nets_: list[str], simulations: list[int],
            batches: list[int], repeats: int, with_mctx: bool) -> list[dict[str, Any]]:
    rows = []
    for name in POLICIES:
        for sims in simulations:
            rows.append(_row(name, "zero-cost", SWEEP_BATCH, sims, zero_cost(SWEEP_BATCH),
                             repeats, with_mctx))
        for batch in batches:
            rows.append(_row(name, "zero-cost", batch, SWEEP_SIMULATIONS, zero_cost(batch),
                             repeats, with_mctx))
        for game_name in game_names:
            for net in nets_:
                source = _preset_network(game_name, net, SWEEP_BATCH)
                for sims in simulations:
                    rows.append(_row(name, f"{game_name} {net}", SWEEP_BATCH, sims, source,
                                     repeats, with_mctx))
    return rows
