"""End to end: `python scripts/train.py` with no arguments trains TicTacToe to perfect play.

Checked against the exhaustive minimax solver in cartridge_jax/tictactoe_solver.py (independent
of the package's rules): at the default strength the agent picks a minimax-optimal move in every
one of the 4520 reachable live positions and never loses to a perfect player; the raw network
alone is optimal in at least 99% of them; and an untrained net at the default strength is not
perfect, so the search alone cannot pass.
"""

import io

import jax
import numpy as np
import pytest

from cartridge_jax import config
from cartridge_jax.evaluation import arena
from cartridge_jax.model import load, nets, search
from cartridge_jax.opponents import perfect as solver
from cartridge_jax.training import loop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ttt")
    # The default configuration, exactly as `python scripts/train.py` gets it on a CPU host.
    cfg, _ = config.load_config(env={}, flags={"common.run_dir": str(run_dir)})
    assert cfg.common.game == "tictactoe"
    loop.run(cfg, out=io.StringIO(), progress=False)
    model = load.load_model(run_dir, cfg)
    assert model.iteration == cfg.training.iterations
    return cfg, model, model.params


def agent_moves(cfg, model, params, boards, simulations):
    game = model.game
    states = solver.states_of(game, boards)
    act = jax.jit(lambda p, s: search.agent_search(
        game, model.network.apply, p, jax.random.key(0), s, simulations=simulations).action)
    return np.asarray(act(params, states))


def optimal_rate(moves, boards):
    return float(np.mean([move in solver.optimal_moves(b) for move, b in zip(moves, boards)]))


def test_agent_at_default_strength_is_perfect(trained):
    cfg, model, params = trained
    boards = solver.live_positions()
    assert len(boards) == 4520
    moves = agent_moves(cfg, model, params, boards, cfg.evaluation.simulations)
    mistakes = [(b, m) for b, m in zip(boards, moves) if m not in solver.optimal_moves(b)]
    assert mistakes == []


def test_raw_network_is_optimal_in_99_percent(trained):
    cfg, model, params = trained
    boards = solver.live_positions()
    assert optimal_rate(agent_moves(cfg, model, params, boards, 0), boards) >= 0.99


def test_never_loses_to_the_perfect_player(trained):
    cfg, model, params = trained
    game = model.game

    def agent(key, states):
        return search.agent_search(game, model.network.apply, params, key, states,
                                   simulations=cfg.evaluation.simulations).action

    perfect = solver.perfect_agent(solver.optimal_move_table())
    counts = jax.jit(lambda key: arena.play(game, agent, perfect, 128, key))(jax.random.key(1))
    result = arena.result(counts)
    assert result.losses == 0 and result.games == 128  # half as first player, half as second


def test_untrained_net_at_default_strength_is_not_perfect(trained):
    cfg, model, _ = trained
    untrained = nets.init_params(model.network, model.game, jax.random.key(cfg.common.seed))
    boards = solver.live_positions()
    rate = optimal_rate(agent_moves(cfg, model, untrained, boards, cfg.evaluation.simulations), boards)
    assert rate < 0.99
