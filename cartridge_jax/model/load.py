"""Loading a trained network from a model path: the one place that answers "what is this path?"

    model = load_model("data/runs/connect4")                       # a run: its latest checkpoint
    model = load_model("site/models/connect4")                     # an export (manifest.json)
    model = load_model("data/runs/c4/snapshots/iter_40.msgpack")   # a parameter snapshot
    model.network.apply(model.params, observations)                # [B, A] logits, [B] values

An export describes its own network (network.json); a run directory and a snapshot are read with
the configuration the run was trained with (its stats.json), under any flags given. Reading a
checkpoint reads the parameters alone: no trainer, optimizer or replay buffer is built.
Every problem is a `ModelError` (a ValueError) with a one-line message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Literal

import flax.linen as nn
import jax
from etils import epath

from cartridge_jax import config as config_lib
from cartridge_jax import games
from cartridge_jax.model import export, nets
from cartridge_jax.run import checkpoint, layout

ModelKind = Literal["export", "snapshot", "run"]


class ModelError(ValueError):
    """A model path that cannot be loaded; the message is one line for people."""


@dataclasses.dataclass(frozen=True)
class Model:
    """A trained network with what it was trained for."""

    game: games.Game
    network: nn.Module
    params: nets.Params
    iteration: int  # the training iteration that produced the parameters (0 if unknown)
    step: int  # gradient steps behind the parameters (0 if unknown)
    config: config_lib.Config  # the configuration it plays with (search settings, seed)


def model_kind(path: str | os.PathLike) -> ModelKind:
    """"export" (a folder with manifest.json), "snapshot" (a .msgpack file) or "run" (a run
    directory); ModelError for anything else."""
    path = epath.Path(path)
    if (path / export.MANIFEST_FILE).is_file():
        return "export"
    if path.suffix == ".msgpack" and path.is_file():
        return "snapshot"
    if path.is_dir():
        return "run"
    raise ModelError(f"model {path} is neither a run directory, an exported model folder "
                     "(with manifest.json) nor a snapshot (.msgpack)")


def run_directory(path: str | os.PathLike) -> epath.Path:
    """The run a snapshot (`<run>/snapshots/iter_N.msgpack`) or run directory belongs to."""
    path = epath.Path(path)
    return path.parent.parent if model_kind(path) == "snapshot" else path


def model_config(path: str | os.PathLike, *, config_file: str | None = None,
                 flags: Mapping[str, Any] | None = None) -> config_lib.Config:
    """The configuration the model at `path` plays with: an export's game under the usual
    layers, or the run's recorded configuration (see `layout.recorded_config`)."""
    flags = dict(flags or {})
    try:
        if model_kind(path) == "export":
            try:
                game = export.read_manifest(path)["game"]
            except export.ExportError as error:
                raise ModelError(str(error)) from None
            except KeyError:
                raise ModelError(f"{epath.Path(path) / export.MANIFEST_FILE} names no game: "
                                 "export the model again") from None
            return config_lib.load_config(config_file=config_file,
                                          flags={**flags, "common.game": game})[0]
        return layout.recorded_config(run_directory(path), config_file=config_file, flags=flags)
    except config_lib.ConfigError as error:
        raise ModelError(str(error)) from None


def default_simulations(path: str | os.PathLike, config: config_lib.Config) -> int:
    """The agent's simulations when none are asked for: an export's own (its manifest's
    `agent`, what the web bot plays), else what `config`'s export would record."""
    if model_kind(path) == "export":
        try:
            return int(export.read_manifest(path)["agent"]["simulations"])
        except (export.ExportError, KeyError, TypeError, ValueError):
            pass  # an export from before manifests named their agent
    return export.agent_settings(config)["simulations"]


def load_model(path: str | os.PathLike, config: config_lib.Config | None = None) -> Model:
    """The network and parameters at `path`. `config` (default: `model_config(path)`) describes
    the network of a run directory or snapshot; an export describes its own (the returned
    model's `config.model` is then network.json's)."""
    kind = model_kind(path)
    config = model_config(path) if config is None else config
    path = epath.Path(path)
    if kind == "export":
        try:
            game, network, params, manifest = export.load_exported(path)
            _, network_config, _ = export.described_network(path)
        except export.ExportError as error:
            raise ModelError(str(error)) from None
        if game.name != config.common.game:
            raise ModelError(f"{path} holds a {game.name} model, not {config.common.game}: "
                             f"evaluate it with game {game.name}")
        return Model(game, network, params, int(manifest.get("iteration", 0)),
                     int(manifest.get("step", 0)),
                     config.model_copy(update={"model": network_config}))
    game = games.make(config.common.game)
    network = nets.make_network(config.model, game)
    template = jax.eval_shape(lambda: nets.init_params(network, game, jax.random.key(0)))
    try:
        if kind == "snapshot":
            params = checkpoint.load_snapshot(path, template)
            return Model(game, network, params, checkpoint.snapshot_iteration(path), 0, config)
        with checkpoint.Checkpoints(layout.checkpoints_dir(path),
                                    max_to_keep=config.training.max_checkpoints) as saved:
            if saved.latest_iteration() is None:
                raise ModelError(f"no checkpoint in {layout.checkpoints_dir(path)}: train first "
                                 "(python scripts/train.py)")
            params, step, iteration = saved.restore_params(
                expected_meta=nets.identity(game, network, template))
    except checkpoint.CheckpointError as error:
        raise ModelError(str(error)) from None
    return Model(game, network, jax.tree.map(jax.numpy.asarray, params), iteration, step, config)
