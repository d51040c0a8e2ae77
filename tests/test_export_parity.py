"""The web page's network and agent equal Python's: onnxruntime-web under Node against JAX.

1. The model file: JAX `apply`, Python onnxruntime and onnxruntime-web (the vendored
   site/vendor/onnxruntime-web bundle the page loads) agree on real positions, and the file has
   the configured IR version and opset, which onnxruntime-web reads (it refuses newer ones).
2. The agent: site/js/search.js over site/js/games/, with onnxruntime-web evaluating the
   exported network, searches positions from random play like Python's agent
   (`search.agent_search`, which `agents.search_agent` plays): same moves, same visit counts,
   same improved policies and root values.

Networks are tiny and freshly initialised (test_export.py's): parity is about arithmetic, not
strength. The agent is also compared on the shipped models (site/models/), at their default
simulations: what people play in the browser. One Node process (site/tests/node_agent.mjs)
answers every question of the module.
"""

import functools
import json
import pathlib
import shutil
import subprocess

import jax
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import random_trajectory
from test_export import (
    PINNED,
    WEB_MAX_IR_VERSION,
    WEB_MAX_OPSET,
    exported,  # noqa: F401  (the module fixture: the tiny nets, exported)
    real_positions,
    small_net,
)

from cartridge_jax import games
from cartridge_jax.model import export, load, search

REPO = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = REPO / "site" / "models"
NODE_AGENT = REPO / "site" / "tests" / "node_agent.mjs"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH: install Node.js 20 "
                                "or newer to run the site's JS against Python")

BATCHES = (1, 7)
ATOL = 1e-4
SIMULATIONS = (16, 64)
POSITIONS = 10  # per game

# Both searches are deterministic and break exact ties by the lowest index, but Python's
# computes in float32 on JAX's network outputs and the JS search in float64 on
# onnxruntime-web's (within ~4e-7 of JAX's, see the first test). So a choice whose best score
# led the runner-up by less than float32's rounding of the scores (a few units at the root)
# can go either way. A search may differ from Python's only if it made such a close call (the
# JS search reports its closest, `closestMargin`), and most searches must be identical. (Not
# "most must make no close call": a search of 1024 simulations makes thousands of choices, and
# one of them near a tie, played the same way in both, is common and harmless.)
CLOSE_CALL = 1e-5
MAX_ESCAPED = 0.2  # the share of searches that may differ from Python's (by a close call)


def _positions(name: str) -> tuple[list[list[int]], tuple[np.ndarray, np.ndarray]]:
    """POSITIONS live positions from random games, each with 2+ legal moves and 2+ plies in:
    (their moves from the start, (ply indices, game indices) into `random_trajectory`)."""
    states, actions, _ = random_trajectory(name)
    live = ~states.terminated & (states.legal_action_mask.sum(-1) >= 2)  # [T + 1, B]
    live[:2] = False
    plies, batch = np.nonzero(live)
    picks = np.sort(np.random.default_rng(0).choice(len(plies), POSITIONS, replace=False))
    plies, batch = plies[picks], batch[picks]
    moves = [actions[:ply, game].tolist() for ply, game in zip(plies, batch)]
    return moves, (plies, batch)


def _shipped_simulations(name: str) -> int:
    """The shipped model's default simulations: the web bot's."""
    return export.read_manifest(SHIPPED / name)["agent"]["simulations"]


@functools.lru_cache(maxsize=None)
def _python_agent(name: str, simulations: int, shipped: bool = False):
    """Python's agent (with the tiny network, or the shipped model) on `_positions(name)`:
    (actions [P], visit counts [P, A], improved policies [P, A], root values [P])."""
    if shipped:
        model = load.load_model(SHIPPED / name)
        game, apply_fn, params = model.game, model.network.apply, model.params
    else:
        game, _, network, params = small_net(name)
        apply_fn = network.apply
    states, _, _ = random_trajectory(name)
    plies, batch = _positions(name)[1]
    roots = jax.tree.map(lambda leaf: leaf[plies, batch], states)
    agent = jax.jit(functools.partial(search.agent_search, game, apply_fn,
                                      simulations=simulations))
    result = jax.tree.map(np.asarray, agent(params, jax.random.key(0), roots))
    return result.action, result.visit_counts, result.policy_target, result.root_value


