"""Tests for cartridge_jax.config: layers, sources, presets, and one-line error messages."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

import cartridge_jax
from cartridge_jax import config as cfg
from cartridge_jax import games
from cartridge_jax.config import PRESETS, Config, ConfigError, format_config, load_config, presets
from cartridge_jax.run.layout import recorded_config, run_dir

REPO_CONFIG_TOML = pathlib.Path(__file__).resolve().parents[1] / "config.toml"
COMMENTED_KEY_LINE = re.compile(r"^# ([a-z_]+) = (.*)$")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run in an empty folder (no ./config.toml), so results never vary."""
    monkeypatch.chdir(tmp_path)


def write(path: pathlib.Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def load(**kwargs) -> tuple[Config, dict[str, str]]:
    """load_config that never reads the real environment."""
    kwargs.setdefault("env", {})
    return load_config(**kwargs)


def error_of(**kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.strip() == message
    return message


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_without_a_preset_are_the_model_defaults():
    config, sources = load(flags={"common.preset": "none"})
    assert config.model_copy(update={"common": Config().common}) == Config()
    assert config.training.learning_rate == 1e-3
    assert config.model.mlp_hidden == (128, 128, 64)
    assert config.evaluation.opponents == ("random", "greedy")
    assert {source for name, source in sources.items() if name != "common.preset"} == {"default"}


def test_sources_cover_every_key():
    _, sources = load()
    assert set(sources) == {f"{section}.{key}" for section, key, *_ in cfg.config_keys()}


def test_config_is_frozen_and_hashable():
    config, _ = load()
    with pytest.raises(ValidationError):
        config.training.batch_size = 1
    assert hash(config) == hash(load()[0])


def test_config_keys_have_descriptions_and_valid_defaults():
    keys = cfg.config_keys()
    assert [section for section in dict.fromkeys(s for s, *_ in keys)] == [
        "common", "model", "mcts", "selfplay", "training", "evaluation", "export", "distributed"
    ]
    for section, key, default, description in keys:
        assert description, f"{section}.{key} has no description"
        assert getattr(getattr(Config(), section), key) == default


# --- layers and sources ------------------------------------------------------------------------


def test_auto_preset_follows_game_and_backend():
    config, sources = load(flags={"common.game": "connect4"})
    assert config.model.kind == PRESETS["connect4-cpu"]["model"]["kind"]
    assert sources["model.kind"] == "preset connect4-cpu"
    config, sources = load(flags={"common.game": "connect4"}, backend="gpu")
    assert sources["model.kind"] == "preset connect4-gpu"
    assert config.selfplay.games == PRESETS["connect4-gpu"]["selfplay"]["games"]


def test_named_preset_sets_its_game():
    config, sources = load(env={"CARTRIDGE_COMMON_PRESET": "othello-cpu"})
    assert config.common.game == "othello"
    assert sources["common.game"] == "preset othello-cpu"
    assert sources["common.preset"] == "environment CARTRIDGE_COMMON_PRESET"


def test_each_layer_overrides_the_one_below(tmp_path):
    path = write(
        tmp_path / "mine.toml",
        "[mcts]\nsimulations = 100\n[training]\nbatch_size = 64\nlearning_rate = 0.01\n",
    )
    env = {"CARTRIDGE_TRAINING_BATCH_SIZE": "32", "CARTRIDGE_TRAINING_LEARNING_RATE": "3e-4"}
    flags = {"training.learning_rate": "5e-5"}
    config, sources = load(config_file=path, env=env, flags=flags)
    assert config.model.kind == "mlp"  # preset tictactoe-cpu over the default "auto"
    assert config.mcts.simulations == 100  # file over preset
    assert config.training.batch_size == 32  # environment over file
    assert config.training.learning_rate == 5e-5  # flag over environment
    assert sources["model.kind"] == "preset tictactoe-cpu"
    assert sources["mcts.simulations"] == f"file {path}"
    assert sources["training.batch_size"] == "environment CARTRIDGE_TRAINING_BATCH_SIZE"
    assert sources["training.learning_rate"] == "flag --training.learning_rate"
    assert sources["training.weight_decay"] == "default"


def test_text_values_are_read_as_toml_else_as_strings():
    flags = {
        "common.game": "connect4",
        "common.run_dir": "2024",  # a string field keeps digits as text
        "common.data_dir": '"quoted dir"',
        "selfplay.augment": "false",
        "model.mlp_hidden": "[32, 16]",
        "evaluation.opponents": '["greedy"]',
        "training.learning_rate": "1",  # an integer is a fine float
    }
    config, _ = load(flags=flags)
    assert config.common.game == "connect4"
    assert config.common.run_dir == "2024"
    assert config.common.data_dir == "quoted dir"
    assert config.selfplay.augment is False
    assert config.model.mlp_hidden == (32, 16)
    assert config.evaluation.opponents == ("greedy",)
    assert config.training.learning_rate == 1.0


def test_file_choice_cwd_then_env_then_explicit(tmp_path):
    write(tmp_path / "config.toml", "[mcts]\nsimulations = 11\n")
    env_file = write(tmp_path / "env.toml", "[mcts]\nsimulations = 22\n")
    flag_file = write(tmp_path / "flag.toml", "[mcts]\nsimulations = 33\n")
    config, sources = load()
    assert config.mcts.simulations == 11 and sources["mcts.simulations"] == "file config.toml"
    config, _ = load(env={"CARTRIDGE_CONFIG": env_file})
    assert config.mcts.simulations == 22
    config, _ = load(env={"CARTRIDGE_CONFIG": env_file}, config_file=flag_file)
    assert config.mcts.simulations == 33


def test_games_registry_decides_valid_games():
    for game in games.names():
        assert load(flags={"common.game": game})[0].common.game == game


# --- presets and run_dir -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_apply(name):
    config, sources = load(flags={"common.preset": name})
    assert config.common.preset == name
    assert config.common.game in games.names()
    assert "preset" not in PRESETS[name].get("common", {})
    for section, values in PRESETS[name].items():
        for key, value in values.items():
            assert sources[f"{section}.{key}"] == f"preset {name}"
            expected = tuple(value) if isinstance(value, list) else value
            assert getattr(getattr(config, section), key) == expected


def test_run_dir_default_and_override():
    config, _ = load(flags={"common.game": "connect4", "common.data_dir": "/tmp/d"})
    assert run_dir(config) == pathlib.Path("/tmp/d/runs/connect4")
    config, _ = load(flags={"common.run_dir": "elsewhere/run1"})
    assert run_dir(config) == pathlib.Path("elsewhere/run1")


# --- format_config and the shipped config.toml -------------------------------------------------


def test_format_config_loads_back_to_the_same_config(tmp_path):
    flags = {"common.data_dir": 'odd "dir"\\x', "training.learning_rate": "3e-5",
             "model.mlp_hidden": "[7]", "common.preset": "connect4-cpu"}
    config, sources = load(flags=flags)
    text = format_config(config, sources)
    assert "learning_rate = 3e-05  # flag --training.learning_rate" in text
    assert "value_hidden = 64  # preset connect4-cpu" in text
    reloaded, reloaded_sources = load(config_file=write(tmp_path / "out.toml", text))
    assert reloaded == config
    assert set(reloaded_sources.values()) == {f"file {tmp_path / 'out.toml'}"}


def test_shipped_config_toml_lists_every_key_at_its_default(tmp_path):
    lines = REPO_CONFIG_TOML.read_text().splitlines()
    listed = []
    section = None
    for line in lines:
        if line.startswith("["):
            section = line.strip("[]")
        elif match := COMMENTED_KEY_LINE.match(line):
            listed.append((section, match.group(1)))
    assert listed == [(section, key) for section, key, *_ in cfg.config_keys()]
    # As shipped it changes nothing; uncommented it spells out exactly the defaults.
    assert load(config_file=str(REPO_CONFIG_TOML))[1] == load()[1]
    uncommented = "\n".join(
        line[2:] if COMMENTED_KEY_LINE.match(line) else line for line in lines
    )
    config, sources = load(config_file=write(tmp_path / "full.toml", uncommented))
    assert config == Config()
    assert all(source.startswith("file ") for source in sources.values())


def test_shipped_config_toml_descriptions_match_the_fields():
    descriptions = {(section, key): text for section, key, _, text in cfg.config_keys()}
    section = None
    for line in REPO_CONFIG_TOML.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif match := COMMENTED_KEY_LINE.match(line):
            assert line.endswith("  # " + descriptions[section, match.group(1)])


# --- errors: one line, naming the bad thing ----------------------------------------------------


def test_unknown_section_in_file(tmp_path):
    path = write(tmp_path / "c.toml", "[trainng]\nbatch_size = 3\n")
    message = error_of(config_file=path)
    assert message.startswith('unknown section "trainng"')
    assert f"file {path}" in message and 'did you mean "training"?' in message


def test_unknown_key_in_file_suggests_the_closest(tmp_path):
    write(tmp_path / "config.toml", "[training]\nlearning_rte = 0.1\n")
    assert error_of() == (
        'unknown key "learning_rte" in [training] (file config.toml); did you mean "learning_rate"?'
    )


def test_unknown_key_without_close_match_lists_keys(tmp_path):
    message = error_of(flags={"export.zzz": "1"})
    assert 'unknown key "zzz" in [export] (flag --export.zzz)' in message
    assert "enabled, interval, min_interval_s, simulations, onnx_opset, onnx_ir_version" in message


def test_top_level_value_in_file(tmp_path):
    write(tmp_path / "config.toml", 'game = "connect4"\n')
    assert "did you mean it under [common]?" in error_of()


def test_unknown_environment_variable_suggests_the_closest():
    message = error_of(env={"CARTRIDGE_TRAINING_LEARNING_RTE": "1"})
    assert message == (
        "unknown environment variable CARTRIDGE_TRAINING_LEARNING_RTE; "
        "did you mean CARTRIDGE_TRAINING_LEARNING_RATE?"
    )


def test_unrelated_environment_is_ignored():
    config, _ = load(env={"HOME": "/root", "CARTRIDGE_CONFIG": "", "PATH": "/bin"})
    assert config.common.game == "tictactoe"


def test_out_of_range_names_key_value_source_and_limit():
    message = error_of(env={"CARTRIDGE_TRAINING_LEARNING_RATE": "-1"})
    assert message == (
        "training.learning_rate = -1 (from environment CARTRIDGE_TRAINING_LEARNING_RATE): "
        "must be greater than 0"
    )


def test_wrong_type_in_file(tmp_path):
    path = write(tmp_path / "c.toml", '[common]\nseed = "3"\n')
    assert error_of(config_file=path) == (
        f'common.seed = "3" (from file {path}): must be a valid integer'
    )


def test_wrong_list_item_points_at_the_item():
    message = error_of(flags={"model.mlp_hidden": "[8, 0]"})
    assert message == (
        "model.mlp_hidden = [8, 0] (from flag --model.mlp_hidden): item 1 must be greater than 0"
    )


def test_bad_literal_choice_lists_the_choices():
    message = error_of(flags={"mcts.search": "alphabeta"})
    assert message == (
        "mcts.search = \"alphabeta\" (from flag --mcts.search): must be 'gumbel' or 'puct'"
    )


def test_opponent_names_are_checked_one_by_one():
    config, _ = load(flags={"evaluation.opponents": '["alphabeta:3", "mcts-rollout:200", '
                                                    '"runs/old/models/connect4", "perfect"]'})
    assert config.evaluation.opponents == ("alphabeta:3", "mcts-rollout:200",
                                           "runs/old/models/connect4", "perfect")
    assert error_of(flags={"evaluation.opponents": '["random", "minimax"]'}) == (
        'evaluation.opponents = ["random", "minimax"] (from flag --evaluation.opponents): '
        "unknown opponent 'minimax': use random, greedy, perfect (TicTacToe), "
        "mcts-rollout:<simulations>, alphabeta:<depth> or a model folder path with a '/' in it")
    assert error_of(flags={"evaluation.opponents": '["alphabeta:0"]'}).endswith(
        "opponent 'alphabeta:0': write alphabeta:<depth> with a whole number of 1 or more, "
        "e.g. alphabeta:3")
    assert error_of(flags={"evaluation.opponents": '["random", "random"]'}).endswith(
        "names an opponent twice")
    assert "unknown opponent 'best'" in error_of(flags={"evaluation.opponents": '["best"]'})


def test_benchmark_names_are_checked():
    config, _ = load(flags={"common.preset": "connect4-cpu"})
    assert config.evaluation.benchmarks == tuple(presets.CONNECT4_BENCHMARKS)
    assert error_of(flags={"evaluation.benchmarks": '["pons.csv"]'}).endswith(
        "benchmark 'pons.csv': use a Connect 4 .jsonl or Othello .obf file (e.g. "
        '"connect4/Test_L2_R1.jsonl") or "exhaustive"')


def test_recorded_config_of_a_run(tmp_path):
    from cartridge_jax.run import stats

    recorded, _ = load(flags={"common.game": "connect4", "model.mlp_hidden": "[7]"})
    stats.write_stats(tmp_path / "stats.json", stats.new_stats(
        "connect4", "run", recorded.model_dump(mode="json")))
    config = recorded_config(tmp_path, flags={"mcts.simulations": 3})
    assert config.model.mlp_hidden == (7,) and config.common.game == "connect4"
    assert config.mcts.simulations == 3 and config.common.run_dir == str(tmp_path)
    (tmp_path / "stats.json").write_text("{}")
    with pytest.raises(ConfigError, match="stats.json has no integer schema_version"):
        recorded_config(tmp_path)


def test_several_problems_are_counted_on_one_line():
    message = error_of(flags={"mcts.simulations": "0", "training.batch_size": "0"})
    assert message.startswith("mcts.simulations = 0") and "(and 1 more problem(s))" in message


def test_bad_toml_names_the_file_and_position(tmp_path):
    path = write(tmp_path / "c.toml", "[training]\nbatch_size = = 3\n")
    message = error_of(config_file=path)
    assert message.startswith(f"config file {path}: invalid TOML: ") and "line 2" in message


def test_missing_explicit_files_are_errors(tmp_path):
    missing = str(tmp_path / "nope.toml")
    assert missing in error_of(config_file=missing)
    assert "CARTRIDGE_CONFIG" in error_of(env={"CARTRIDGE_CONFIG": missing})


def test_unknown_game_lists_the_games():
    message = error_of(env={"CARTRIDGE_COMMON_GAME": "chess"})
    assert message.startswith('common.game = "chess" (from environment CARTRIDGE_COMMON_GAME)')
    assert ", ".join(games.names()) in message


def test_unknown_preset_lists_the_presets(tmp_path):
    write(tmp_path / "config.toml", '[common]\npreset = "connect4-tpu"\n')
    message = error_of()
    assert message.startswith('common.preset = "connect4-tpu" (from file config.toml)')
    assert all(name in message for name in PRESETS)


def test_models_reject_unknown_fields_and_presets_directly():
    with pytest.raises(ValidationError):
        Config.model_validate({"training": {"learning_rte": 1}})
    with pytest.raises(ValidationError):
        Config.model_validate({"common": {"preset": "nope"}})


def test_reading_a_configuration_starts_no_jax():
    """The config layer is pure data: importing and loading it leaves JAX unloaded."""
    code = ("import sys; import cartridge_jax.config as c; c.load_config(env={}); "
            "c.load_config(flags={'evaluation.opponents': ['alphabeta:3']}, env={}); "
            "assert 'jax' not in sys.modules, 'jax was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_game_ids_are_the_registry():
    assert cfg.GAME_IDS == tuple(games.names())


def test_presets_name_existing_reference_sets():
    refdata = pathlib.Path(cartridge_jax.__file__).parent / "refdata"
    for name, preset in PRESETS.items():
        for benchmark in preset.get("evaluation", {}).get("benchmarks", []):
            assert benchmark == "exhaustive" or (refdata / benchmark).is_file(), (name, benchmark)
