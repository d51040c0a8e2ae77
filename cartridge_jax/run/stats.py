"""The `stats.json` of a training run: its schema, defined once, and how it is updated.

The training loop writes `<run_dir>/stats.json` after every iteration; the static site's charts
and the evaluation tools read it. The file is one `Stats` object as JSON. Every field's meaning
and unit is in its description; `docs/stats.md` is generated from them (`fields_markdown`).

There is one gradient-step counter, `step`, used everywhere (top level, history, evaluations).

Update functions return a new `Stats` and never change their argument:

    stats = new_stats("connect4", run_id, config.model_dump(mode="json"))
    stats = record_iteration(stats, step=..., iteration=..., losses=..., ...)
    stats = record_eval(stats, [eval_entry(step=..., opponent="random", wins=..., ...)])
    write_stats(run_dir / "stats.json", stats)   # the file it replaces kept as stats.json.prev

Non-finite numbers: NaN and infinity are not JSON, so they become `null`: a non-finite value
given to a float field of the models (a diverged loss, say) is stored as None at once, and one
inside `config` is written as `null` (pydantic's JSON mode). The charts show a gap and the run's
telemetry keeps flowing; nothing is refused.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

from etils import epath
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from cartridge_jax._files import atomic_write_bytes, atomic_write_text

SCHEMA_VERSION = 1
MAX_HISTORY_POINTS = 1000
BACKUP_SUFFIX = ".prev"  # stats.json.prev: the version before the latest write

class StatsError(Exception):
    """A stats.json problem; the message is one line naming the file and what is wrong."""


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)  # also takes numpy and JAX scalars
    return number if math.isfinite(number) else None


# A float that is None when unknown or not finite (written as JSON null).
_Float = Annotated[float | None, BeforeValidator(_finite_or_none)]

_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid")


class Losses(BaseModel):
    """Training losses of the latest iteration, averaged over its gradient steps."""

    model_config = _MODEL_CONFIG

    total: _Float = Field(
        None, description="policy + value loss, the minimised loss without weight decay"
    )
    policy: _Float = Field(
        None, description="cross-entropy of the search policy target vs the net, nats"
    )
    value: _Float = Field(
        None, description="mean squared error of the value head vs the game outcome in [-1, 1]"
    )


class Throughput(BaseModel):
    """Speeds measured over the latest iteration."""

    model_config = _MODEL_CONFIG

    positions_per_s: _Float = Field(None, description="self-play positions per second")
    games_per_s: _Float = Field(None, description="finished self-play games per second")
    train_steps_per_s: _Float = Field(None, description="gradient steps per second")


class HistoryPoint(BaseModel):
    """One training iteration, for the loss/throughput charts."""

    model_config = _MODEL_CONFIG

    step: int = Field(description="gradient steps done by the end of the iteration")
    iteration: int = Field(description="the iteration, counted from 1")
    wall_time_s: float = Field(description="run wall time at the end of the iteration, seconds")
    total_loss: _Float = Field(None, description="see losses.total")
    policy_loss: _Float = Field(None, description="see losses.policy")
    value_loss: _Float = Field(None, description="see losses.value")
    learning_rate: _Float = Field(None, description="learning rate at the iteration's last step")
    positions_per_s: _Float = Field(None, description="see throughput.positions_per_s")
    games_per_s: _Float = Field(None, description="see throughput.games_per_s")
    replay_size: int = Field(description="positions in the replay buffer, positions")


class EvalEntry(BaseModel):
    """One evaluation match of the current network against one opponent.

    Build it with `eval_entry`, which derives games, rates and score from the counts.
    """

    model_config = _MODEL_CONFIG

    step: int = Field(description="gradient steps of the evaluated network")
    iteration: int = Field(description="iteration of the evaluated network")
    opponent: str = Field(
        description='who it played: an opponent name ("random", "alphabeta:3", ...) or "best", '
        "the best network before this evaluation"
    )
    games: int = Field(ge=1, description="games played, wins + draws + losses")
    wins: int = Field(ge=0, description="games the evaluated network won")
    draws: int = Field(ge=0, description="drawn games")
    losses: int = Field(ge=0, description="games the evaluated network lost")
    win_rate: float = Field(ge=0, le=1, description="wins / games")
    draw_rate: float = Field(ge=0, le=1, description="draws / games")
    loss_rate: float = Field(ge=0, le=1, description="losses / games")
    score: float = Field(ge=0, le=1, description="(wins + draws / 2) / games")
    became_new_best: bool = Field(
        False, description="this match made the evaluated network the new best model"
    )
    timestamp: str = Field(description="when the match ended, ISO 8601 UTC")

    @model_validator(mode="after")
    def _counts_add_up(self) -> EvalEntry:
        if self.wins + self.draws + self.losses != self.games:
            raise ValueError(f"wins + draws + losses is not games ({self.games})")
        return self


class BestModel(BaseModel):
    """The network that evaluation last promoted to best."""

    model_config = _MODEL_CONFIG

    iteration: int = Field(
        description="iteration of the best network; its parameters are in "
        "snapshots/iter_<iteration>.msgpack"
    )
    step: int = Field(description="gradient steps of the best network")


class BenchmarkPoint(BaseModel):
    """One strength measurement, e.g. the mistake rate on a reference position set."""

    model_config = _MODEL_CONFIG

    step: int = Field(description="gradient steps of the measured network")
    iteration: int = Field(description="iteration of the measured network")
    name: str = Field(
        description='the position set, e.g. "connect4/Test_L2_R1" (its first '
        'evaluation.benchmark_positions positions) or "tictactoe/exhaustive"'
    )
    metric: str = Field(
        description='what value measures: "mistake_rate", "optimal_rate" (Connect 4, '
        'TicTacToe), "best_move_rate", "mean_disc_loss", "unknown_move_rate" (Othello), by the '
        'agent at evaluation.simulations; "raw_" before one of them: the same measure of the '
        "raw network's most likely move (no search)"
    )
    value: _Float = Field(None, description="the measurement, in the unit the metric names")


class Stats(BaseModel):
    """The whole stats.json file."""

    model_config = _MODEL_CONFIG

    schema_version: int = Field(
        SCHEMA_VERSION, description="version of this layout; readers refuse newer ones"
    )
    game: str = Field(description="the game trained: tictactoe, connect4 or othello")
    run_id: str = Field(description="identifier of the run, stable across resumes")
    created: str = Field(description="when the run started, ISO 8601 UTC")
    updated: str = Field(description="when this file was last updated, ISO 8601 UTC")
    step: int = Field(0, ge=0, description="gradient steps applied since the run began")
    iteration: int = Field(0, ge=0, description="training iterations completed")
    samples_seen: int = Field(
        0, ge=0, description="positions fed to gradient steps, repeats counted (step x batch)"
    )
    positions_generated: int = Field(0, ge=0, description="self-play positions produced")
    games_played: int = Field(0, ge=0, description="self-play games finished")
    replay_size: int = Field(0, ge=0, description="positions now in the replay buffer")
    replay_capacity: int = Field(0, ge=0, description="most positions the replay buffer holds")
    learning_rate: _Float = Field(None, description="learning rate at the latest step")
    losses: Losses = Field(default_factory=Losses, description="latest iteration's losses")
    throughput: Throughput = Field(
        default_factory=Throughput, description="latest iteration's speeds"
    )
    wall_time_s: float = Field(
        0.0, ge=0, description="wall time spent in the run's iterations, summed over resumes, s"
    )
    last_checkpoint: int | None = Field(
        None, description="iteration of the newest checkpoint, null before the first"
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="the effective configuration of the run, plain data"
    )
    history: list[HistoryPoint] = Field(
        default_factory=list,
        description=f"one point per iteration, oldest first, thinned with age (<= "
        f"{MAX_HISTORY_POINTS} points)",
    )
    eval_history: list[EvalEntry] = Field(
        default_factory=list, description="every evaluation match, oldest first"
    )
    last_eval: dict[str, EvalEntry] = Field(
        default_factory=dict, description="opponent -> its latest entry of eval_history"
    )
    best_model: BestModel | None = Field(
        None, description="the network last promoted to best, null before any"
    )
    benchmarks: list[BenchmarkPoint] = Field(
        default_factory=list, description="strength measurements, oldest first"
    )


def utc_now() -> str:
    """The current time as ISO 8601 UTC with seconds, e.g. "2025-05-01T12:00:00+00:00"."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_stats(
    game: str, run_id: str, config: Mapping[str, Any], *, now: str | None = None
) -> Stats:
    """The stats of a run that has not trained yet. `config` is plain data (dicts, lists, ...)."""
    now = now or utc_now()
    return Stats(game=game, run_id=run_id, created=now, updated=now, config=dict(config))


