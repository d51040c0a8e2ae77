"""Each training phase compiles once per configuration: repeated chunks and iterations, and
every evaluation opponent (the best model included) and benchmark, reuse the first compilation
(no shape, dtype or weak-type drift)."""

import jax
from helpers import TINY_TOML

from cartridge_jax import config as config_lib
from cartridge_jax.evaluation import agents, arena
from cartridge_jax.evaluation.evaluator import Evaluator
from cartridge_jax.training.trainer import Trainer


def test_phases_compile_once(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    config, _ = config_lib.load_config(config_file=str(tmp_path / "tiny.toml"), env={}, flags={
        "evaluation.opponents": '["random", "perfect", "alphabeta:2", "mcts-rollout:8"]',
        "evaluation.benchmarks": '["exhaustive"]'})
    trainer = Trainer(config)
    evaluator = Evaluator(config, trainer.game, trainer.network.apply, trainer.mesh)
    state = trainer.initial_state()
    train_state, buffer, games = state.train_state, state.buffer, state.games
    best_params = jax.device_get(train_state.params)
    matches, moves = arena._match._cache_size(), agents.act._cache_size()
    for iteration in range(3):
        key = jax.random.key(iteration)
        games, buffer, _ = trainer.selfplay(train_state.params, games, buffer, key)
        train_state, _ = trainer.train(train_state, buffer, key, 0.0)
        for index in range(len(evaluator.opponent_names)):
            evaluator.match(train_state.params, best_params, index, key)
        for positions in evaluator.benchmarks:
            positions.measure(evaluator.agent(train_state.params), key)
        best_params = jax.device_get(train_state.params)  # as a promotion does
    assert trainer.selfplay._cache_size() == 1
    assert trainer.train._cache_size() == 1
    assert arena._match._cache_size() == matches + 1
    assert agents.act._cache_size() == moves + 1
