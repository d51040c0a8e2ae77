#!/usr/bin/env bash
# The GPU figures of docs/performance.md in one short run (about 4 minutes on an H100), most
# important first; each step has its own time limit, so a slow one cannot starve the rest.
#   bash scripts/gpu_bench.sh [OUT_DIR]        (default: bench_results/gpu)
# Needs the package and the bench extra installed (pip install -e ".[bench]"), or importable
# through PYTHONPATH.
set -u
out=${1:-bench_results/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/jax_cache}
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv 2>/dev/null
python3 -c "import jax, flax, mctx, pgx; print(jax.devices(), jax.__version__, flax.__version__)"

step() {  # step SECONDS NAME ARGS...: one bench run, its log beside its JSON
  local seconds=$1 name=$2
  shift 2
  echo "=== $name"
  timeout "$seconds" python3 scripts/bench.py "$@" --out "$out/$name.json" >"$out/$name.log" 2>&1
  echo "exit $? after $SECONDS s in all"
  grep -E "positions/s|steps/s" "$out/$name.log" | grep -v "^|" | tail -12
}

# Connect 4 self-play with the GPU preset against the pgx reference, and its FLOP fraction.
step 150 c4_gpu --suite selfplay --games connect4 --nets gpu --sims 64 --selfplay-moves 8 \
  --repeats 2
# The same in float32 (ours only; the preset computes in bfloat16): what bfloat16 buys.
step 90 c4_gpu_f32 --suite selfplay --games connect4 --nets gpu --sims 64 --selfplay-moves 8 \
  --repeats 2 --dtype float32 --no-pgx
# TicTacToe's and Othello's GPU presets against the pgx reference.
step 150 selfplay_gpu --suite selfplay --games tictactoe,othello --nets gpu --sims 64 \
  --selfplay-moves 8 --repeats 2
# Connect 4 at 4x the preset's batch: how much the GPU had left.
step 90 c4_gpu_16k --suite selfplay --games connect4 --nets gpu --sims 64 --selfplay-moves 4 \
  --selfplay-games 16384 --repeats 2 --no-pgx
# The learner at each GPU preset.
step 90 learner --suite learner --nets gpu --learner-steps 50 --repeats 2
# Random play at GPU batch sizes, next to pgx.
step 120 games --suite games --batch-sizes 1024,8192,65536 --repeats 2
