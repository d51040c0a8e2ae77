"""Checkpoints of a training run: orbax-checkpoint under `<run_dir>/checkpoints`.

One checkpoint per saved iteration, in `<directory>/<iteration>/`, holding two items:

- `state`: the training state pytree (params, optimizer state, replay buffer, RNG keys, ...);
- `meta`: a JSON dict that says what the state is for (game, encoding_version, network,
  `params_fingerprint`, ...), read and checked before any array is loaded.

Writes are atomic: orbax writes `<iteration>.orbax-checkpoint-tmp/` and renames it to
`<iteration>/` once every file is written. A run killed mid-save leaves the tmp folder beside
the previous checkpoint, which stays the latest one; the next save of that iteration removes it.

Parameter snapshots (`save_snapshot`): the network's parameters alone, in
`<run_dir>/snapshots/iter_<N>.msgpack` (flax msgpack, as an export's params.msgpack), kept every
`training.snapshot_interval` iterations and whenever a network becomes the best one. Unlike
checkpoints they are never deleted; the Elo ladder rates them (`ladder --snapshots RUN_DIR`).

Typed PRNG keys (`jax.random.key`) are stored as their raw `uint32` key data and wrapped again
with the template's key implementation on restore, so nothing here depends on how a given
orbax version treats key arrays.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from cartridge_jax._files import atomic_write_bytes, is_remote

# Meta fields that say what a checkpoint is *for*: a mismatch means another run's checkpoint.
IDENTITY_FIELDS = ("game", "encoding_version", "network", "params_fingerprint")

SNAPSHOT_DIR = "snapshots"
_SNAPSHOT_NAME = re.compile(r"^iter_(\d+)\.msgpack$")

_STATE = "state"
_META = "meta"
_MAX_LISTED_DIFFERENCES = 3


class CheckpointError(Exception):
    """A checkpoint problem; the message is one line meant for the person running training."""


def params_fingerprint(params: Any) -> str:
    """A short stable hash of a parameter tree's paths, shapes and dtypes (not its values).

    Two networks built from the same description get the same fingerprint; a different layer
    width, depth or dtype changes it. Works on arrays and on `jax.ShapeDtypeStruct` leaves.
    """
    lines = [
        f"{_path_name(path)} {tuple(np.shape(leaf))} {_dtype_name(leaf)}"
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
    ]
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]


class Checkpoints:
    """The checkpoints of one run, newest `max_to_keep` kept.

    `save` blocks until the checkpoint is on disk (no async save to wait for or to lose on exit).
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int):
        if max_to_keep < 1:
            raise CheckpointError(f"max_to_keep must be at least 1, got {max_to_keep}")
        self._shown_directory = str(directory)
        self._manager = ocp.CheckpointManager(
            _absolute(directory),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                # Read-only users (evaluation, export) should not create folders.
                create=False,
                enable_async_checkpointing=False,
            ),
            # Registered up front: a fresh process can read metadata before any restore.
            item_handlers={
                _STATE: ocp.StandardCheckpointHandler(),
                _META: ocp.JsonCheckpointHandler(),
            },
        )

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def latest_iteration(self) -> int | None:
        """The newest saved iteration, or None when the directory holds no checkpoint."""
        return self._manager.latest_step()

    def iterations(self) -> list[int]:
        """All saved iterations, oldest first."""
        return sorted(self._manager.all_steps())

    def save(self, iteration: int, state: Any, meta: dict) -> None:
        """Writes `state` (a pytree of arrays) and `meta` (JSON-able dict) as `iteration`.

        Raises CheckpointError when `iteration` is not after the latest saved one: orbax would
        otherwise skip the save silently.
        """
        latest = self.latest_iteration()
        if latest is not None and iteration <= latest:
            raise CheckpointError(
                f"cannot save iteration {iteration} in {self._shown_directory}: it already holds "
                f"iteration {latest}; save iterations in increasing order"
            )
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint meta is not plain JSON data: {error}") from None
        saved = self._manager.save(
            iteration,
            args=ocp.args.Composite(
                **{
                    _STATE: ocp.args.StandardSave(_keys_to_data(state)),
                    _META: ocp.args.JsonSave(meta),
                }
            ),
        )
        self._manager.wait_until_finished()
        if not saved:
            raise CheckpointError(
                f"orbax declined to save iteration {iteration} in {self._shown_directory}"
            )

    def restore(
        self, template: Any, *, expected_meta: dict, iteration: int | None = None
    ) -> tuple[Any, dict]:
        """Loads a checkpoint (default: the latest) into the structure of `template`.

        `template` is a state of this run (e.g. its freshly initialised state; arrays, not
        ShapeDtypeStructs, where it holds PRNG keys): it gives the tree structure, shapes, dtypes
        and shardings. Before loading any array, the saved meta's identity fields
        (`IDENTITY_FIELDS` present in `expected_meta`) must equal `expected_meta`'s, and the saved
        tree must have the template's paths, shapes and dtypes; otherwise CheckpointError names
        what differs. Returns (state, saved meta).
        """
        iteration = self._existing_iteration(iteration)
        where = f"checkpoint in {self._shown_directory} (iteration {iteration})"
        meta = self._restore_meta(iteration, where)
        _check_identity(meta, expected_meta, where)
        data_template = _keys_to_data(template)
        self._check_tree(iteration, data_template, where)
        try:
            restored = self._manager.restore(
                iteration,
                args=ocp.args.Composite(
                    **{
                        _STATE: ocp.args.StandardRestore(
                            jax.tree.map(ocp.utils.to_shape_dtype_struct, data_template)
                        ),
                    }
                ),
            )
        except Exception as error:  # checked above, so this is a damaged checkpoint
            raise CheckpointError(f"{where} cannot be read: {_first_line(error)}") from error
        return _data_to_keys(restored[_STATE], template), meta

    def restore_params(self, *, expected_meta: dict,
                       iteration: int | None = None) -> tuple[Any, int, int]:
        """(params, step, iteration) of a checkpoint (default: the latest), read alone.

        Only the network's parameters and the step counter are read, not the optimizer or the
        replay buffer, and no template of the whole state is needed: readers (eval, play,
        export) build no trainer. The saved identity must match `expected_meta`'s
        (`IDENTITY_FIELDS` present there, the parameter fingerprint included).
        """
        iteration = self._existing_iteration(iteration)
        where = f"checkpoint in {self._shown_directory} (iteration {iteration})"
        meta = self._restore_meta(iteration, where)
        _check_identity(meta, expected_meta, where)
        try:
            saved = self._manager.item_metadata(iteration)[_STATE]
            saved = getattr(saved, "tree", saved)["train_state"]
            wanted = {"train_state": {name: jax.tree.map(_shape_dtype, saved[name])
                                      for name in ("params", "step")}}
            with ocp.PyTreeCheckpointer() as reader:
                restored = reader.restore(
                    self._manager.directory / str(iteration) / _STATE,
                    args=ocp.args.PyTreeRestore(
                        item=wanted, partial_restore=True,
                        restore_args=jax.tree.map(lambda _: ocp.ArrayRestoreArgs(), wanted)))
        except Exception as error:  # the identity matched, so this is a damaged checkpoint
            raise CheckpointError(f"{where} cannot be read: {_first_line(error)}") from error
        train_state = restored["train_state"]
        return train_state["params"], int(train_state["step"]), iteration

    def close(self) -> None:
        self._manager.close()

    def _existing_iteration(self, iteration: int | None) -> int:
        saved = self.iterations()
        if not saved:
            raise CheckpointError(f"no checkpoint in {self._shown_directory}")
        if iteration is None:
            return saved[-1]
        if iteration not in saved:
            raise CheckpointError(
                f"no checkpoint of iteration {iteration} in {self._shown_directory}; "
                f"saved iterations: {', '.join(map(str, saved))}"
            )
        return iteration

    def _restore_meta(self, iteration: int, where: str) -> dict:
        try:
            restored = self._manager.restore(
                iteration, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
            )
        except Exception as error:  # orbax raises many types for unreadable folders
            raise CheckpointError(f"{where} has no readable meta: {_first_line(error)}") from error
        return restored[_META]

    def _check_tree(self, iteration: int, data_template: Any, where: str) -> None:
        try:
            saved = self._manager.item_metadata(iteration)[_STATE]
        except Exception as error:  # orbax raises many types for unreadable folders
            raise CheckpointError(f"{where} has unreadable state: {_first_line(error)}") from error
        if saved is None:
            raise CheckpointError(f"{where} has no readable state")
        saved_leaves = _leaf_specs(getattr(saved, "tree", saved))
        wanted_leaves = _leaf_specs(data_template)
        missing = sorted(wanted_leaves.keys() - saved_leaves)
        unknown = sorted(saved_leaves.keys() - wanted_leaves)
        differences = [f"{path} missing there" for path in missing]
        differences += [f"{path} not in this run's state" for path in unknown]
        differences += [
            f"{path} is {saved_leaves[path]} there, {spec} here"
            for path, spec in wanted_leaves.items()
            if path in saved_leaves and saved_leaves[path] != spec
        ]
        if differences:
            raise CheckpointError(
                f"{where} does not fit this run's state: {_listing(differences)}: "
                "use another --run-dir or the settings of the run that saved it"
            )


