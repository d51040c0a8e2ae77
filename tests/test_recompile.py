"""Each training phase compiles once per configuration: repeated chunks and iterations, and
every evaluation opponent, reuse the first compilation (no shape, dtype or weak-type drift)."""

import jax

from cartridge_jax import config as config_lib
from cartridge_jax import loop
from helpers import TINY_TOML


def test_phases_compile_once(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    config, _ = config_lib.load_config(config_file=str(tmp_path / "tiny.toml"), env={})
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
