"""One measure of one model, as the `eval` command runs it.

    evaluate(config, model_dir_or_run_dir="site/models/connect4", sims=128,
             positions="connect4/Test_L2_R1.jsonl")   # {"mistake_rate": ..., "iteration": ...}

The result also says how long the measure's play took, JAX's tracing and compilation left out
(`search_seconds`), so that search costs compare across simulation counts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import jax
import jax.monitoring

from cartridge_jax.config import Config
from cartridge_jax.evaluation import agents, arena, position_sets
from cartridge_jax.model import load

# JAX's compile-phase events (jax.monitoring): tracing, lowering, backend compilation.
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


def evaluate(config: Config, *, model_dir_or_run_dir, sims: int | None = None, positions=None,
             opponent: str | None = None, games: int | None = None,
             exhaustive: bool = False) -> dict:
    """Loads a model and runs one measure: `positions` (a .jsonl or .obf benchmark file),
    `opponent` (an arena of `games` games against a named opponent, model paths included,
    played at `sims` too) or `exhaustive` (TicTacToe).

    `model_dir_or_run_dir`: any path `model.load` reads. `config`: what the model plays with
    (`load.model_config`); `sims` defaults to the bot's (`load.default_simulations`: an
    export's own, else export.simulations or evaluation.simulations); `games` to
    evaluation.games; the seed comes from `config`. Returns the measure's dict plus
    game, model, iteration and simulations. ValueError (one line) on a bad input.
    """
    chosen = [name for name, given in
              (("positions", positions is not None), ("opponent", opponent is not None),
               ("exhaustive", exhaustive)) if given]
    if len(chosen) != 1:
        raise ValueError("choose exactly one measure: positions (a benchmark file), an opponent "
                         f"or exhaustive; got {', '.join(chosen) or 'none'}")
    model = load.load_model(model_dir_or_run_dir, config)
    game = model.game
    sims = load.default_simulations(model_dir_or_run_dir, config) if sims is None else sims
    agent = agents.search_agent(game, model.network.apply, model.params, sims)
    key = jax.random.key(config.common.seed)
    result = {"game": game.name, "model": str(model_dir_or_run_dir),
              "iteration": model.iteration, "simulations": sims}
    if opponent is not None:
        games = arena.even_games(config.evaluation.games) if games is None else games
        opponent_moves = agents.opponent_agent(game, opponent, simulations=sims)
        result["opponent"] = opponent
        with _play_seconds() as seconds:
            result.update(arena.match_summary(game, agent, opponent_moves, games, key))
    else:
        if positions is not None:
            result["positions"] = str(positions)
        benchmark = position_sets.load_benchmark(game, "exhaustive" if exhaustive else positions)
        with _play_seconds() as seconds:
            result.update(benchmark.measure(agent, key))
    result["search_seconds"] = seconds[0]
    return result


@contextlib.contextmanager
def _play_seconds() -> Iterator[list[float]]:
    """Yields a list that holds, once the block ends, its wall time less the time JAX spent
    tracing and compiling inside it."""
    compiling = []

    def listener(event: str, duration: float, **_) -> None:
        if event in _COMPILE_EVENTS:
            compiling.append(duration)

    seconds = []
    jax.monitoring.register_event_duration_secs_listener(listener)
    started = time.perf_counter()
    try:
        yield seconds
    finally:
        seconds.append(max(time.perf_counter() - started - sum(compiling), 0.0))
        jax.monitoring.unregister_event_duration_listener(listener)