def snapshot_path(run_dir: str | os.PathLike, iteration: int) -> epath.Path:
    """`<run_dir>/snapshots/iter_<iteration>.msgpack`."""
    return epath.Path(run_dir) / SNAPSHOT_DIR / f"iter_{iteration}.msgpack"


def save_snapshot(run_dir: str | os.PathLike, iteration: int, params: Any) -> epath.Path:
    """Writes the parameters of `iteration` (atomically); returns the file."""
    path = snapshot_path(run_dir, iteration)
    atomic_write_bytes(path, flax.serialization.to_bytes(jax.device_get(params)))
    return path


def snapshots(run_dir: str | os.PathLike) -> dict[int, epath.Path]:
    """{iteration: file} of the run's snapshots, oldest first."""
    folder = epath.Path(run_dir) / SNAPSHOT_DIR
    found = {snapshot_iteration(path): path for path in folder.glob("iter_*.msgpack")
             if _SNAPSHOT_NAME.match(path.name)}
    return dict(sorted(found.items()))


def snapshot_iteration(path: str | os.PathLike) -> int:
    """The iteration in a snapshot's file name (0 if it has none)."""
    match = _SNAPSHOT_NAME.match(epath.Path(path).name)
    return int(match.group(1)) if match else 0


def load_snapshot(path: str | os.PathLike, template: Any) -> Any:
    """The parameters in snapshot `path`, checked against `template` (the network's parameters
    or their shapes); CheckpointError with a one-line reason otherwise."""
    try:
        params = flax.serialization.msgpack_restore(epath.Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"cannot read snapshot {path}: {_first_line(error)}") from None
    if params_fingerprint(params) != params_fingerprint(template):
        raise CheckpointError(f"snapshot {path} does not fit this network: rate it with the "
                              "settings of the run that saved it")
    return jax.tree.map(jax.numpy.asarray, params)