def record_iteration(
    stats: Stats,
    *,
    step: int,
    iteration: int,
    losses: Losses | Mapping[str, float | None],
    learning_rate: float | None,
    throughput: Throughput | Mapping[str, float | None],
    replay_size: int,
    samples_seen: int,
    positions_generated: int,
    games_played: int,
    wall_time_s: float,
    replay_capacity: int | None = None,
    last_checkpoint: int | None = None,
    max_history: int = MAX_HISTORY_POINTS,
    now: str | None = None,
) -> Stats:
    """Stats after `iteration` finished: current values set, a history point appended.

    Counters are run totals, not increments. `replay_capacity` and `last_checkpoint` keep their
    old values when None. If `iteration` is not after the last recorded one (the run resumed
    from an older checkpoint), the history, evaluations and benchmarks of that iteration and
    later are dropped first: they belong to training that was undone, and best_model goes back
    to the last promotion still recorded. So record an iteration before its evaluations.
    """
    losses = Losses.model_validate(dict(losses)) if isinstance(losses, Mapping) else losses
    throughput = (
        Throughput.model_validate(dict(throughput))
        if isinstance(throughput, Mapping)
        else throughput
    )
    point = HistoryPoint(
        step=step,
        iteration=iteration,
        wall_time_s=wall_time_s,
        total_loss=losses.total,
        policy_loss=losses.policy,
        value_loss=losses.value,
        learning_rate=learning_rate,
        positions_per_s=throughput.positions_per_s,
        games_per_s=throughput.games_per_s,
        replay_size=replay_size,
    )
    stats = _drop_from(stats, iteration)
    return _updated(
        stats,
        now,
        step=step,
        iteration=iteration,
        samples_seen=samples_seen,
        positions_generated=positions_generated,
        games_played=games_played,
        replay_size=replay_size,
        replay_capacity=stats.replay_capacity if replay_capacity is None else replay_capacity,
        learning_rate=learning_rate,
        losses=losses,
        throughput=throughput,
        wall_time_s=wall_time_s,
        last_checkpoint=stats.last_checkpoint if last_checkpoint is None else last_checkpoint,
        history=thin_history([*stats.history, point], max_history),
    )


