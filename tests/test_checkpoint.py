"""Checkpoints: round trip (typed PRNG keys included), retention, identity and shape checks,
checksums and damaged checkpoints set aside."""

import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cartridge_jax.run.checkpoint import (
    CheckpointError,
    Checkpoints,
    CorruptCheckpointError,
    params_fingerprint,
)


class Replay(NamedTuple):
    observation: jax.Array  # [capacity, 3]
    filled: jax.Array  # bool[capacity]


def _state(hidden=4, seed=0):
    params = {"dense": {"w": jnp.full((3, hidden), 0.5, jnp.float32), "b": jnp.zeros(hidden)}}
    return {
        "params": params,
        "count": jnp.int32(7),
        "replay": Replay(jnp.arange(15, dtype=jnp.float32).reshape(5, 3),
                         jnp.array([True, False, True, False, False])),
        "key": jax.random.key(seed),
        "game_keys": jax.random.split(jax.random.key(seed + 1), 4),  # typed, [4]
    }


def _meta(state, **overrides):
    meta = {
        "game": "tictactoe",
        "encoding_version": 1,
        "network": {"kind": "mlp", "hidden": [4]},
        "params_fingerprint": params_fingerprint(state["params"]),
        "iteration": 1,
    }
    meta.update(overrides)
    return meta


def _assert_same(restored, original):
    assert jax.tree.structure(restored) == jax.tree.structure(original)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(original)):
        assert got.dtype == want.dtype and got.shape == want.shape
        if jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
            np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(want))
        else:
            np.testing.assert_array_equal(got, want)


def test_round_trip_restores_arrays_keys_and_meta(tmp_path):
    state = _state(seed=3)
    with Checkpoints(tmp_path / "checkpoints", max_to_keep=3) as checkpoints:
        checkpoints.save(1, state, _meta(state))
    # a fresh object, as after a restart
    with Checkpoints(tmp_path / "checkpoints", max_to_keep=3) as checkpoints:
        assert checkpoints.latest_iteration() == 1
        restored, meta = checkpoints.restore(_state(seed=99), expected_meta=_meta(state))
    _assert_same(restored, state)
    assert isinstance(restored["replay"], Replay)
    assert meta == _meta(state)
    # the restored key draws the same numbers as the saved one
    assert jax.random.uniform(restored["key"]) == jax.random.uniform(state["key"])


def test_empty_or_missing_directory_has_no_latest_iteration(tmp_path):
    (tmp_path / "empty").mkdir()
    assert Checkpoints(tmp_path / "empty", max_to_keep=2).latest_iteration() is None
    assert Checkpoints(tmp_path / "missing", max_to_keep=2).latest_iteration() is None
    assert not (tmp_path / "missing").exists()  # reading creates nothing
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        Checkpoints(tmp_path / "empty", max_to_keep=2).restore(_state(), expected_meta={})


