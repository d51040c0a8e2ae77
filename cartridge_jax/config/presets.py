"""Named presets: partial overrides that sit under the file, environment and flags.

Reference position sets are named as strings relative to `cartridge_jax/refdata` (a test checks
that each exists): the configuration stays pure data.
"""

from __future__ import annotations

from typing import Any

# The reference position sets shipped in cartridge_jax/refdata (see its README).
CONNECT4_BENCHMARKS = [f"connect4/Test_{name}.jsonl"
                       for name in ("L3_R1", "L2_R1", "L1_R1", "L1_R3")]
OTHELLO_BENCHMARKS = ["othello/fforum-1-19.obf", "othello/fforum-20-39.obf"]
# The site's bot with the CPU presets' MLPs searches more than training evaluates (docs/
# strength.md, "The bot's simulations"); under Node's onnxruntime-web on a 2-core CPU a move took
# at most 48 ms (Connect 4, 512) and 284 ms (Othello, 1024), inside the 1 s budget. On the
# shipped networks: Connect 4's Pons mistake rates went from 1.6 / 1.6 / 0.6 / 8.0% at 128 to
# 0.9 / 0.5 / 0.7 / 8.1% at 512, below minimax depth 5 on every set, and 1024 or 2048 gained
# nothing more; Othello won 84 / 94 / 97 of 100 games against greedy at 128 / 512 / 1024 and
# 100 of 100 against alphabeta:3 at 1024. Evaluation during training stays at 128, a quarter or
# an eighth of the cost. The GPU presets' ResNets are far slower in a browser: they keep their
# evaluation's count.
CONNECT4_BOT_SIMULATIONS = 512
OTHELLO_BOT_SIMULATIONS = 1024