def _check_identity(saved: dict, expected: dict, where: str) -> None:
    # Through JSON so tuples in `expected` compare equal to the lists read back.
    expected = json.loads(json.dumps(expected))
    differences = []
    for field in IDENTITY_FIELDS:
        if field not in expected:
            continue
        if field not in saved:
            differences.append(f"no {field} (this run: {_shown(expected[field])})")
        elif saved[field] != expected[field]:
            differences.append(
                f"{field} {_shown(saved[field])} (this run: {_shown(expected[field])})"
            )
    if differences:
        raise CheckpointError(
            f"{where} was saved with {_listing(differences)}: use another --run-dir"
        )


def _shape_dtype(leaf: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype)


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree: Any) -> Any:
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, tree)


def _data_to_keys(restored: Any, template: Any) -> Any:
    def rewrap(data: Any, like: Any) -> Any:
        if _is_key(like):
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(like))
        return data

    return jax.tree.map(rewrap, restored, template)


def _leaf_specs(tree: Any) -> dict[str, str]:
    """{"params/dense/w": "float32[3,2]"} for every leaf (orbax metadata or arrays)."""
    return {
        _path_name(path): f"{_dtype_name(leaf)}[{','.join(map(str, np.shape(leaf)))}]"
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _path_name(path: tuple) -> str:
    # orbax metadata turns NamedTuple fields into dict keys: name both the same way.
    parts = []
    for key in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def _dtype_name(leaf: Any) -> str:
    dtype = getattr(leaf, "dtype", None)
    return str(dtype if dtype is not None else np.asarray(leaf).dtype)


def _absolute(directory: str | os.PathLike) -> str:
    # orbax (tensorstore) refuses relative local paths, and only at write time.
    if is_remote(directory):
        return os.fspath(directory)
    return str(pathlib.Path(directory).expanduser().absolute())


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _listing(differences: list[str]) -> str:
    shown = "; ".join(differences[:_MAX_LISTED_DIFFERENCES])
    more = len(differences) - _MAX_LISTED_DIFFERENCES
    return f"{shown}; and {more} more" if more > 0 else shown


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