def eval_entry(
    *,
    step: int,
    iteration: int,
    opponent: str,
    wins: int,
    draws: int,
    losses: int,
    became_new_best: bool = False,
    timestamp: str | None = None,
) -> EvalEntry:
    """An evaluation result from its counts: games, the three rates and the score derived."""
    games = wins + draws + losses
    if games < 1:
        raise StatsError(f"evaluation against {opponent} has no games (wins+draws+losses = 0)")
    return EvalEntry(
        step=step,
        iteration=iteration,
        opponent=opponent,
        games=games,
        wins=wins,
        draws=draws,
        losses=losses,
        win_rate=wins / games,
        draw_rate=draws / games,
        loss_rate=losses / games,
        score=(wins + draws / 2) / games,
        became_new_best=became_new_best,
        timestamp=timestamp or utc_now(),
    )


def record_eval(stats: Stats, entries: Iterable[EvalEntry], *, now: str | None = None) -> Stats:
    """Stats with evaluation `entries` appended to eval_history and last_eval updated.

    An entry with `became_new_best` makes its network the best_model.
    """
    entries = list(entries)
    last_eval = dict(stats.last_eval)
    best_model = stats.best_model
    for entry in entries:
        last_eval[entry.opponent] = entry
        if entry.became_new_best:
            best_model = BestModel(iteration=entry.iteration, step=entry.step)
    return _updated(
        stats,
        now,
        eval_history=[*stats.eval_history, *entries],
        last_eval=last_eval,
        best_model=best_model,
    )


