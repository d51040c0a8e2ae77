"""Each training phase compiles once per configuration: repeated chunks and iterations, and
every evaluation opponent, reuse the first compilation (no shape, dtype or weak-type drift)."""

import jax

from cartridge_jax import config as config_lib
from cartridge_jax import loop

FLAGS = {
    "common.preset": "none", "model.kind": "mlp", "model.mlp_hidden": "[16]", "model.value_hidden": "16",
    "mcts.simulations": "4", "mcts.max_considered_actions": "4", "selfplay.games": "8",
    "selfplay.moves_per_iteration": "8", "training.steps_per_iteration": "4",
    "training.batch_size": "16", "training.replay_capacity": "512", "evaluation.games": "4",
    "evaluation.simulations": "4",
}


def test_phases_compile_once():
    config, _ = config_lib.load_config(env={}, flags=FLAGS)
    trainer = loop.Trainer(config)
    state = trainer.initial_state()
    train_state, buffer, games = state.train_state, state.buffer, state.games
    for iteration in range(3):
        key = jax.random.key(iteration)
        games, buffer, _ = trainer._selfplay(train_state.params, games, buffer, key)
        train_state, _ = trainer._train(train_state, buffer, key)
        for index in range(len(trainer.opponents)):
            trainer._evaluate(train_state.params, index, key)
    assert trainer._selfplay._cache_size() == 1
    assert trainer._train._cache_size() == 1
    assert trainer._evaluate._cache_size() == 1
