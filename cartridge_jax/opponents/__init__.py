"""Opponents without a network: the agents behind the names of `config.opponent_names`.

    agent = opponents.builtin_agent(game, "alphabeta:3")  # (key, states [B]) -> int32[B]

Modules: `baselines` (random, greedy), `minimax` (depth-limited alpha-beta), `rollout` (MCTS
with random playouts), `perfect` (an exhaustive TicTacToe solver written apart from the rules),
`registry` (names to agents). A model path is loaded by `evaluation.agents.opponent_agent`.
"""

from cartridge_jax.opponents.registry import builtin_agent, optimal_move_table

__all__ = ["builtin_agent", "optimal_move_table"]