def record_benchmarks(
    stats: Stats, points: Iterable[BenchmarkPoint], *, now: str | None = None
) -> Stats:
    """Stats with strength measurements appended to `benchmarks`."""
    return _updated(stats, now, benchmarks=[*stats.benchmarks, *points])


_Point = TypeVar("_Point", bound=HistoryPoint)


def thin_history(points: Sequence[_Point], max_points: int = MAX_HISTORY_POINTS) -> list[_Point]:
    """At most `max_points` of `points` (oldest first): recent ones dense, older ones sparser.

    Points of the newest `max_points // 2` iterations are all kept. Further back, a point is
    kept only if its iteration is a multiple of a stride that doubles with age: 2 for the
    first `window` iterations past the dense part, 4 for the next 2 x window, 8 for the next
    4 x window, and so on, with `window` the largest power of two that fits the budget. The
    first and the last point are always kept.

    The test is on iteration numbers, not list positions, so thinning an already thinned list
    after appending a point keeps the same old points (the training loop thins every iteration).
    """
    if max_points < 3:
        raise ValueError(f"max_points must be at least 3 (first, last, one more), got {max_points}")
    if len(points) <= max_points:
        return list(points)
    newest = points[-1].iteration
    dense_iterations = max_points // 2
    dense = [p for p in points[1:] if newest - p.iteration < dense_iterations]
    older = [p for p in points[1:] if newest - p.iteration >= dense_iterations]
    budget = max_points - 1 - len(dense)

    def kept(window: int) -> list[_Point]:
        chosen = []
        for point in older:
            age_in_windows = (newest - point.iteration - dense_iterations) // window
            stride = 2 << ((age_in_windows + 1).bit_length() - 1)  # 2, 4, 8, ... with age
            if point.iteration % stride == 0:
                chosen.append(point)
        return chosen

    window = 1 << max(len(points), 1).bit_length()
    chosen = kept(window)
    while len(chosen) > budget and window > 1:
        window //= 2
        chosen = kept(window)
    # Even a window of 1 can exceed a tiny budget: drop the oldest of the older points then.
    chosen = chosen[max(0, len(chosen) - budget) :] if budget > 0 else []
    if len(dense) > max_points - 1:  # iterations repeated or out of order: cut, keep the newest
        dense = dense[len(dense) - (max_points - 1) :]
    return [points[0], *chosen, *dense]


def backup_path(path: str | os.PathLike) -> epath.Path:
    """Where `write_stats` keeps the previous version of `path`: `<path>.prev`."""
    path = epath.Path(path)
    return path.with_name(path.name + BACKUP_SUFFIX)


def write_stats(path: str | os.PathLike, stats: Stats) -> None:
    """Writes `stats` to `path` as JSON, atomically (readers never see half a file), keeping
    the file it replaces as `backup_path(path)` (`stats.json.prev`).

    The old file is copied to the backup (atomically) before the new one replaces it, so at
    every moment both files are whole. An old file that is not JSON is not copied: the backup
    keeps the last good version. Non-finite numbers are written as `null` (see the module
    docstring); `allow_nan=False` only guards that promise.
    """
    text = json.dumps(stats.model_dump(mode="json"), indent=1, allow_nan=False)
    path = epath.Path(path)
    try:
        previous = path.read_bytes()
    except FileNotFoundError:
        previous = None
    if previous is not None and _is_json_object(previous):
        atomic_write_bytes(backup_path(path), previous)
    atomic_write_text(path, text + "\n")