# Presets: partial overrides, {section: {key: value}}. Each names its game so that
# `--common.preset connect4-gpu` alone is a complete recipe. Positions per iteration are
# games x moves_per_iteration (x8 or x2 with augmentation), which sizes replay_capacity.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Measured: up to 6 random opening plies make self-play visit the positions that follow
    # early blunders (with 2, the agent missed wins there). Trained with seeds 0, 1 and 2, the
    # agent at 128 simulations is perfect in all 4,520 positions and the raw network in 99.6-
    # 99.8%, while an untrained net is not; one evaluation at the end proves it (with a warm
    # compile cache on a 2-core CPU the run takes 18 s, against 27.5 s evaluating at 200
    # simulations every 10 iterations). At 64 the agent missed one position with seeds 0 and 2:
    # the agent visits every reply to a root move once (model/search.py) before going deeper.
    "tictactoe-cpu": {
        "common": {"game": "tictactoe"},
        "model": {"kind": "mlp", "mlp_hidden": [128, 128, 64], "value_hidden": 32},
        "mcts": {"simulations": 32, "temperature_drop_move": 5, "max_considered_actions": 9},
        "selfplay": {"games": 128, "moves_per_iteration": 32, "random_opening_moves": 6},
        "training": {"iterations": 20, "steps_per_iteration": 200, "batch_size": 256,
                     "replay_capacity": 100_000},
        "evaluation": {"simulations": 128, "interval": 20, "benchmarks": ["exhaustive"]},
    },
    "tictactoe-gpu": {
        "common": {"game": "tictactoe"},
        "model": {"kind": "mlp", "mlp_hidden": [256, 256, 128], "value_hidden": 64},
        "mcts": {"simulations": 32, "temperature_drop_move": 5, "max_considered_actions": 9},
        "selfplay": {"games": 1024, "moves_per_iteration": 32, "random_opening_moves": 6},
        "training": {"iterations": 20, "batch_size": 1024, "replay_capacity": 300_000},
        "evaluation": {"simulations": 200, "interval": 5, "benchmarks": ["exhaustive"]},
    },
    # CPU presets use an MLP: measured on a 2-core CPU, Connect 4 self-play ran ~5,700
    # positions/s with a 256-256-128 MLP against ~800 with a 2x32 ResNet, whose gradient steps
    # inside lax.scan were ~250x slower still. The GPU presets use the real ResNet, computing in
    # bfloat16: on an H100 Connect 4 self-play ran 1.52x faster than in float32 (TF32), and
    # bfloat16 training and play scored as float32 did (docs/performance.md).
    # Fresh data over reuse (docs/strength.md): 512 games x 64 moves per iteration, each
    # position sampled about once (64 steps x 512, as first measured) from a replay of the last
    # 4 iterations (x2 with the mirror image), openings of 0-8 random plies. In 15-minute pilots on a 2-core
    # CPU this more than halved the begin-set mistake rates of 256 games x 42 moves with 200
    # steps x 256 from 200k positions (L1_R1 5.2% -> 2.0%, L1_R3 17.7% -> 11.7% at 64
    # simulations). Then 128 steps instead of 64 (each stored position drawn about once, not
    # half a time): better or equal on all nine held-out validation measures of a 15-minute
    # pilot pair (end-set mistakes at 128 simulations 1.8% -> 1.2%, the raw network's 47.9% ->
    # 41.8%). 1000 iterations is about an hour on the 2-core CPU that measured it (3.7 s an
    # iteration); under a time budget the learning rate's decay follows the clock when it is
    # further along, so a slower CPU still ends its budget fully decayed.
    "connect4-cpu": {
        "common": {"game": "connect4"},
        "model": {"kind": "mlp", "mlp_hidden": [256, 256, 128], "value_hidden": 64},
        "mcts": {"simulations": 32, "temperature_drop_move": 15, "max_considered_actions": 7},
        "selfplay": {"games": 512, "moves_per_iteration": 64, "random_opening_moves": 8},
        "training": {"iterations": 1000, "steps_per_iteration": 128, "batch_size": 512,
                     "replay_capacity": 262_144},
        "evaluation": {"simulations": 128, "interval": 25, "benchmarks": CONNECT4_BENCHMARKS},
        "export": {"simulations": CONNECT4_BOT_SIMULATIONS},
    },
    "connect4-gpu": {
        "common": {"game": "connect4"},
        "model": {"kind": "resnet", "resnet_blocks": 8, "resnet_channels": 128,
                  "value_hidden": 256, "dtype": "bfloat16"},
        "mcts": {"simulations": 64, "temperature_drop_move": 15, "max_considered_actions": 7},
        "selfplay": {"games": 4096, "moves_per_iteration": 42},
        "training": {
            "iterations": 100,
            "steps_per_iteration": 400,
            "batch_size": 1024,
            "learning_rate": 2e-3,
            "replay_capacity": 2_000_000,
        },
        "evaluation": {"games": 100, "simulations": 200, "benchmarks": CONNECT4_BENCHMARKS},
    },
    # Connect 4's recipe (docs/strength.md): 512 games x 64 moves, the last 4 iterations of
    # positions (x8 symmetries), 0-8 random opening plies. 512 steps x 512 an iteration (each
    # stored position drawn about once, as in Connect 4; training is ~4 ms a step against ~10 s
    # of self-play an iteration): against 128 steps in a 15-minute pilot pair on a 2-core CPU,
    # better on all six held-out validation measures (Val_endgame mistakes of the raw network
    # / 64 / 128 simulations 29.8 / 18.4 / 17.2% -> 23.9 / 16.0 / 13.4%). 330 iterations is
    # about an hour on that CPU (~12 s an iteration).
    "othello-cpu": {
        "common": {"game": "othello"},
        "model": {"kind": "mlp", "mlp_hidden": [256, 256, 128], "value_hidden": 64},
        "mcts": {"simulations": 32, "temperature_drop_move": 30, "max_considered_actions": 16},
        "selfplay": {"games": 512, "moves_per_iteration": 64, "random_opening_moves": 8},
        "training": {"iterations": 330, "steps_per_iteration": 512, "batch_size": 512,
                     "replay_capacity": 1_048_576},
        # An evaluation (FForum sets, random, greedy, the best model) took 14 s in the iteration
        # benchmark, an iteration ~17 s: every 10 iterations costs under a tenth of the time.
        "evaluation": {"simulations": 128, "interval": 10, "benchmarks": OTHELLO_BENCHMARKS},
        "export": {"simulations": OTHELLO_BOT_SIMULATIONS},
    },
    "othello-gpu": {
        "common": {"game": "othello"},
        "model": {"kind": "resnet", "resnet_blocks": 10, "resnet_channels": 128,
                  "value_hidden": 256, "dtype": "bfloat16"},
        "mcts": {"simulations": 64, "temperature_drop_move": 30, "max_considered_actions": 16},
        "selfplay": {"games": 2048, "moves_per_iteration": 64},
        "training": {
            "iterations": 200,
            "steps_per_iteration": 400,
            "batch_size": 1024,
            "learning_rate": 2e-3,
            "replay_capacity": 2_000_000,
        },
        "evaluation": {"games": 100, "simulations": 200, "benchmarks": OTHELLO_BENCHMARKS},
    },
}



def unknown_preset_problem() -> str:
    return f'unknown preset; available presets: "auto", "none", {", ".join(PRESETS)}'
