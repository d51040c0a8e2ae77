"""Export of a trained network: ONNX for the web page, parameters for Python.

    manifest = export_model(game, network, params, config.model,
                            layout.model_dir(run_dir, game.name),
                            step=..., iteration=..., opset=config.export.onnx_opset,
                            ir_version=config.export.onnx_ir_version,
                            agent=agent_settings(config))
    game, network, params, manifest = load_exported(directory)

The output folder (normally `<run_dir>/models/<game>/`; local or remote, e.g. gs://) receives:

    model.onnx      input   observation    float32[batch, rows, cols, planes]
                    outputs policy_logits  float32[batch, A]   (unmasked)
                            value          float32[batch]      (side to move's view)
    params.msgpack  the same parameters (flax.serialization), so Python can search with them
    network.json    {game, encoding_version, model}: what rebuilds the network in Python
    manifest.json   {game, encoding_version, step, iteration, sha256 (of model.onnx),
                     params_sha256, network_sha256 (of the other two files; SHA256_KEYS),
                     agent: {search, simulations} (the web bot's default strength), ...}

Every file is replaced atomically and manifest.json comes last, so a page that polls the
manifest and then fetches `model.onnx?v=<sha256>` never meets a half-written model.

The IR version and opset are pinned to the configured ones and checked: onnxruntime-web 1.30
refuses files newer than IR 13 / opset 26, which Python's onnxruntime would accept silently.
The export is always float32: a bfloat16-compute network is exported as its float32 twin (the
parameters are float32 either way).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pathlib
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import onnx
import pydantic
from etils import epath

from cartridge_jax import _files, games, parallel
from cartridge_jax.config import Config, ModelConfig
from cartridge_jax.model import nets
from cartridge_jax.run import checkpoint
from cartridge_jax.run.stats import utc_now

MODEL_FILE = "model.onnx"
PARAMS_FILE = "params.msgpack"
NETWORK_FILE = "network.json"
MANIFEST_FILE = "manifest.json"

INPUT_NAME = "observation"
OUTPUT_NAMES = ("policy_logits", "value")
# The jax2onnx plugin families a Flax network's export uses (see _load_plugin_families).
PLUGIN_FAMILIES = ("jax", "flax")
BATCH_DIM = "batch"  # a named (symbolic) dimension: the batch size stays free in the file

# The manifest key that records each exported file's sha256 (`ship` checks every file against
# it). "sha256" is model.onnx's, the name the web page reads; exports written before
# network_sha256 existed lack that key.
SHA256_KEYS = {MODEL_FILE: "sha256", PARAMS_FILE: "params_sha256",
               NETWORK_FILE: "network_sha256"}


class ExportError(Exception):
    """An export cannot be written or read; the message is one line for people."""


class ConverterError(ExportError):
    """jax2onnx failed to convert a network: it patches jax's internals, so a jax newer than it
    knows can break it anywhere (jax2onnx 0.17.1 under jax 0.11.2 raised AttributeError in its
    plugins/_patching.py). Training goes on without exporting (training/loop.py)."""


def agent_settings(config: Config) -> dict[str, Any]:
    """The playing agent's search settings, which the web page's bot takes as its default:
    `export.simulations`, else (0) `evaluation.simulations`.

    "search" names the agent's one search (`search.agent_search`, noiseless Gumbel MuZero), so
    a manifest says which algorithm its strength was measured with."""
    return {"search": "gumbel",
            "simulations": config.export.simulations or config.evaluation.simulations}


def export_model(
    game: games.Game,
    network: Any,
    params: nets.Params,
    model_config: ModelConfig,
    out_dir: str | os.PathLike,
    *,
    step: int,
    iteration: int,
    opset: int,
    ir_version: int,
    agent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes model.onnx, params.msgpack, network.json and manifest.json into `out_dir`.

    `network` is `nets.make_network(model_config, game)`; `params` its parameters; `agent` the
    `agent_settings` of the run's configuration (default: those of the default configuration).
    Returns the manifest. Raises ExportError for an opset / IR version pair that cannot be
    written.
    """
    model_config = model_config.model_copy(update={"dtype": "float32"})
    float32_network = network.clone(dtype=jnp.float32)
    if float32_network != nets.make_network(model_config, game):
        raise ValueError("network is not the one model_config describes for this game")
    params = jax.tree.map(np.asarray, params)  # on the host: constants of the ONNX graph

    model_bytes = _onnx_model(
        game, float32_network, params, opset=opset, ir_version=ir_version
    ).SerializeToString()
    params_bytes = flax.serialization.to_bytes(params)
    network_text = _json({
        "game": game.name,
        "encoding_version": game.encoding_version,
        "model": model_config.model_dump(mode="json"),
    })
    manifest = {
        "game": game.name,
        "encoding_version": game.encoding_version,
        "step": int(step),
        "iteration": int(iteration),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "params_sha256": hashlib.sha256(params_bytes).hexdigest(),
        "network_sha256": hashlib.sha256(network_text.encode("utf-8")).hexdigest(),
        "observation_shape": list(game.observation_shape),
        "num_actions": game.num_actions,
        "created": utc_now(),
        "onnx_opset": opset,
        "onnx_ir_version": ir_version,
        "network": nets.describe(float32_network, params),
        "agent": agent_settings(Config()) if agent is None else agent,
    }
    out_dir = epath.Path(out_dir)
    _files.atomic_write_bytes(out_dir / MODEL_FILE, model_bytes)
    _files.atomic_write_bytes(out_dir / PARAMS_FILE, params_bytes)
    _files.atomic_write_text(out_dir / NETWORK_FILE, network_text)
    # Last: the manifest announces files that are already complete.
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(directory: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Writes (atomically) `manifest` as the manifest.json of an export folder."""
    _files.atomic_write_text(epath.Path(directory) / MANIFEST_FILE, _json(manifest))


def recorded_sha256(manifest: dict[str, Any]) -> dict[str, str | None]:
    """Exported file name -> the sha256 the manifest records for it (None: it records none)."""
    return {name: manifest.get(key) for name, key in SHA256_KEYS.items()}


def described_network(directory: str | os.PathLike) -> tuple[games.Game, ModelConfig, int]:
    """(game, model configuration, observation encoding version) that an export folder's
    network.json describes; ExportError when it is missing or describes nothing."""
    path = epath.Path(directory) / NETWORK_FILE
    described = _read_json(path)
    try:
        return (games.make(described["game"]), ModelConfig.model_validate(described["model"]),
                described["encoding_version"])
    except (KeyError, TypeError, games.UnknownGameError, pydantic.ValidationError) as error:
        raise ExportError(f"{path} is not a network description: "
                          f"{_first_line(error)}") from None


def load_exported(directory: str | os.PathLike) -> tuple[games.Game, Any, nets.Params, dict]:
    """(game, network, params, manifest) of an export folder, ready for `network.apply`.

    Raises ExportError when a file is missing or unreadable, the parameters are not the ones the
    manifest announces, or the export is for another observation encoding than this code's.
    """
    directory = epath.Path(directory)
    manifest = read_manifest(directory)
    game, model_config, encoding_version = described_network(directory)
    if encoding_version != game.encoding_version:
        raise ExportError(
            f"{directory} holds a {game.name} model for observation encoding "
            f"{encoding_version}, this code encodes version {game.encoding_version}: "
            "export it again from its checkpoint, or retrain")
    if (manifest.get("game"), manifest.get("encoding_version")) != (game.name, encoding_version):
        raise ExportError(f"{directory}: {MANIFEST_FILE} and {NETWORK_FILE} describe different "
                          "models; export again")
    try:
        params_bytes = (directory / PARAMS_FILE).read_bytes()
    except OSError as error:
        raise ExportError(f"cannot read {directory / PARAMS_FILE}: {_first_line(error)}") from None
    if hashlib.sha256(params_bytes).hexdigest() != manifest.get("params_sha256"):
        raise ExportError(f"{directory / PARAMS_FILE} is not the one {MANIFEST_FILE} announces "
                          "(an interrupted export?): export again")

    network = nets.make_network(model_config, game)
    params = flax.serialization.msgpack_restore(params_bytes)
    expected = jax.eval_shape(  # shapes only: nothing is initialised or compiled
        network.init, jax.random.key(0), jnp.zeros((1, *game.observation_shape), jnp.float32)
    )
    if checkpoint.params_fingerprint(params) != checkpoint.params_fingerprint(expected):
        raise ExportError(f"{directory / PARAMS_FILE} does not fit the network in "
                          f"{NETWORK_FILE} ({nets.describe(network, expected)}): export again")
    return game, network, jax.tree.map(jnp.asarray, params), manifest


def _onnx_model(game, network, params, *, opset: int, ir_version: int) -> onnx.ModelProto:
    """The checked ONNX model of `network.apply(params, .)` with the given opset and IR version."""
    newest_opset = onnx.defs.onnx_opset_version()
    if opset > newest_opset:
        raise ExportError(f"export.onnx_opset = {opset}: the installed onnx writes opsets up to "
                          f"{newest_opset}; lower it (onnxruntime-web 1.30 reads up to 26)")
    oldest_ir = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])
    if ir_version < oldest_ir:
        raise ExportError(f"export.onnx_ir_version = {ir_version} is too old for opset {opset}, "
                          f"which needs IR version {oldest_ir} or newer: raise "
                          "export.onnx_ir_version or lower export.onnx_opset")
    try:
        # Imported here: jax2onnx is needed only when exporting, and importing it takes ~1 s.
        from jax2onnx import to_onnx

        _load_plugin_families(PLUGIN_FAMILIES)
        with _cache_every_compilation(), _quiet_logger("onnx_ir.serde"):
            model = to_onnx(
                lambda observation: network.apply(params, observation),
                [(BATCH_DIM, *game.observation_shape)],
                opset=opset,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
            )
    except Exception as error:  # whatever a jax it does not know makes jax2onnx raise
        converter = parallel.package_version("jax2onnx") or "(not installed)"
        raise ConverterError(
            f"jax2onnx {converter} could not convert the network under jax "
            f"{jax.__version__} ({type(error).__name__}: {_first_line(error)}): install a jax "
            "that this jax2onnx supports (or a jax2onnx that supports this jax) and export "
            "again") from error
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    if opsets.get("ai.onnx") != opset:
        raise ExportError(f"jax2onnx wrote opset {opsets.get('ai.onnx')}, not the configured "
                          f"{opset}: check export.onnx_opset")
    model.ir_version = ir_version
    # jax2onnx's own shape annotations can be stale (onnxruntime refused a ResNet's with
    # "Incompatible dimensions"); inferred ones are consistent by construction.
    del model.graph.value_info[:]
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"the exported ONNX model is invalid (opset {opset}, IR version "
                          f"{ir_version}): {_first_line(error)}") from error
    return model


def _load_plugin_families(families: tuple[str, ...]) -> None:
    """Loads only the jax2onnx plugin families our networks need, once per process.

    jax2onnx's first conversion imports every plugin it ships, for every library it supports:
    measured on this 2-core CPU, 0.9 s for jax's, 0.02 s for flax's and 5.4 s for equinox's
    (examples build models at import). A Flax network needs the first two. Where this
    version of jax2onnx lacks the hook (`plugin_system._already_imported_plugins`, checked in
    tests/test_export.py), it loads them all, as it would anyway.
    """
    from jax2onnx.plugins import plugin_system

    if getattr(plugin_system, "_already_imported_plugins", True):
        return
    root = pathlib.Path(plugin_system.__file__).parent
    for family in families:
        plugin_system._import_tree(root / family, f"jax2onnx.plugins.{family}")
    plugin_system._already_imported_plugins = True


@contextlib.contextmanager
def _cache_every_compilation():
    """Keeps even quick compilations in JAX's persistent cache (when one is configured).

    jax2onnx's first conversion in a process imports its plugins, some of which build example
    modules at import: many tiny XLA compilations, each below the usual caching threshold.
    Cached, the next process's first export skips them.
    """
    if not jax.config.jax_compilation_cache_dir:
        yield
        return
    threshold = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    try:
        yield
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", threshold)


@contextlib.contextmanager
def _quiet_logger(name: str):
    """Hides a library's warnings (onnx_ir warns about untyped shape constants on every export)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _json(data: dict) -> str:
    return json.dumps(data, indent=1) + "\n"


def read_manifest(directory: str | os.PathLike) -> dict:
    """The manifest.json of an export folder; ExportError (one line) if missing or unreadable."""
    return _read_json(epath.Path(directory) / MANIFEST_FILE)


def _read_json(path: epath.Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"no {path.name} in {path.parent}: export a model there first "
                          "(python -m cartridge_jax export RUN_DIR)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ExportError(f"cannot read {path}: {_first_line(error)}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
