"""The configuration's schema: one frozen pydantic model per section, the only place a
setting's default lives.

Pure data: nothing here imports JAX, so checking a configuration starts no backend. The game ids
are a static tuple (a test checks them against the games registry); opponent names are checked
by `opponent_names.parse`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from cartridge_jax.config import opponent_names
from cartridge_jax.config.presets import PRESETS, unknown_preset_problem

# The registered games (cartridge_jax.games.names()), as data: the games package pulls in JAX.
GAME_IDS = ("tictactoe", "connect4", "othello")


def _list_to_tuple(value: Any) -> Any:
    """TOML arrays arrive as lists; tuples keep the frozen config hashable (a valid jit static)."""
    return tuple(value) if isinstance(value, list) else value


# strict: a file's `seed = "3"` or `augment = 1` is a mistake to report, not to coerce.
_SECTION_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True)
_INT32_MAX = 2**31 - 1  # settings become int32 arrays and shapes: larger would overflow there


class _Section(BaseModel):
    """A section of the configuration: frozen, strict, and no integer beyond int32."""

    model_config = _SECTION_CONFIG

    @field_validator("*")
    @classmethod
    def _fits_int32(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT32_MAX:
            raise ValueError(f"must fit a 32-bit integer (at most {_INT32_MAX:,})")
        return value
_PositiveInts = Annotated[tuple[Annotated[int, Field(gt=0)], ...], BeforeValidator(_list_to_tuple)]
_Strings = Annotated[tuple[str, ...], BeforeValidator(_list_to_tuple)]


class CommonConfig(_Section):
    """Which game, where runs live, and how chatty the logs are."""

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
        if game not in GAME_IDS:
            raise ValueError(f"unknown game; available games: {', '.join(GAME_IDS)}")
        return game

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str) -> str:
        if preset not in ("auto", "none") and preset not in PRESETS:
            raise ValueError(unknown_preset_problem())
        return preset


class ModelConfig(_Section):
    """The policy-value network."""

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


class MctsConfig(_Section):
    """Tree search of self-play only (the playing agent is noiseless Gumbel MuZero)."""

    search: Literal["gumbel", "puct"] = Field(
        "gumbel", description="Gumbel MuZero (good with few simulations) or AlphaZero PUCT."
    )
    simulations: int = Field(32, ge=1, description="Simulations per move in self-play.")
    c_puct: float = Field(
        1.25, gt=0, allow_inf_nan=False, description="PUCT: exploration constant."
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


class SelfplayConfig(_Section):
    """How training games are generated."""

    games: int = Field(256, ge=1, description="Games played in parallel.")
    random_opening_moves: int = Field(
        2, ge=0, description="Each game starts with 0 to this many uniformly random plies."
    )
    moves_per_iteration: int = Field(
        64, ge=1, description="Moves every game plays per iteration (finished games restart)."
    )
    augment: bool = Field(True, description="Add the board symmetries of each position to replay.")


class TrainingConfig(_Section):
    """The optimiser, the replay buffer and checkpoints."""

    iterations: int = Field(20, ge=1, description="Self-play + training iterations in a run.")
    time_budget_s: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="Stop after the iteration that brings the "
        "run's self-play + training seconds to this (evaluation and saves not counted), the "
        "learning rate's decay ending with it; 0 means no limit."
    )
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
        0.1, ge=0, le=1, description="Cosine decay ends at this fraction of learning_rate, at "
        "the last iteration or when the time budget is spent, whichever comes first."
    )
    replay_capacity: int = Field(100_000, ge=1, description="Positions the replay buffer holds.")
    replay_window: int = Field(
        0, ge=0, description="Sample only the newest this-many positions; 0 means the whole buffer."
    )
    value_loss_weight: float = Field(
        1.0, ge=0, allow_inf_nan=False, description="Value loss weight (policy loss weighs 1)."
    )
    checkpoint_interval: int = Field(
        1, ge=1, description="Save a checkpoint every K iterations (asynchronously); stats.json "
        "follows the checkpoints, so a kill loses at most K - 1 completed iterations."
    )
    max_checkpoints: int = Field(3, ge=1, description="Checkpoints kept on disk (oldest removed).")
    snapshot_interval: int = Field(
        10, ge=0, description="Keep the parameters every K iterations in snapshots/ (for the Elo "
        "ladder); 0 means only the best ones."
    )


class EvaluationConfig(_Section):
    """Matches that measure the agent's strength."""

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
        (), description='Position sets measured at each evaluation: refdata or valdata files '
        '(e.g. "connect4/Test_L2_R1.jsonl", the held-out "connect4/Val_end.jsonl"), paths, or '
        '"exhaustive" (TicTacToe).'
    )
    benchmark_positions: int = Field(
        200, ge=0, description="Positions used of each benchmark file (its first); 0 means all."
    )

    @field_validator("opponents")
    @classmethod
    def _known_opponents(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            opponent_names.parse(name)
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


class ExportConfig(_Section):
    """ONNX export of the network for the web page."""

    enabled: bool = Field(
        True, description="Export model.onnx in the background while training, and at the end."
    )
    interval: int = Field(
        10, ge=1, description="Export at most every K iterations (a checkpoint's; skipped while "
        "an export is running)."
    )
    min_interval_s: float = Field(
        60.0, ge=0, allow_inf_nan=False, description="...and at most once per this many seconds."
    )
    simulations: int = Field(
        0, ge=0, description="Simulations per move of the exported bot: the web page's default "
        "and that of eval, play and ship of the export (with the CPU presets' networks the site's "
        "bot answers within 0.3 s per move at 1024 on a 2-core CPU); 0 means "
        "evaluation.simulations."
    )
    onnx_opset: int = Field(18, ge=1, le=26, description="ONNX operator set version.")
    onnx_ir_version: int = Field(10, ge=1, le=13, description="ONNX IR version of the file.")


class DistributedConfig(_Section):
    """Several processes (hosts) training together; all local devices are always used."""

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