def read_stats(path: str | os.PathLike) -> Stats:
    """Reads a stats.json; StatsError with a one-line reason if it is missing or unusable.

    A damaged file's message names the fix: the backup `write_stats` keeps, when there is one,
    or deleting the file (the run then starts a new history).
    """
    try:
        with epath.Path(path).open(encoding="utf-8") as handle:
            data = json.load(handle, parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise StatsError(f"no stats file at {path}") from None
    except UnicodeDecodeError as error:
        raise _damaged(path, f"is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise StatsError(f"cannot read {path}: {error}") from None
    except ValueError as error:
        raise _damaged(path, f"is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _damaged(path, f"holds a JSON {type(data).__name__}, not a stats object")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _damaged(path, "has no integer schema_version, so it is not a stats.json")
    if version > SCHEMA_VERSION:
        raise StatsError(
            f"{path} has schema_version {version}, this cartridge_jax reads up to "
            f"{SCHEMA_VERSION}: update cartridge_jax"
        )
    try:
        return Stats.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
        raise _damaged(
            path, f"does not match the stats schema at {where}: {first['msg']}{more}"
        ) from None


def fields_markdown() -> str:
    """Markdown tables of every model's fields, types and descriptions (for docs/stats.md)."""
    sections = []
    for model in (Stats, Losses, Throughput, HistoryPoint, EvalEntry, BestModel, BenchmarkPoint):
        rows = ["| field | type | meaning |", "| --- | --- | --- |"]
        for name, field in model.model_fields.items():
            rows.append(f"| `{name}` | {_type_name(field.annotation)} | {field.description} |")
        doc = (model.__doc__ or "").strip().splitlines()[0]
        sections.append(f"### `{model.__name__}`\n\n{doc}\n\n" + "\n".join(rows))
    return "\n\n".join(sections) + "\n"


def _type_name(annotation: Any) -> str:
    """`float | None` -> "float or null", `list[HistoryPoint]` -> "list of HistoryPoint"."""
    if isinstance(annotation, type):
        return {"str": "string", "dict": "object"}.get(annotation.__name__, annotation.__name__)
    text = str(annotation).replace("cartridge_jax.run.stats.", "").replace("typing.", "")
    text = text.replace("dict[str, Any]", "object").replace(" | None", " or null")
    for container, word in (("list[", "list of "), ("dict[str, ", "object of ")):
        if text.startswith(container):
            text = word + text[len(container) : -1]
    return text


def _damaged(path: str | os.PathLike, problem: str) -> StatsError:
    backup = backup_path(path)
    fix = (f"copy {backup} over it, or delete it to start a new history" if backup.exists()
           else "delete it to start a new history")
    return StatsError(f"{path} {problem}: {fix}")


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data, parse_constant=_refuse_constant), dict)
    except ValueError:  # UnicodeDecodeError included
        return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _drop_from(stats: Stats, iteration: int) -> Stats:
    """Stats without the history, evaluations and benchmarks of `iteration` and later, and
    best_model as of before it."""
    if not stats.history or stats.history[-1].iteration < iteration:
        return stats
    eval_history = [e for e in stats.eval_history if e.iteration < iteration]
    last_eval = {e.opponent: e for e in eval_history}
    promotions = [e for e in eval_history if e.became_new_best]
    best_model = (BestModel(iteration=promotions[-1].iteration, step=promotions[-1].step)
                  if promotions else None)
    return stats.model_copy(
        update={
            "history": [p for p in stats.history if p.iteration < iteration],
            "eval_history": eval_history,
            "last_eval": last_eval,
            "best_model": best_model,
            "benchmarks": [b for b in stats.benchmarks if b.iteration < iteration],
        }
    )


def _updated(stats: Stats, now: str | None, **changes: Any) -> Stats:
    # model_copy skips validation; validate again so every path goes through the schema.
    return Stats.model_validate({**dict(stats), **changes, "updated": now or utc_now()})
