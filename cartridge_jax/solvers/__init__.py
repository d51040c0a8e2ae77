"""Exact solvers that label the held-out validation sets (`cartridge_jax/valdata`).

They need numba (`pip install -e ".[solver]"`), are never imported by the package's training or
agents, and no agent uses them: they are the truth a network is measured against.

    connect4.Solver().move_scores("4453")         # {column: exact score}
    othello.move_scores("<64 squares> X")          # {square: exact final disc difference}
    validation.connect4_set("end", 1000, seed=0)   # Pons-format lines
"""