@pytest.fixture(scope="module")
def node_results(exported, tmp_path_factory):
    """(job, result) of one node_agent.mjs run over every game: evaluations of the BATCHES of
    real positions, and searches of `_positions` with each of SIMULATIONS, and with the
    shipped model at its default simulations."""
    job = {"models": {}, "evaluations": [], "searches": []}
    for name in games.names():
        game = games.make(name)
        job["models"][name] = str(exported[name][0] / export.MODEL_FILE)
        job["models"][f"shipped {name}"] = str(SHIPPED / name / export.MODEL_FILE)
        for batch in BATCHES:
            observations = real_positions(game, batch).reshape(batch, -1)
            job["evaluations"].append({"game": name, "observations": observations.tolist()})
        for simulations in SIMULATIONS:
            job["searches"].append({"game": name, "model": name, "moves": _positions(name)[0],
                                    "simulations": simulations})
        job["searches"].append({"game": name, "model": f"shipped {name}",
                                "moves": _positions(name)[0],
                                "simulations": _shipped_simulations(name)})
    job_file = tmp_path_factory.mktemp("node") / "job.json"
    job_file.write_text(json.dumps(job))
    done = subprocess.run([NODE, str(NODE_AGENT), str(job_file)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return job, json.loads(done.stdout)


def _indices(job, kind, name, model=None):
    return [i for i, entry in enumerate(job[kind])
            if entry["game"] == name and entry.get("model", name) == (model or name)]


@pytest.mark.parametrize("name", games.names())
def test_onnxruntime_web_equals_jax_and_onnxruntime(exported, node_results, name):
    job, result = node_results
    game, _, network, params = small_net(name)
    model_file = exported[name][0] / export.MODEL_FILE
    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    for index in _indices(job, "evaluations", name):
        observations = np.asarray(job["evaluations"][index]["observations"], np.float32)
        observations = observations.reshape(-1, *game.observation_shape)
        jax_logits, jax_value = map(np.asarray, network.apply(params, observations))
        ort_logits, ort_value = session.run(None, {export.INPUT_NAME: observations})
        web = result["evaluations"][index]
        web_logits, web_value = np.asarray(web["policy_logits"]), np.asarray(web["value"])
        assert web_logits.shape == jax_logits.shape and web_value.shape == jax_value.shape
        differences = {
            "web-jax": max(np.abs(web_logits - jax_logits).max(), np.abs(web_value - jax_value).max()),
            "web-ort": max(np.abs(web_logits - ort_logits).max(), np.abs(web_value - ort_value).max()),
            "ort-jax": max(np.abs(ort_logits - jax_logits).max(), np.abs(ort_value - jax_value).max()),
        }
        print(f"{name} batch {len(observations)}: max abs differences "
              + ", ".join(f"{pair} {value:.1e}" for pair, value in differences.items()))
        assert max(differences.values()) < ATOL, differences

    model = onnx.load(model_file)  # onnxruntime-web read it, so these versions work there
    opset = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}["ai.onnx"]
    assert model.ir_version == PINNED.onnx_ir_version <= WEB_MAX_IR_VERSION
    assert opset == PINNED.onnx_opset <= WEB_MAX_OPSET


@pytest.mark.slow
@pytest.mark.parametrize("shipped", [False, True], ids=["tiny", "shipped"])
@pytest.mark.parametrize("name", games.names())
def test_js_agent_plays_like_the_python_agent(node_results, name, shipped):
    job, result = node_results
    if shipped:
        model = load.load_model(SHIPPED / name)
        apply_fn, params = model.network.apply, model.params
    else:
        _, _, network, params = small_net(name)
        apply_fn = network.apply
    moves, (plies, batch) = _positions(name)
    observations = random_trajectory(name)[2][plies, batch]
    net_values = np.asarray(apply_fn(params, observations)[1])
    indices = _indices(job, "searches", name, f"shipped {name}" if shipped else name)
    assert len(indices) == (1 if shipped else len(SIMULATIONS))
    for index in indices:
        simulations = job["searches"][index]["simulations"]
        actions, visits, policies, root_values = _python_agent(name, simulations, shipped)
        identical = same_move = close_calls = 0
        for position, js in enumerate(result["searches"][index]):
            where = f"{name}, {simulations} simulations, moves {moves[position]}"
            assert abs(js["net_value"] - net_values[position]) < ATOL, where
            assert sum(js["visits"]) == simulations == visits[position].sum(), where
            same = (js["visits"] == visits[position].tolist() and js["action"] == actions[position]
                    and abs(js["root_value"] - root_values[position]) < ATOL
                    and np.abs(np.asarray(js["policy"]) - policies[position]).max() < ATOL)
            close_call = js["closest_margin"] is not None and js["closest_margin"] < CLOSE_CALL
            assert same or close_call, f"{where}: JS {js}, Python visits {visits[position]}"
            identical += same
            same_move += js["action"] == actions[position]
            close_calls += close_call
        print(f"{name}{' (shipped)' if shipped else ''}, {simulations} simulations: identical "
              f"searches {identical}/{POSITIONS}, same move {same_move}/{POSITIONS}, close "
              f"calls {close_calls}/{POSITIONS}")
        assert identical >= (1 - MAX_ESCAPED) * POSITIONS, (
            f"{name}, {simulations} simulations: {POSITIONS - identical} searches differ "
            "(each by a close call)")
