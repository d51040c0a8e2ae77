"""Playing strength: agents, matches, benchmark position sets with external truth, the training
run's evaluator, one-off measures (`eval`), and Elo ratings (`ladder`).

    agent = agents.search_agent(game, network.apply, params, simulations=64)
    arena.match_summary(game, agent, "alphabeta:3", 100, key)        # wins, ..., score
    position_sets.load_benchmark(game, "connect4/Test_L2_R1.jsonl").measure(agent, key)
"""

from cartridge_jax.evaluation import agents, arena, elo, evaluator, ladder, measure, position_sets
from cartridge_jax.evaluation.agents import Agent, search_agent
from cartridge_jax.evaluation.evaluator import Evaluator

__all__ = ["Agent", "Evaluator", "agents", "arena", "elo", "evaluator", "ladder", "measure",
           "position_sets", "search_agent"]