def test_max_to_keep_and_restoring_an_older_iteration(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    for iteration in range(1, 5):
        state = {**_state(), "count": jnp.int32(iteration)}
        checkpoints.save(iteration, state, _meta(state, iteration=iteration))
    assert checkpoints.iterations() == [3, 4]
    assert checkpoints.latest_iteration() == 4
    restored, meta = checkpoints.restore(_state(), expected_meta=_meta(_state()), iteration=3)
    assert int(restored["count"]) == 3 and meta["iteration"] == 3
    with pytest.raises(CheckpointError, match="no checkpoint of iteration 1 .* iterations: 3, 4"):
        checkpoints.restore(_state(), expected_meta={}, iteration=1)
    checkpoints.close()


def test_saving_an_iteration_not_after_the_latest_is_refused(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    checkpoints.save(2, _state(), _meta(_state()))
    with pytest.raises(CheckpointError, match="cannot save iteration 2 .* holds iteration 2"):
        checkpoints.save(2, _state(), _meta(_state()))
    with pytest.raises(CheckpointError, match="not plain JSON"):
        checkpoints.save(3, _state(), {"game": object()})


@pytest.mark.parametrize(
    "field, saved, expected",
    [
        ("game", "connect4", "tictactoe"),
        ("encoding_version", 1, 2),
        ("params_fingerprint", "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"),
        ("network", {"kind": "mlp", "hidden": [4]}, {"kind": "resnet", "blocks": 2}),
    ],
)
def test_checkpoint_of_another_run_is_refused_naming_both_values(tmp_path, field, saved, expected):
    checkpoints = Checkpoints(tmp_path / "checkpoints", max_to_keep=2)
    checkpoints.save(1, _state(), _meta(_state(), **{field: saved}))
    with pytest.raises(CheckpointError) as caught:
        checkpoints.restore(_state(), expected_meta=_meta(_state(), **{field: expected}))
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "checkpoints") in message
    assert field in message
    for value in (saved, expected):
        shown = value if isinstance(value, str) else str(value).replace("'", '"').replace(" ", "")
        assert shown in message, message
    assert "use another --run-dir" in message


def test_tuples_in_expected_meta_match_lists_read_back(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    checkpoints.save(1, _state(), _meta(_state(), network={"hidden": (4, 4)}))
    checkpoints.restore(_state(), expected_meta=_meta(_state(), network={"hidden": (4, 4)}))


def test_template_of_other_shapes_dtypes_or_structure_is_refused(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    checkpoints.save(1, _state(hidden=4), _meta(_state(hidden=4)))
    # identity fields left out, so the tree check itself is what refuses
    cases = {
        "params/dense/w is float32[3,4] there, float32[3,8] here": _state(hidden=8),
        "count is int32[] there, float32[] here": {**_state(), "count": jnp.float32(7)},
        "extra missing there": {**_state(), "extra": jnp.zeros(2)},
        "key not in this run's state": {k: v for k, v in _state().items() if k != "key"},
    }
    for expected_text, template in cases.items():
        with pytest.raises(CheckpointError) as caught:
            checkpoints.restore(template, expected_meta={"game": "tictactoe"})
        assert expected_text in str(caught.value)
        assert "\n" not in str(caught.value)


def test_unfinished_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=3)
    checkpoints.save(1, _state(), _meta(_state()))
    checkpoints.close()
    # What a kill during the save of iteration 2 leaves: orbax's temporary folder, never "2/".
    leftover = tmp_path / "2.orbax-checkpoint-tmp"
    (leftover / "state").mkdir(parents=True)
    (leftover / "state" / "half_written").write_bytes(b"\0" * 10)
    checkpoints = Checkpoints(tmp_path, max_to_keep=3)
    assert checkpoints.latest_iteration() == 1
    restored, _ = checkpoints.restore(_state(), expected_meta=_meta(_state()))
    _assert_same(restored, _state())
    checkpoints.save(2, _state(), _meta(_state()))  # the leftover is replaced
    assert checkpoints.iterations() == [1, 2]
    assert not leftover.exists()


def test_relative_directory_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoints = Checkpoints("runs/x/checkpoints", max_to_keep=1)
    checkpoints.save(1, _state(), _meta(_state()))
    assert (tmp_path / "runs/x/checkpoints/1").is_dir()
    with pytest.raises(CheckpointError, match="checkpoint in runs/x/checkpoints "):
        checkpoints.restore(_state(), expected_meta=_meta(_state(), game="connect4"))


def test_params_fingerprint_depends_on_shapes_not_values():
    small, other_values, wider = _state(hidden=4), _state(hidden=4, seed=5), _state(hidden=8)
    other_values["params"]["dense"]["w"] = other_values["params"]["dense"]["w"] + 1
    fingerprint = params_fingerprint(small["params"])
    assert len(fingerprint) == 16
    assert fingerprint == params_fingerprint(other_values["params"])
    assert fingerprint == params_fingerprint(jax.eval_shape(lambda p: p, small["params"]))
    assert fingerprint != params_fingerprint(wider["params"])
    as_half = jax.tree.map(lambda x: x.astype(jnp.float16), small["params"])
    assert fingerprint != params_fingerprint(as_half)


# ---------------------------------------------------------------------------------------------
# Damage: checksums written with each checkpoint, checked on restore; damaged ones set aside.


def _big_state(value=0.0):
    """`_state` with a leaf large enough to get a data file of its own (not inlined by OCDBT),
    and the `train_state` layout `restore_params` reads."""
    state = _state()
    return {**state, "train_state": {"params": state.pop("params"), "step": jnp.int32(5)},
            "weights": jnp.arange(4000, dtype=jnp.float32).reshape(40, 100) + value}


def _saved(tmp_path, iterations=(1, 2, 3)) -> Checkpoints:
    checkpoints = Checkpoints(tmp_path / "checkpoints", max_to_keep=5)
    for iteration in iterations:
        state = _big_state(iteration)
        checkpoints.save(iteration, state, _meta(state, iteration=iteration))
    return checkpoints


def _largest_data_file(tmp_path, iteration):
    files = (tmp_path / "checkpoints" / str(iteration) / "state").glob("ocdbt.process_*/d/*")
    return max(files, key=lambda path: path.stat().st_size)


def _flip_bytes(path):
    data = bytearray(path.read_bytes())
    for index in range(len(data) // 3, len(data) // 3 + 64):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage(tmp_path, iteration, how):
    folder = tmp_path / "checkpoints" / str(iteration)
    if how == "flipped":
        _flip_bytes(_largest_data_file(tmp_path, iteration))
    elif how == "truncated":
        _truncate(_largest_data_file(tmp_path, iteration))
    elif how == "missing file":
        _largest_data_file(tmp_path, iteration).unlink()
    elif how == "garbage meta":
        (folder / "meta" / "metadata").write_text("{not json")
    elif how == "garbage checksums":
        (folder / "checksums.json").write_text("{")


def test_every_file_of_a_checkpoint_has_a_checksum(tmp_path):
    checkpoints = _saved(tmp_path, iterations=(1,))
    folder = tmp_path / "checkpoints" / "1"
    sums = json.loads((folder / "checksums.json").read_text())["files"]
    on_disk = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    assert set(sums) == on_disk - {"checksums.json"}
    assert {"meta/metadata", "state/_METADATA"} <= set(sums)
    assert checkpoints.verify(1) is True


@pytest.mark.parametrize("how", ["flipped", "truncated", "missing file", "garbage meta",
                                 "garbage checksums"])
def test_damaged_newest_checkpoint_is_set_aside_and_the_older_one_used(tmp_path, how):
    checkpoints = _saved(tmp_path)
    _damage(tmp_path, 3, how)
    warnings = []
    iteration, state, meta = checkpoints.restore_newest_intact(
        _big_state(), expected_meta=_meta(_big_state()), warn=warnings.append)
    assert iteration == 2 and meta["iteration"] == 2
    _assert_same(state, _big_state(2))
    set_aside = tmp_path / "checkpoints" / "set-aside" / "3"
    assert set_aside.is_dir()  # kept, not deleted
    assert checkpoints.iterations() == [1, 2]
    [warning] = warnings
    assert warning.startswith("Warning: checkpoint in ") and "(iteration 3) is damaged" in warning
    assert str(set_aside) in warning and "\n" not in warning
    # the run goes on: iteration 3 is saved again, beside the one set aside
    checkpoints.save(3, _big_state(3), _meta(_big_state(), iteration=3))
    assert checkpoints.iterations() == [1, 2, 3] and set_aside.is_dir()


def test_flipped_bytes_load_silently_without_checksums(tmp_path):
    # Why the checksums exist: orbax itself reads a flipped data file as wrong numbers.
    checkpoints = _saved(tmp_path, iterations=(1,))
    (tmp_path / "checkpoints" / "1" / "checksums.json").unlink()
    _flip_bytes(_largest_data_file(tmp_path, 1))
    state, _ = checkpoints.restore(_big_state(), expected_meta=_meta(_big_state()))
    assert not np.array_equal(state["weights"], _big_state(1)["weights"])


def test_restore_and_restore_params_refuse_a_damaged_checkpoint_in_one_line(tmp_path):
    checkpoints = _saved(tmp_path, iterations=(1, 2))
    _flip_bytes(_largest_data_file(tmp_path, 2))
    for read in (lambda: checkpoints.restore(_big_state(), expected_meta=_meta(_big_state())),
                 lambda: checkpoints.restore_params(expected_meta=_meta(_big_state()))):
        with pytest.raises(CorruptCheckpointError) as caught:
            read()
        message = str(caught.value)
        assert "\n" not in message
        assert "(iteration 2) is damaged: state/ocdbt.process_0/d/" in message
        assert "differs from its checksum" in message
        assert message.endswith(f"move {tmp_path / 'checkpoints' / '2'} out of "
                                f"{tmp_path / 'checkpoints'} to use the checkpoint before it")
    assert checkpoints.iterations() == [1, 2]  # readers set nothing aside
    params, step, iteration = checkpoints.restore_params(expected_meta=_meta(_big_state()),
                                                         iteration=1)
    assert (step, iteration) == (5, 1)
    np.testing.assert_array_equal(params["dense"]["w"], _big_state()["train_state"]["params"]
                                  ["dense"]["w"])


def test_orbax_errors_become_one_line_with_the_full_error_as_cause(tmp_path):
    checkpoints = _saved(tmp_path, iterations=(1,))
    (tmp_path / "checkpoints" / "1" / "checksums.json").unlink()  # as an older version saved it
    _truncate(_largest_data_file(tmp_path, 1))
    notes = []
    with pytest.raises(CorruptCheckpointError) as caught:
        checkpoints.restore(_big_state(), expected_meta=_meta(_big_state()), warn=notes.append)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 600, message
    # the innermost cause, not orbax's "Encountered error while reading array index ..."
    assert "(iteration 1) is damaged: cannot be read: OUT_OF_RANGE" in message
    assert caught.value.__cause__ is not None  # the whole story, for --common.log_level debug
    [note] = notes
    assert note.startswith("Note: checkpoint in ") and "no checksums.json" in note


def test_all_checkpoints_damaged_is_one_line_and_nothing_is_deleted(tmp_path):
    checkpoints = _saved(tmp_path, iterations=(1, 2))
    _damage(tmp_path, 1, "truncated")
    _damage(tmp_path, 2, "flipped")
    warnings = []
    with pytest.raises(CheckpointError) as caught:
        checkpoints.restore_newest_intact(_big_state(), expected_meta=_meta(_big_state()),
                                          warn=warnings.append)
    message = str(caught.value)
    assert not isinstance(caught.value, CorruptCheckpointError)
    assert "\n" not in message
    assert message.startswith(f"no intact checkpoint in {tmp_path / 'checkpoints'}: "
                              "iterations 1, 2 are damaged (iteration 2: ")
    assert str(tmp_path / "checkpoints" / "set-aside") in message
    assert len(warnings) == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "set-aside").iterdir()) == ["1", "2"]
    assert checkpoints.iterations() == []


def test_no_checkpoint_at_all_is_none(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with Checkpoints(tmp_path / "checkpoints", max_to_keep=2) as checkpoints:
        assert checkpoints.restore_newest_intact(_state(), expected_meta={},
                                                 warn=pytest.fail) is None


def test_another_runs_checkpoint_is_refused_not_set_aside(tmp_path):
    checkpoints = _saved(tmp_path, iterations=(1, 2))
    with pytest.raises(CheckpointError) as caught:
        checkpoints.restore_newest_intact(
            _big_state(), expected_meta=_meta(_big_state(), game="connect4"), warn=pytest.fail)
    assert not isinstance(caught.value, CorruptCheckpointError)
    assert "(iteration 2) was saved with game tictactoe (this run: connect4)" in str(caught.value)
    assert checkpoints.iterations() == [1, 2]
    assert not (tmp_path / "checkpoints" / "set-aside").exists()


def test_setting_aside_the_same_iteration_twice_keeps_both(tmp_path):
    checkpoints = _saved(tmp_path, iterations=(1, 2))
    for _ in range(2):
        _damage(tmp_path, 2, "flipped")
        assert checkpoints.restore_newest_intact(
            _big_state(), expected_meta=_meta(_big_state()), warn=lambda line: None)[0] == 1
        checkpoints.save(2, _big_state(2), _meta(_big_state(), iteration=2))
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "set-aside").iterdir()) == [
        "2", "2.2"]


def test_asynchronous_saves_are_sealed_by_wait_save_and_close(tmp_path):
    checkpoints = Checkpoints(tmp_path / "checkpoints", max_to_keep=3, asynchronous=True)
    checkpoints.save(1, _big_state(1), _meta(_big_state(), iteration=1))
    checkpoints.wait()
    assert (tmp_path / "checkpoints" / "1" / "checksums.json").is_file()
    checkpoints.save(2, _big_state(2), _meta(_big_state(), iteration=2))
    checkpoints.save(3, _big_state(3), _meta(_big_state(), iteration=3))  # waits for 2 first
    assert (tmp_path / "checkpoints" / "2" / "checksums.json").is_file()
    checkpoints.close()
    with Checkpoints(tmp_path / "checkpoints", max_to_keep=3) as reopened:
        assert [reopened.verify(iteration) for iteration in (1, 2, 3)] == [True, True, True]
        state, _ = reopened.restore(_big_state(), expected_meta=_meta(_big_state()))
    _assert_same(state, _big_state(3))
