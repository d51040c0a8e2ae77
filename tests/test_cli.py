"""The command line: outputs people and scripts rely on, and one-line errors with status 2."""

import json
import subprocess
import sys

import pytest

from cartridge_jax import cli

COMMANDS = ["config", "perft", "demo", "bench", "train", "export", "eval", "serve", "play",
            "ladder", "ship"]


def run(capsys, monkeypatch, tmp_path, *argv, env=None):
    """Runs the CLI in-process in an empty directory with a clean CARTRIDGE_* environment."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("CARTRIDGE_")]:
        monkeypatch.delenv(name)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_each_command(capsys, monkeypatch, tmp_path, command):
    status, out, _ = run(capsys, monkeypatch, tmp_path, command, "--help")
    assert status == 0 and "usage:" in out


def test_train_help_says_what_a_stop_keeps(capsys, monkeypatch, tmp_path):
    _, out, _ = run(capsys, monkeypatch, tmp_path, "train", "--help")
    text = " ".join(out.split())
    assert "Ctrl-C or SIGTERM drops the iteration in progress" in text
    assert "a second Ctrl-C quits at once" in text
    assert "resumes after the last iteration saved" in text


@pytest.mark.parametrize("argv, env, needle", [
    (["config", "--training.lerning_rate", "1"], {}, "--training.lerning_rate"),
    (["config"], {"CARTRIDGE_TRAINING_LERNING_RATE": "1"}, "CARTRIDGE_TRAINING_LEARNING_RATE"),
    (["config", "--training.learning_rate", "-1"], {}, "-1"),
    (["config", "--mcts.simulations", "many"], {}, "many"),
    (["config", "--game", "chess"], {}, "connect4"),
    (["config", "--preset", "huge"], {}, "huge"),
    (["config", "--config", "missing.toml"], {}, "missing.toml"),
    (["config"], {"CARTRIDGE_CONFIG": "bad.toml"}, "bad.toml"),
    (["perft", "chess", "3"], {}, "tictactoe"),
    (["perft", "connect4", "-1"], {}, "-1"),
    (["perft", "connect4", "two"], {}, "two"),
    (["demo", "go"], {}, "othello"),
    (["bench", "--batch-sizes", "0"], {}, "0"),
    (["bench", "--games", "chess"], {}, "chess"),
    (["frobnicate"], {}, "frobnicate"),
    (["eval", "--model", "nowhere", "--exhaustive"], {}, "nowhere"),
    (["eval", "--model", ".", "--exhaustive", "--opponent", "random"], {}, "--opponent"),
    (["eval", "--model", "."], {}, "--positions"),
    (["serve", "--port", "99999"], {}, "65535"),
    (["serve", "--port", "http"], {}, "http"),
    (["serve", "bad.toml"], {}, "is a file"),
    (["train", "--run-dir", "bad.toml"], {}, "is a file"),
    (["config", "--selfplay.games", "99999999999999999999"], {}, "32-bit"),
    (["export", "corrupt"], {}, "corrupt/stats.json"),
])
def test_errors_are_one_line_with_status_2(capsys, monkeypatch, tmp_path, argv, env, needle):
    (tmp_path / "bad.toml").write_text("[training\nlearning_rate = 1\n")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "stats.json").write_text('{"game": "tictac')  # cut mid-write
    status, _, err = run(capsys, monkeypatch, tmp_path, *argv, env=env)
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err


def test_config_shows_sources_of_each_layer(capsys, monkeypatch, tmp_path):
    (tmp_path / "config.toml").write_text("[training]\nbatch_size = 64\n")
    status, out, _ = run(capsys, monkeypatch, tmp_path, "config", "--seed", "7",
                         env={"CARTRIDGE_MCTS_SIMULATIONS": "8"})
    assert status == 0
    assert "seed = 7  # flag" in out
    assert "simulations = 8  # environment CARTRIDGE_MCTS_SIMULATIONS" in out
    assert "batch_size = 64  # file" in out
    assert "# default" in out


def test_perft_prints_the_count_last(capsys, monkeypatch, tmp_path):
    status, out, _ = run(capsys, monkeypatch, tmp_path, "perft", "tictactoe", "9")
    assert status == 0 and out.strip().splitlines()[-1] == "127872"
    status, out, _ = run(capsys, monkeypatch, tmp_path, "perft", "connect4", "4", "--divide")
    lines = out.strip().splitlines()
    assert lines[:7] == [f"{column}: 343" for column in range(1, 8)] and lines[-1] == "2401"


def test_demo_plays_a_game_to_the_end(capsys, monkeypatch, tmp_path):
    status, out, _ = run(capsys, monkeypatch, tmp_path, "demo", "tictactoe", "--seed", "1")
    assert status == 0
    assert out.count("plays") >= 5 and out.strip().splitlines()[-1].startswith("Result:")


def test_bench_writes_json_with_the_expected_fields(capsys, monkeypatch, tmp_path):
    status, _, _ = run(capsys, monkeypatch, tmp_path, "bench", "--games", "tictactoe",
                       "--batch-sizes", "8", "--steps", "4", "--repeats", "1", "--out", "b.json")
    assert status == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert {"platform", "device_kind", "jax_version", "cpu"} <= set(result["device"])
    (row,) = result["random_play"]
    assert row["game"] == "tictactoe" and row["batch_size"] == 8 and row["ours_steps_per_s"] > 0
    assert row["pgx_steps_per_s"] > 0 and row["ours_over_pgx"] > 0  # pgx is a dev dependency
    assert (tmp_path / "b.md").read_text().startswith("# Random play")


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cartridge_jax", "perft", "chess", "1"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("cartridge-jax perft: error: unknown game 'chess': "
                                     "available games are tictactoe, connect4, othello")
