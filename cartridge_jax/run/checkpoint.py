"""Checkpoints of a training run: orbax-checkpoint under `<run_dir>/checkpoints`.

One checkpoint per saved iteration, in `<directory>/<iteration>/`, holding two items:

- `state`: the training state pytree (params, optimizer state, replay buffer, RNG keys, ...);
- `meta`: a JSON dict that says what the state is for (game, encoding_version, network,
  `params_fingerprint`, ...), read and checked before any array is loaded.

Writes are atomic: orbax writes `<iteration>.orbax-checkpoint-tmp/` and renames it to
`<iteration>/` once every file is written. A run killed mid-save leaves the tmp folder beside
the previous checkpoint, which stays the latest one; the next save of that iteration removes it.

Damage is caught: once orbax has committed a checkpoint, `wait` seals it with
`<iteration>/checksums.json`, the size and sha256 of each of its files (orbax checks nothing:
flipped bytes in a data file load as wrong numbers). Every restore checks them first. The trainer
resumes with `restore_newest_intact`, which moves a damaged checkpoint to
`<directory>/set-aside/` (never deleting it) and falls back to the one before. A checkpoint
without checksums (saved before they existed, or killed between commit and seal) is used
unchecked. Errors from orbax and TensorStore become one line, their innermost cause; the full
error is the CheckpointError's `__cause__`.

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
from collections.abc import Callable
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from cartridge_jax._files import (
    atomic_write_bytes,
    atomic_write_text,
    folder_sums,
    is_remote,
    sum_differences,
)

# Meta fields that say what a checkpoint is *for*: a mismatch means another run's checkpoint.
IDENTITY_FIELDS = ("game", "encoding_version", "network", "params_fingerprint")

SNAPSHOT_DIR = "snapshots"
# In `<iteration>/`: {"format": 1, "files": {relative path: {"bytes": n, "sha256": hex}}}.
CHECKSUM_FILE = "checksums.json"
# Damaged checkpoints go to `<directory>/set-aside/<iteration>`: not a step name, so orbax
# neither lists nor deletes them.
SET_ASIDE_DIR = "set-aside"
_SNAPSHOT_NAME = re.compile(r"^iter_(\d+)\.msgpack$")

_STATE = "state"
_META = "meta"
_MAX_LISTED_DIFFERENCES = 3
_MAX_CAUSE_CHARACTERS = 300


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


class CorruptCheckpointError(CheckpointError):
    """A checkpoint whose files are damaged, missing or unreadable: set it aside and use an
    older one. (A checkpoint of another run is a plain CheckpointError: it is not damaged.)

    `path` is the checkpoint's folder, `reason` what is wrong with it (both in the message).
    """

    def __init__(self, message: str, *, path: epath.Path, reason: str):
        super().__init__(message)
        self.path = path
        self.reason = reason


class Checkpoints:
    """The checkpoints of one run, newest `max_to_keep` kept.

    With `asynchronous=False` (the default), `save` returns once the checkpoint is committed
    and sealed. With `asynchronous=True`, `save` returns as soon as orbax holds a copy of the
    arrays and writes on a background thread; `wait()` blocks until that checkpoint is committed
    and seals it (the next `save` and `close` wait too). Only a sealed checkpoint is known good:
    call `wait()` before anything (stats.json) names it.
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int,
                 asynchronous: bool = False):
        if max_to_keep < 1:
            raise CheckpointError(f"max_to_keep must be at least 1, got {max_to_keep}")
        self._shown_directory = str(directory)
        self._asynchronous = asynchronous
        self._unsealed: int | None = None  # saved (maybe still being written), not yet sealed
        self._manager = ocp.CheckpointManager(
            _absolute(directory),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                # Read-only users (evaluation, export) should not create folders.
                create=False,
                enable_async_checkpointing=asynchronous,
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

        Waits for the previous save first (see the class docstring). Raises CheckpointError
        when `iteration` is not after the latest saved one (orbax would otherwise skip the save
        silently) and, in one line, when the save fails (disk full, no write permission): the
        previous checkpoints stay as they were.
        """
        self.wait()
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
        try:
            saved = self._manager.save(
                iteration,
                args=ocp.args.Composite(
                    **{
                        _STATE: ocp.args.StandardSave(_keys_to_data(state)),
                        _META: ocp.args.JsonSave(meta),
                    }
                ),
            )
        except Exception as error:  # orbax and TensorStore raise many types
            raise self._save_failed(iteration, error) from error
        if not saved:
            raise CheckpointError(
                f"orbax declined to save iteration {iteration} in {self._shown_directory}"
            )
        self._unsealed = iteration
        if not self._asynchronous:
            self.wait()

    def saving(self) -> bool:
        """Whether an asynchronous save is still being written (`wait` would block)."""
        return self._manager.is_saving_in_progress()

    def wait(self) -> None:
        """Blocks until the last `save` is committed, then seals it: writes `CHECKSUM_FILE`,
        the size and sha256 of each of its files, into its folder (atomically, by the main
        process). Does nothing when no save is pending. CheckpointError (one line) when the save
        failed; the checkpoints before it stay as they were."""
        iteration, self._unsealed = self._unsealed, None
        try:
            self._manager.wait_until_finished()
        except Exception as error:  # the background save's own error, re-raised here
            raise self._save_failed(iteration, error) from error
        if iteration is None or jax.process_index() != 0:
            return
        folder = self._folder(iteration)
        try:
            sums = folder_sums(folder, skip=_not_checkpoint_data)
            atomic_write_text(folder / CHECKSUM_FILE,
                              json.dumps({"format": 1, "files": sums}, indent=1) + "\n")
        except OSError as error:
            raise CheckpointError(
                f"cannot write the checksums of {folder}: {_root_cause(error)}: check free "
                f"space and write permission of {self._shown_directory}"
            ) from error

    def verify(self, iteration: int) -> bool:
        """Checks the files of checkpoint `iteration` against its checksums: True when they
        match, False when it has none (saved before checksums existed, or stopped between the
        commit and `wait`); CorruptCheckpointError naming the first differences otherwise."""
        folder = self._folder(iteration)
        if not (folder / CHECKSUM_FILE).exists():
            return False
        try:
            sums = json.loads((folder / CHECKSUM_FILE).read_text())["files"]
            differences = sum_differences(folder, sums)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise self._damaged(iteration, f"its {CHECKSUM_FILE} is unreadable "
                                           f"({_root_cause(error)})") from error
        if differences:
            raise self._damaged(iteration, _listing(differences))
        return True

    def restore(self, template: Any, *, expected_meta: dict, iteration: int | None = None,
                warn: Callable[[str], None] | None = None) -> tuple[Any, dict]:
        """Loads a checkpoint (default: the latest) into the structure of `template`.

        `template` is a state of this run (e.g. its freshly initialised state; arrays, not
        ShapeDtypeStructs, where it holds PRNG keys): it gives the tree structure, shapes, dtypes
        and shardings. First the files are checked against their checksums (`verify`; a
        checkpoint without them is used unchecked, with a note to `warn` if given). Then, before
        loading any array, the saved meta's identity fields (`IDENTITY_FIELDS` present in
        `expected_meta`) must equal `expected_meta`'s, and the saved tree must have the
        template's paths, shapes and dtypes; otherwise CheckpointError names what differs.
        Damaged or unreadable files raise CorruptCheckpointError. Returns (state, saved meta).
        """
        iteration = self._existing_iteration(iteration)
        where = self._where(iteration)
        self._verify_or_note(iteration, warn)
        meta = self._restore_meta(iteration)
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
            raise self._damaged(iteration, f"cannot be read: {_root_cause(error)}") from error
        return _data_to_keys(restored[_STATE], template), meta

    def restore_newest_intact(
        self, template: Any, *, expected_meta: dict, warn: Callable[[str], None]
    ) -> tuple[int, Any, dict] | None:
        """(iteration, state, meta) of the newest checkpoint that `restore` loads; None when
        there is no checkpoint at all.

        For the trainer (the one writer of the directory), not for readers. A damaged
        checkpoint (CorruptCheckpointError) is set aside: moved, never deleted, to
        `<directory>/set-aside/<iteration>` (orbax no longer lists it), with a one-line
        warning to `warn`; the next older one is tried. When every checkpoint was set aside:
        CheckpointError in one line. Any other CheckpointError (another run's checkpoint, a
        state that does not fit) is raised as it is, nothing set aside.
        """
        set_aside = []
        for iteration in reversed(self.iterations()):
            try:
                state, meta = self.restore(template, expected_meta=expected_meta,
                                           iteration=iteration, warn=warn)
            except CorruptCheckpointError as error:
                destination = self._set_aside(iteration)
                warn(f"Warning: {self._where(iteration)} is damaged ({error.reason}); moved it "
                     f"to {destination}, trying the one before it")
                set_aside.append((iteration, error))
                continue
            return iteration, state, meta
        if not set_aside:
            return None
        newest, error = set_aside[0]
        iterations = ", ".join(str(iteration) for iteration, _ in reversed(set_aside))
        raise CheckpointError(
            f"no intact checkpoint in {self._shown_directory}: iterations {iterations} are "
            f"damaged (iteration {newest}: {error.reason}) and were moved to "
            f"{self._manager.directory / SET_ASIDE_DIR}; rerun to start the run over, or put "
            "back a copy of the checkpoints"
        ) from error

    def restore_params(self, *, expected_meta: dict, iteration: int | None = None,
                       warn: Callable[[str], None] | None = None) -> tuple[Any, int, int]:
        """(params, step, iteration) of a checkpoint (default: the latest), read alone.

        Only the network's parameters and the step counter are read, not the optimizer or the
        replay buffer, and no template of the whole state is needed: readers (eval, play,
        export) build no trainer. Files are checked as in `restore` (all of them, since which
        data files hold the parameters is orbax's business). The saved identity must match
        `expected_meta`'s (`IDENTITY_FIELDS` present there, the parameter fingerprint
        included). Damaged files raise CorruptCheckpointError; nothing is set aside.
        """
        iteration = self._existing_iteration(iteration)
        where = self._where(iteration)
        self._verify_or_note(iteration, warn)
        meta = self._restore_meta(iteration)
        _check_identity(meta, expected_meta, where)
        try:
            saved = self._manager.item_metadata(iteration)[_STATE]
            saved = getattr(saved, "tree", saved)["train_state"]
            wanted = {"train_state": {name: jax.tree.map(_shape_dtype, saved[name])
                                      for name in ("params", "step")}}
            with ocp.PyTreeCheckpointer() as reader:
                restored = reader.restore(
                    self._folder(iteration) / _STATE,
                    args=ocp.args.PyTreeRestore(
                        item=wanted, partial_restore=True,
                        restore_args=jax.tree.map(lambda _: ocp.ArrayRestoreArgs(), wanted)))
        except Exception as error:  # the identity matched, so this is a damaged checkpoint
            raise self._damaged(iteration, f"cannot be read: {_root_cause(error)}") from error
        train_state = restored["train_state"]
        return train_state["params"], int(train_state["step"]), iteration

    def close(self) -> None:
        """Waits for (and seals) a pending save, then lets orbax go."""
        try:
            self.wait()
        finally:
            self._manager.close()

    def _folder(self, iteration: int) -> epath.Path:
        return self._manager.directory / str(iteration)

    def _where(self, iteration: int) -> str:
        return f"checkpoint in {self._shown_directory} (iteration {iteration})"

    def _damaged(self, iteration: int, reason: str) -> CorruptCheckpointError:
        folder = self._folder(iteration)
        return CorruptCheckpointError(
            f"{self._where(iteration)} is damaged: {reason}: move {folder} out of "
            f"{self._shown_directory} to use the checkpoint before it",
            path=folder, reason=reason)

    def _save_failed(self, iteration: int | None, error: Exception) -> CheckpointError:
        return CheckpointError(
            f"saving iteration {iteration} in {self._shown_directory} failed: "
            f"{_root_cause(error)}: check free space and write permission there (the previous "
            "checkpoints are intact)"
        )

    def _verify_or_note(self, iteration: int, warn: Callable[[str], None] | None) -> None:
        if not self.verify(iteration) and warn is not None:
            warn(f"Note: {self._where(iteration)} has no {CHECKSUM_FILE} (saved by an older "
                 "version, or stopped before it was written), so it is used unchecked")

    def _set_aside(self, iteration: int) -> epath.Path:
        """Moves checkpoint `iteration` to `<directory>/set-aside/`, under a new name if that
        one is taken; returns where it went."""
        folder = self._manager.directory / SET_ASIDE_DIR
        destination = folder / str(iteration)
        copy = 1
        while destination.exists():
            copy += 1
            destination = folder / f"{iteration}.{copy}"
        if jax.process_index() == 0 and self._folder(iteration).exists():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                self._folder(iteration).rename(destination)
            except OSError as error:
                raise CheckpointError(
                    f"cannot move the damaged {self._where(iteration)} to {destination}: "
                    f"{_root_cause(error)}: check write permission of {self._shown_directory}"
                ) from error
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"cartridge set aside {iteration}")
        self._manager.reload()
        return destination

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

    def _restore_meta(self, iteration: int) -> dict:
        try:
            restored = self._manager.restore(
                iteration, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
            )
        except Exception as error:  # orbax raises many types for unreadable folders
            raise self._damaged(iteration,
                                f"its meta is unreadable: {_root_cause(error)}") from error
        if not isinstance(restored[_META], dict):
            raise self._damaged(iteration, "its meta is not a JSON object")
        return restored[_META]

    def _check_tree(self, iteration: int, data_template: Any, where: str) -> None:
        try:
            saved = self._manager.item_metadata(iteration)[_STATE]
        except Exception as error:  # orbax raises many types for unreadable folders
            raise self._damaged(iteration,
                                f"its state is unreadable: {_root_cause(error)}") from error
        if saved is None:
            raise self._damaged(iteration, "its state is unreadable")
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
    """Writes the parameters of `iteration` (atomically); returns the file. CheckpointError in
    one line when it cannot (a full disk, a read-only folder): no file is left half-written."""
    path = snapshot_path(run_dir, iteration)
    try:
        atomic_write_bytes(path, flax.serialization.to_bytes(jax.device_get(params)))
    except OSError as error:
        raise CheckpointError(
            f"cannot write snapshot {path}: {_root_cause(error)}: check free space and write "
            f"permission of {path.parent}"
        ) from error
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


def _root_cause(error: BaseException) -> str:
    """The first line of the innermost error behind `error`, at most `_MAX_CAUSE_CHARACTERS`.

    orbax wraps TensorStore's errors in ones whose first line is a generic "Encountered error
    while reading array index ..."; the cause worth a line ("OUT_OF_RANGE: ... byte range
    [0, 10098) is not valid for value of size 5195") is at the bottom of the chain.
    """
    while error.__cause__ is not None or (error.__context__ is not None
                                          and not error.__suppress_context__):
        error = error.__cause__ or error.__context__
    line = _first_line(error)
    if len(line) > _MAX_CAUSE_CHARACTERS:
        line = line[: _MAX_CAUSE_CHARACTERS - 3] + "..."
    return line


def _not_checkpoint_data(relative: str) -> bool:
    # The checksum file itself and the temporary files of its atomic write.
    return relative == CHECKSUM_FILE or relative.startswith(f".{CHECKSUM_FILE}.")
