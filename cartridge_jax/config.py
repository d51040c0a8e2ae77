"""One typed configuration object, assembled from layers and validated once at load.

Layers, lowest to highest priority:

    defaults < preset < file < environment < flags

- defaults: the field defaults below, the only place a hyperparameter's default lives;
- preset: a named set of overrides from `PRESETS`, chosen by `common.preset` ("auto" picks
  `<game>-gpu` or `<game>-cpu` from the backend JAX finds, "none" picks nothing);
- file: a TOML file, `--config PATH`, else `$CARTRIDGE_CONFIG`, else `./config.toml` if present;
- environment: `CARTRIDGE_<SECTION>_<KEY>`, e.g. `CARTRIDGE_TRAINING_LEARNING_RATE=3e-4`;
- flags: `{"section.key": text}` from the command line.

Environment and flag values are text, read as TOML values (`3e-4`, `true`, `[64, 64]`) and
otherwise taken as the raw string (`connect4`). Every problem is a `ConfigError` whose message is
one line naming the bad name or value, where it came from, and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import tomllib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin

from etils import epath
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      field_validator, model_validator)

ENV_PREFIX = "CARTRIDGE_"
CONFIG_FILE_ENV = "CARTRIDGE_CONFIG"
JAX_CACHE_DIR_ENV = "CARTRIDGE_JAX_CACHE_DIR"  # where compiled programs are kept (not a setting)
_NOT_SETTINGS = (CONFIG_FILE_ENV, JAX_CACHE_DIR_ENV)
DEFAULT_CONFIG_FILE = "config.toml"


class ConfigError(Exception):
    """A configuration problem; the message is one line meant for the person who made it."""


def _list_to_tuple(value: Any) -> Any:
    """TOML arrays arrive as lists; tuples keep the frozen config hashable (a valid jit static)."""
    return tuple(value) if isinstance(value, list) else value


# strict: a file's `seed = "3"` or `augment = 1` is a mistake to report, not to coerce.
_SECTION_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True)
_PositiveInts = Annotated[tuple[Annotated[int, Field(gt=0)], ...], BeforeValidator(_list_to_tuple)]
_Strings = Annotated[tuple[str, ...], BeforeValidator(_list_to_tuple)]


class CommonConfig(BaseModel):
    """Which game, where runs live, and how chatty the logs are."""

    model_config = _SECTION_CONFIG

    game: str = Field("tictactoe", description="Game to play: tictactoe, connect4 or othello.")
    seed: int = Field(0, ge=0, description="Seed of every random number in a run.")
    data_dir: str = Field("data", description="Root folder of runs: <data_dir>/runs/<game>.")
    run_dir: str = Field("", description="Folder of this run; empty means <data_dir>/runs/<game>.")
    preset: str = Field(
        "auto",
        description='Preset under file/env/flags: a name, "none", or "auto" (<game>-gpu or -cpu).',
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description="debug: also log JAX compilations; info: progress bars and a line per "
        "iteration; warning/error: only start, stop and problems.",
    )

    @field_validator("game")
    @classmethod
    def _known_game(cls, game: str) -> str:
        # Imported here: the games package pulls in JAX, and nothing in it needs the config.
        from cartridge_jax import games

        if game not in games.names():
            raise ValueError(f"unknown game; available games: {', '.join(games.names())}")
        return game

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str) -> str:
        if preset not in ("auto", "none") and preset not in PRESETS:
            raise ValueError(_unknown_preset_problem())
        return preset


class ModelConfig(BaseModel):
    """The policy-value network."""

    model_config = _SECTION_CONFIG

    kind: Literal["auto", "mlp", "resnet"] = Field(
        "auto", description='Network family; "auto" takes the preset\'s choice.'
    )
    mlp_hidden: _PositiveInts = Field(
        (128, 128, 64), min_length=1, description="Widths of the MLP trunk's hidden layers."
    )
    resnet_blocks: int = Field(4, ge=1, description="Residual blocks in the ResNet trunk.")
    resnet_channels: int = Field(64, gt=0, description="Convolution channels in the ResNet trunk.")
    value_hidden: int = Field(64, gt=0, description="Width of the value head's hidden layer.")
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Compute dtype of the network (parameters stay float32)."
    )


class MctsConfig(BaseModel):
    """Tree search used by self-play and by the playing agent."""

    model_config = _SECTION_CONFIG

    search: Literal["gumbel", "puct"] = Field(
        "gumbel", description="Gumbel MuZero (good with few simulations) or AlphaZero PUCT."
    )
    simulations: int = Field(32, ge=1, description="Simulations per move in self-play.")
    c_puct: float = Field(
        1.25, gt=0, allow_inf_nan=False, description="PUCT exploration constant."
    )
    dirichlet_alpha: float = Field(
        0.3, gt=0, allow_inf_nan=False, description="PUCT: root Dirichlet noise concentration."
    )
    dirichlet_fraction: float = Field(
        0.25, ge=0, le=1, description="PUCT: share of Dirichlet noise in the root prior."
    )
    temperature: float = Field(
        1.0, ge=0, allow_inf_nan=False, description="Move-sampling temperature early in a game."
    )
    temperature_drop_move: int = Field(
        15, ge=0, description="After this many moves the temperature becomes final_temperature."
    )
    final_temperature: float = Field(
        0.1, ge=0, allow_inf_nan=False, description="Move-sampling temperature later in a game."
    )
    gumbel_scale: float = Field(
        1.0, ge=0, allow_inf_nan=False, description="Gumbel: scale of the root Gumbel noise."
    )
    max_considered_actions: int = Field(
        16, ge=1, description="Gumbel: actions considered at the root by sequential halving."
    )


class SelfplayConfig(BaseModel):
    """How training games are generated."""

    model_config = _SECTION_CONFIG

    games: int = Field(256, ge=1, description="Games played in parallel.")
    random_opening_moves: int = Field(
        2, ge=0, description="Each game starts with 0 to this many uniformly random plies."
    )
    moves_per_iteration: int = Field(
        64, ge=1, description="Moves every game plays per iteration (finished games restart)."
    )
    augment: bool = Field(True, description="Add the board symmetries of each position to replay.")


class TrainingConfig(BaseModel):
    """The optimiser, the replay buffer and checkpoints."""

    model_config = _SECTION_CONFIG

    iterations: int = Field(20, ge=1, description="Self-play + training iterations in a run.")
    steps_per_iteration: int = Field(100, ge=1, description="Gradient steps per iteration.")
    batch_size: int = Field(256, ge=1, description="Positions per gradient step.")
    learning_rate: float = Field(
        1e-3, gt=0, allow_inf_nan=False, description="Peak learning rate (after warmup)."
    )
    weight_decay: float = Field(
        1e-4, ge=0, allow_inf_nan=False, description="Decoupled weight decay (AdamW)."
    )
    grad_clip_norm: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="Gradients are clipped to this global norm."
    )
    warmup_steps: int = Field(100, ge=0, description="Steps of linear learning-rate warmup.")
    final_lr_fraction: float = Field(
        0.1, ge=0, le=1, description="Cosine decay ends at this fraction of learning_rate."
    )
    replay_capacity: int = Field(100_000, ge=1, description="Positions the replay buffer holds.")
    replay_window: int = Field(
        0, ge=0, description="Sample only the newest this-many positions; 0 means the whole buffer."
    )
    value_loss_weight: float = Field(
        1.0, ge=0, allow_inf_nan=False, description="Value loss weight (policy loss weighs 1)."
    )
    checkpoint_interval: int = Field(1, ge=1, description="Save a checkpoint every K iterations.")
    max_checkpoints: int = Field(3, ge=1, description="Checkpoints kept on disk (oldest removed).")
    snapshot_interval: int = Field(
        10, ge=0, description="Keep the parameters every K iterations in snapshots/ (for the Elo "
        "ladder); 0 means only the best ones."
    )


class EvaluationConfig(BaseModel):
    """Matches that measure the agent's strength."""

    model_config = _SECTION_CONFIG

    interval: int = Field(1, ge=0, description="Evaluate every K iterations; 0 means never.")
    games: int = Field(50, ge=1, description="Games per opponent, half with each colour "
                       "(rounded up to an even number per device).")
    simulations: int = Field(
        64, ge=1, description="Simulations per move of the evaluated (and the playing) agent."
    )
    win_threshold: float = Field(
        0.55, ge=0, le=1, description="Score against the best model needed to become the best."
    )
    opponents: _Strings = Field(
        ("random", "greedy"),
        description="Opponents besides the best model: random, greedy, perfect (TicTacToe), "
        "mcts-rollout:<sims>, alphabeta:<depth>, or a model folder path.",
    )
    benchmarks: _Strings = Field(
        (), description='Position sets measured at each evaluation: refdata files (e.g. '
        '"connect4/Test_L2_R1.jsonl"), paths, or "exhaustive" (TicTacToe).'
    )
    benchmark_positions: int = Field(
        200, ge=0, description="Positions used of each benchmark file (its first); 0 means all."
    )

    @field_validator("opponents")
    @classmethod
    def _known_opponents(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from cartridge_jax import opponents  # imported here: it pulls in JAX

        for name in names:
            opponents.parse(name)
        if len(set(names)) < len(names):
            raise ValueError("names an opponent twice")
        return names

    @field_validator("benchmarks")
    @classmethod
    def _known_benchmarks(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name != "exhaustive" and not name.endswith((".jsonl", ".obf")):
                raise ValueError(f"benchmark {name!r}: use a Connect 4 .jsonl or Othello .obf "
                                 'file (e.g. "connect4/Test_L2_R1.jsonl") or "exhaustive"')
        return names


class ExportConfig(BaseModel):
    """ONNX export of the network for the web page."""

    model_config = _SECTION_CONFIG

    enabled: bool = Field(True, description="Export model.onnx after each checkpoint.")
    onnx_opset: int = Field(18, ge=1, le=26, description="ONNX operator set version.")
    onnx_ir_version: int = Field(10, ge=1, le=13, description="ONNX IR version of the file.")


class DistributedConfig(BaseModel):
    """Several processes (hosts) training together; all local devices are always used."""

    model_config = _SECTION_CONFIG

    initialize: bool = Field(
        False, description="Join a multi-process run (jax.distributed.initialize); settings "
        "left unset below are detected by JAX on SLURM, TPU pods and Open MPI."
    )
    coordinator_address: str = Field(
        "", description='host:port of process 0, e.g. "10.0.0.1:1234"; empty means detected.'
    )
    num_processes: int = Field(0, ge=0, description="Processes in the run; 0 means detected.")
    process_id: int = Field(
        -1, ge=-1, description="This process's index, 0 to num_processes - 1; -1 means detected."
    )
    timeout_s: int = Field(
        300, ge=1, description="Seconds to wait for every process to join before giving up."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DistributedConfig:
        given = [name for name, unset in (("coordinator_address", ""), ("num_processes", 0),
                                          ("process_id", -1)) if getattr(self, name) != unset]
        if given and not self.initialize:
            raise ValueError(f"{given[0]} is set but initialize is false: add "
                             "--distributed.initialize true")
        if 0 < self.num_processes <= self.process_id:
            raise ValueError(f"process_id {self.process_id} must be below num_processes "
                             f"{self.num_processes}")
        return self


class Config(BaseModel):
    """The whole configuration; build it with `load_config`, read it anywhere."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    common: CommonConfig = Field(default_factory=CommonConfig, description="Game, paths, logs.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The network.")
    mcts: MctsConfig = Field(default_factory=MctsConfig, description="Tree search.")
    selfplay: SelfplayConfig = Field(default_factory=SelfplayConfig, description="Self-play.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Training.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Matches.")
    export: ExportConfig = Field(default_factory=ExportConfig, description="ONNX export.")
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig, description="Several hosts."
    )


# The reference position sets shipped in cartridge_jax/refdata (see its README).
CONNECT4_BENCHMARKS = [f"connect4/Test_{name}.jsonl"
                       for name in ("L3_R1", "L2_R1", "L1_R1", "L1_R3")]
OTHELLO_BENCHMARKS = ["othello/fforum-1-19.obf", "othello/fforum-20-39.obf"]

# Presets: partial overrides, {section: {key: value}}. Each names its game so that
# `--common.preset connect4-gpu` alone is a complete recipe. Positions per iteration are
# games x moves_per_iteration (x8 or x2 with augmentation), which sizes replay_capacity.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Measured: up to 6 random opening plies make self-play visit the positions that follow
    # early blunders (with 2, the agent missed wins there); at 200 simulations (Cartridge2's bot
    # strength) the trained agent is perfect while an untrained net is not.
    "tictactoe-cpu": {
        "common": {"game": "tictactoe"},
        "model": {"kind": "mlp", "mlp_hidden": [128, 128, 64], "value_hidden": 32},
        "mcts": {"simulations": 32, "temperature_drop_move": 5, "max_considered_actions": 9},
        "selfplay": {"games": 128, "moves_per_iteration": 32, "random_opening_moves": 6},
        "training": {"iterations": 20, "steps_per_iteration": 200, "batch_size": 256,
                     "replay_capacity": 100_000, "checkpoint_interval": 5},
        "evaluation": {"simulations": 200, "interval": 10, "benchmarks": ["exhaustive"]},
    },
    "tictactoe-gpu": {
        "common": {"game": "tictactoe"},
        "model": {"kind": "mlp", "mlp_hidden": [256, 256, 128], "value_hidden": 64},
        "mcts": {"simulations": 32, "temperature_drop_move": 5, "max_considered_actions": 9},
        "selfplay": {"games": 1024, "moves_per_iteration": 32, "random_opening_moves": 6},
        "training": {"iterations": 20, "batch_size": 1024, "replay_capacity": 300_000},
        "evaluation": {"simulations": 200, "interval": 5, "benchmarks": ["exhaustive"]},
    },
    # CPU presets use an MLP: measured on a 2-core CPU, Connect 4 self-play ran ~5,700
    # positions/s with a 256-256-128 MLP against ~800 with a 2x32 ResNet, whose gradient steps
    # inside lax.scan were ~250x slower still. The GPU presets use the real ResNet, computing in
    # bfloat16: on an H100 Connect 4 self-play ran 1.52x faster than in float32 (TF32), and
    # bfloat16 training and play scored as float32 did (docs/performance.md).
    "connect4-cpu": {
        "common": {"game": "connect4"},
        "model": {"kind": "mlp", "mlp_hidden": [256, 256, 128], "value_hidden": 64},
        "mcts": {"simulations": 32, "temperature_drop_move": 15, "max_considered_actions": 7},
        "selfplay": {"games": 256, "moves_per_iteration": 42},
        "training": {"iterations": 100, "steps_per_iteration": 200, "replay_capacity": 200_000},
        "evaluation": {"simulations": 128, "interval": 5, "benchmarks": CONNECT4_BENCHMARKS},
    },
    "connect4-gpu": {
        "common": {"game": "connect4"},
        "model": {"kind": "resnet", "resnet_blocks": 8, "resnet_channels": 128,
                  "value_hidden": 256, "dtype": "bfloat16"},
        "mcts": {"simulations": 64, "temperature_drop_move": 15, "max_considered_actions": 7},
        "selfplay": {"games": 4096, "moves_per_iteration": 42},
        "training": {
            "iterations": 100,
            "steps_per_iteration": 400,
            "batch_size": 1024,
            "learning_rate": 2e-3,
            "replay_capacity": 2_000_000,
        },
        "evaluation": {"games": 100, "simulations": 200, "benchmarks": CONNECT4_BENCHMARKS},
    },
    "othello-cpu": {
        "common": {"game": "othello"},
        "model": {"kind": "mlp", "mlp_hidden": [256, 256, 128], "value_hidden": 64},
        "mcts": {"simulations": 32, "temperature_drop_move": 30, "max_considered_actions": 16},
        "selfplay": {"games": 128, "moves_per_iteration": 64},
        "training": {"iterations": 50, "steps_per_iteration": 200, "replay_capacity": 200_000},
        "evaluation": {"simulations": 128, "benchmarks": OTHELLO_BENCHMARKS},
    },
    "othello-gpu": {
        "common": {"game": "othello"},
        "model": {"kind": "resnet", "resnet_blocks": 10, "resnet_channels": 128,
                  "value_hidden": 256, "dtype": "bfloat16"},
        "mcts": {"simulations": 64, "temperature_drop_move": 30, "max_considered_actions": 16},
        "selfplay": {"games": 2048, "moves_per_iteration": 64},
        "training": {
            "iterations": 200,
            "steps_per_iteration": 400,
            "batch_size": 1024,
            "learning_rate": 2e-3,
            "replay_capacity": 2_000_000,
        },
        "evaluation": {"games": 100, "simulations": 200, "benchmarks": OTHELLO_BENCHMARKS},
    },
}


# ---------------------------------------------------------------------------------------------
# Names: sections, keys and their defaults, straight from the models.


def _sections() -> dict[str, type[BaseModel]]:
    """Section name -> its model class, in declaration order."""
    return {name: field.annotation for name, field in Config.model_fields.items()}


def config_keys() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, description) for every setting, in declaration order."""
    return [
        (section, key, field.default, field.description or "")
        for section, model in _sections().items()
        for key, field in model.model_fields.items()
    ]


def _expects_text(section: str, key: str) -> bool:
    """Whether a field holds a string (plain or one of a Literal's string choices)."""
    annotation = _sections()[section].model_fields[key].annotation
    if get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in get_args(annotation))
    return annotation is str


def _unknown_preset_problem() -> str:
    return f'unknown preset; available presets: "auto", "none", {", ".join(PRESETS)}'


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _suggestion(name: str, candidates: Iterable[str], kind: str) -> str:
    """'; did you mean "x"?' for the closest candidate, else the list of valid `kind`."""
    candidates = list(candidates)
    closest = _closest(name, candidates)
    if closest:
        return f'; did you mean "{closest}"?'
    return f"; valid {kind}: {', '.join(candidates)}"


def _check_name(section: str, key: str, where: str) -> None:
    """Raise a ConfigError if `section.key` is not a setting; `where` says where it was written."""
    sections = _sections()
    if section not in sections:
        raise ConfigError(
            f'unknown section "{section}" ({where}){_suggestion(section, sections, "sections")}'
        )
    keys = sections[section].model_fields
    if key not in keys:
        raise ConfigError(
            f'unknown key "{key}" in [{section}] ({where}){_suggestion(key, keys, "keys")}'
        )


# ---------------------------------------------------------------------------------------------
# Layers: each is a list of settings; later settings override earlier ones.


class _Setting(NamedTuple):
    section: str
    key: str
    value: Any
    source: str  # "preset <name>", "file <path>", "environment <VAR>" or "flag --section.key"


def _parse_text(text: str, expects_text: bool) -> Any:
    """An environment or flag value: a TOML value if it reads as one, else the text itself."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    if set(parsed) != {"v"}:  # text like "1\nw = 2" smuggles in more than one value
        return text
    # A string field keeps the text as typed: run_dir = 2024 is a folder name, not a number.
    if expects_text and not isinstance(parsed["v"], str):
        return text
    return parsed["v"]


def _preset_settings(name: str) -> list[_Setting]:
    source = f"preset {name}"
    settings = []
    for section, values in PRESETS[name].items():
        for key, value in values.items():
            _check_name(section, key, source)
            settings.append(_Setting(section, key, value, source))
    return settings


def _choose_file(config_file: str | None, env: Mapping[str, str]) -> pathlib.Path | None:
    """The config file to read, or None; a file named explicitly must exist."""
    if config_file:
        path, named_by = pathlib.Path(config_file), "--config"
    elif env.get(CONFIG_FILE_ENV):
        path, named_by = pathlib.Path(env[CONFIG_FILE_ENV]), CONFIG_FILE_ENV
    else:
        # ./config.toml is optional: a fresh checkout or another folder may have none.
        path = pathlib.Path(DEFAULT_CONFIG_FILE)
        return path if path.is_file() else None
    if not path.is_file():
        raise ConfigError(f"config file {path} (named by {named_by}) is missing or not a file")
    return path


def _read_toml(path: pathlib.Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: invalid TOML: {_one_line(str(error))}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path}: cannot read: {_one_line(str(error))}") from None


def _outside_section_message(name: str, source: str) -> str:
    """For a top-level `name = value` in a file: TOML needs a [section] header above it."""
    if name in _sections():
        return f'"{name}" ({source}) must be a [{name}] table, not a value'
    homes = [section for section, key, *_ in config_keys() if key == name]
    hint = f"; did you mean it under [{homes[0]}]?" if homes else ""
    return f'"{name}" ({source}) is a value outside any [section]{hint}'


def _file_settings(path: pathlib.Path) -> list[_Setting]:
    source = f"file {path}"
    settings = []
    for section, values in _read_toml(path).items():
        if not isinstance(values, dict):
            raise ConfigError(_outside_section_message(section, source))
        for key, value in values.items():
            _check_name(section, key, source)
            settings.append(_Setting(section, key, value, source))
    return settings


def _env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def _unknown_env_message(name: str, known: list[str]) -> str:
    # Compared without the shared prefix, which would make every name look close.
    closest = _closest(name.removeprefix(ENV_PREFIX), [n.removeprefix(ENV_PREFIX) for n in known])
    hint = (
        f"did you mean {ENV_PREFIX}{closest}?"
        if closest
        else f"names are {ENV_PREFIX}<SECTION>_<KEY>, e.g. {_env_name('training', 'batch_size')}"
    )
    return f"unknown environment variable {name}; {hint}"


def _env_settings(env: Mapping[str, str]) -> list[_Setting]:
    by_name = {_env_name(section, key): (section, key) for section, key, *_ in config_keys()}
    settings = []
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        if name not in by_name:
            raise ConfigError(_unknown_env_message(name, [*by_name, *_NOT_SETTINGS]))
        section, key = by_name[name]
        value = _parse_text(text, _expects_text(section, key))
        settings.append(_Setting(section, key, value, f"environment {name}"))
    return settings


def _flag_settings(flags: Mapping[str, Any]) -> list[_Setting]:
    settings = []
    for name, text in flags.items():
        source = f"flag --{name}"
        section, _, key = name.partition(".")
        _check_name(section, key, source)
        # Callers may pass typed values (tests, other Python code); only text needs parsing.
        value = _parse_text(text, _expects_text(section, key)) if isinstance(text, str) else text
        settings.append(_Setting(section, key, value, source))
    return settings


def _accelerator_found() -> bool:
    import jax  # imported here: reading a config should not start JAX unless "auto" needs it

    return jax.default_backend() != "cpu"


def _resolve_preset(upper: list[_Setting]) -> str | None:
    """The preset named by the layers above it ("auto" resolved), or None for no preset."""
    latest = {(s.section, s.key): s for s in upper}
    choice = latest.get(("common", "preset"))
    preset = choice.value if choice else CommonConfig.model_fields["preset"].default
    if preset == "auto":
        game_setting = latest.get(("common", "game"))
        game = game_setting.value if game_setting else CommonConfig.model_fields["game"].default
        candidate = f"{game}-{'gpu' if _accelerator_found() else 'cpu'}"
        return candidate if candidate in PRESETS else None
    if preset == "none" or not isinstance(preset, str):
        return None  # a non-string preset is reported by validation, with its source
    if preset not in PRESETS:
        problem = _unknown_preset_problem()
        raise ConfigError(_bad_value("common.preset", preset, choice.source, problem))
    return preset


# ---------------------------------------------------------------------------------------------
# Validation messages.


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _toml_string(text: str) -> str:
    """A TOML basic string; control characters escaped as the spec requires."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _toml_value(value: Any) -> str:
    """A value as TOML text (also how bad values are shown in messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # repr(1e-05) == "1e-05", repr(inf) == "inf": both valid TOML
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return _one_line(repr(value))


def _bad_value(name: str, value: Any, source: str, problem: str) -> str:
    return f"{name} = {_toml_value(value)} (from {source}): {problem}"


def _problem(error: Mapping[str, Any], default: Any) -> str:
    """Pydantic's message reworded as what the value must be (`default` serves as an example)."""
    kind, message, context = error["type"], error["msg"], error.get("ctx") or {}
    if kind == "too_short":
        return f"must have at least {context['min_length']} item(s)"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, e.g. {_toml_value(default)}"
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    if message.startswith("Input should be "):
        return "must be " + message.removeprefix("Input should be ")
    return message[:1].lower() + message[1:]


def _validation_message(
    error: ValidationError, values: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str]
) -> str:
    """One line for the first problem, naming key, value, source and what is allowed."""
    first, *others = error.errors()
    suffix = f" (and {len(others)} more problem(s))" if others else ""
    if len(first["loc"]) == 1:  # a section's own check across its keys; the message names them
        return f"[{first['loc'][0]}] {_problem(first, None)}{suffix}"
    section, key, *item = first["loc"]
    name = f"{section}.{key}"
    problem = _problem(first, _sections()[section].model_fields[key].default)
    if item:  # an element of a list field: show the whole list, point at the element
        problem = f"item {item[0]} {problem}"
    return _bad_value(name, values[section][key], sources[name], problem) + suffix


def _validate(settings: list[_Setting]) -> tuple[Config, dict[str, str]]:
    values: dict[str, dict[str, Any]] = {section: {} for section in _sections()}
    sources = {f"{section}.{key}": "default" for section, key, *_ in config_keys()}
    for setting in settings:
        values[setting.section][setting.key] = setting.value
        sources[f"{setting.section}.{setting.key}"] = setting.source
    try:
        return Config.model_validate(values), sources
    except ValidationError as error:
        raise ConfigError(_validation_message(error, values, sources)) from None


# ---------------------------------------------------------------------------------------------
# Public entry points.


def load_config(
    *,
    config_file: str | None = None,
    flags: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Config, dict[str, str]]:
    """The validated config and, for every "section.key", where its value came from.

    flags: {"section.key": text}, highest priority. env: defaults to os.environ.
    Sources read "default", "preset <name>", "file <path>", "environment CARTRIDGE_X_Y" or
    "flag --section.key". Raises ConfigError (one line) on any problem.
    """
    env = os.environ if env is None else env
    path = _choose_file(config_file, env)
    upper = [
        *(_file_settings(path) if path else []),
        *_env_settings(env),
        *_flag_settings(flags or {}),
    ]
    # The preset sits under file, env and flags, but which preset is decided by them.
    preset = _resolve_preset(upper)
    return _validate([*(_preset_settings(preset) if preset else []), *upper])


def format_config(config: Config, sources: Mapping[str, str]) -> str:
    """The effective config as TOML that loads back to it, each value's source in a comment."""
    lines = ["# Effective configuration; the comment after each value says where it came from."]
    for section in _sections():
        lines += ["", f"[{section}]"]
        for key, value in getattr(config, section).model_dump().items():
            source = _one_line(sources.get(f"{section}.{key}", "default"))
            lines.append(f"{key} = {_toml_value(value)}  # {source}")
    return "\n".join(lines) + "\n"


def recorded_config(run_directory: str | os.PathLike, *, config_file: str | None = None,
                    flags: Mapping[str, Any] | None = None) -> Config:
    """The configuration a run was trained with (its stats.json's), under `flags`, with
    common.run_dir set to `run_directory`. Without stats.json: the usual layers.

    Raises ConfigError (one line) when stats.json is unreadable or holds an invalid config.
    """
    from cartridge_jax import stats  # imported here: stats is not needed to read a config

    path = epath.Path(run_directory) / "stats.json"
    recorded = {}
    if path.exists():
        try:
            saved = stats.read_stats(path).config
        except stats.StatsError as error:
            raise ConfigError(str(error)) from None
        recorded = {f"{section}.{key}": value
                    for section, values in saved.items() for key, value in values.items()}
    layers = {**recorded, **(flags or {}), "common.run_dir": str(run_directory)}
    return load_config(config_file=config_file, flags=layers)[0]


def run_dir(config: Config) -> epath.Path:
    """The run's folder: common.run_dir if set, else <data_dir>/runs/<game>; local or remote
    (e.g. gs://bucket/runs/c4)."""
    if config.common.run_dir:
        return epath.Path(config.common.run_dir)
    return epath.Path(config.common.data_dir) / "runs" / config.common.game
