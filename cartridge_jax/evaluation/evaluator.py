"""The training run's evaluation: matches against the configured opponents and the best network
so far, then the benchmark position sets, every `evaluation.interval` iterations. Each set is
measured twice: by the agent (its metrics, e.g. "mistake_rate") and by the raw network's most likely
move ("raw_mistake_rate"; one forward pass per position, next to free), so a run shows what the
network learned and what search adds to it.

    evaluator = Evaluator(config, game, network.apply, mesh)
    entries, points, best = evaluator.evaluate(params, best, iteration, step, key)

A score of at least `evaluation.win_threshold` against the best network makes the evaluated one
the new best. Opponents given by name (model paths included) are loaded once, benchmark sets
read once, and every match shares one compilation: the opponent is picked inside it by
`lax.switch`, and parameters are arguments.

Evaluation splits its games and positions over this process's devices alone: every process
plays the whole evaluation, so all get the same results without exchanging them (with the same
number of devices each).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.tree_util import Partial

from cartridge_jax import parallel
from cartridge_jax.config import Config, ConfigError
from cartridge_jax.evaluation import agents, arena, position_sets
from cartridge_jax.games import Game
from cartridge_jax.model.search import ApplyFn
from cartridge_jax.run import stats as stats_lib

BEST = "best"  # the opponent that is the best network so far


@dataclasses.dataclass(frozen=True)
class Best:
    """The best network so far: the evaluation's "best" opponent."""

    params: Any  # a host copy (training donates the device buffers)
    iteration: int  # 0 for the initial network


class Evaluator:
    """Opponents, position sets and matches of one configuration's evaluation."""

    def __init__(self, config: Config, game: Game, apply_fn: ApplyFn, mesh: Mesh | None = None):
        self.config, self.game, self.apply_fn = config, game, apply_fn
        self.opponent_names = (*config.evaluation.opponents, BEST)
        self.games = arena.even_games(config.evaluation.games)
        mesh = mesh or parallel.data_mesh()
        self.mesh = parallel.data_mesh(
            [device for device in mesh.devices.flat if device.process_index == jax.process_index()])

    def agent(self, params) -> agents.Agent:
        """The evaluated agent (and the best model's) with `params`."""
        return agents.search_agent(self.game, self.apply_fn, params,
                                   self.config.evaluation.simulations)

    @functools.cached_property
    def opponents(self) -> tuple[agents.Agent, ...]:
        """The configured opponents' agents (models loaded once); ConfigError if one cannot be."""
        try:
            return tuple(
                agents.opponent_agent(self.game, name,
                                      simulations=self.config.evaluation.simulations)
                for name in self.config.evaluation.opponents)
        except ValueError as error:
            raise ConfigError(f"evaluation.opponents: {error}") from None

    @functools.cached_property
    def benchmarks(self) -> tuple[position_sets.PositionSet, ...]:
        """The configured position sets, loaded once; ConfigError if one cannot be."""
        limit = self.config.evaluation.benchmark_positions
        try:
            return tuple(position_sets.load_benchmark(self.game, name, limit=limit)
                         for name in self.config.evaluation.benchmarks)
        except ValueError as error:
            raise ConfigError(f"evaluation.benchmarks: {error}") from None

    def check(self) -> None:
        """Loads the opponents and benchmark sets now: a bad one stops a run before it starts."""
        _ = self.opponents, self.benchmarks

    def match(self, params, best_params, index: int, key: jax.Array) -> arena.MatchResult:
        """The agent with `params` against opponent `opponent_names[index]` ("best": the agent
        with `best_params`), in one compilation for every opponent."""
        opponents = (*self.opponents, self.agent(best_params))
        opponent = Partial(_switch, opponents, jnp.int32(index))
        return arena.result(arena.match(self.game, self.agent(params), opponent, self.games,
                                        key, self.mesh))

    @property
    def tests(self) -> int:
        """Matches and position sets in one evaluation (for a progress bar)."""
        return len(self.opponent_names) + len(self.benchmarks)

    def evaluate(self, params, best: Best, iteration: int, step: int, key: jax.Array,
                 after_test: Callable[[], None] = lambda: None
                 ) -> tuple[list[stats_lib.EvalEntry], list[stats_lib.BenchmarkPoint], Best]:
        """(eval entries, benchmark points, best): matches against every opponent and the best
        network, then the benchmark sets; the network becomes the best on a high enough score.
        `after_test` runs on the host after each match and set.

        Every process runs the whole evaluation on its own devices, from a host copy of the
        parameters, so every process gets the same results (same key, same program)."""
        params = jax.device_get(params)
        # The key too: it lives on every device of the run, and the evaluation on this process's.
        key = jax.random.wrap_key_data(jax.device_get(jax.random.key_data(key)),
                                       impl=jax.random.key_impl(key))
        match_key, benchmark_key = jax.random.split(key)
        results, measures = {}, {}
        for index, name in enumerate(self.opponent_names):
            results[name] = self.match(params, best.params, index,
                                       jax.random.fold_in(match_key, index))
            after_test()
        raw_network = agents.search_agent(self.game, self.apply_fn, params, 0)
        for index, positions in enumerate(self.benchmarks):
            set_key = jax.random.fold_in(benchmark_key, index)
            raw = positions.measure(raw_network, set_key, mesh=self.mesh)
            measures[positions.name] = {
                **positions.measure(self.agent(params), set_key, mesh=self.mesh),
                **{f"raw_{metric}": value for metric, value in raw.items() if metric != "n"}}
            after_test()
        promoted = results[BEST].score >= self.config.evaluation.win_threshold
        entries = [
            stats_lib.eval_entry(step=step, iteration=iteration, opponent=name, wins=result.wins,
                                 draws=result.draws, losses=result.losses,
                                 became_new_best=promoted and name == BEST)
            for name, result in results.items()]
        points = [
            stats_lib.BenchmarkPoint(step=step, iteration=iteration, name=name, metric=metric,
                                     value=value)
            for name, measure in measures.items() for metric, value in measure.items()
            if metric != "n"]
        return entries, points, Best(params, iteration) if promoted else best


def _switch(opponents, index, key, states):
    return jax.lax.switch(index, opponents, key, states)
