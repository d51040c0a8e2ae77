"""Playing strength against external truth: benchmark positions, perfect play and arena matches.

    agent = search_agent(game, network.apply, params, simulations=64, c_puct=1.25)
    connect4_benchmark(agent, "refdata/connect4/Test_L1_R1.jsonl", key=key)  # mistake_rate, ...
    othello_benchmark(agent, "refdata/othello/fforum-1-19.obf", key=key)     # best_move_rate, ...
    tictactoe_exhaustive(agent, key=key)                                     # optimal_rate, n
    load_benchmark(game, "connect4/Test_L2_R1.jsonl", limit=200).measure(agent, key)  # reusable
    arena_match(game, agent, "alphabeta:3", 100, key)                        # wins, ..., score
    evaluate(config, model_dir_or_run_dir="runs/connect4", sims=64, positions=...)  # all in one

Opponents are named as in opponents.py; `opponent_agent` also loads a model path.

An agent is batched: `(key, states [B]) -> int32[B]` moves. The measures call it in chunks of a
fixed number of positions, so it compiles once per measure. An agent that is a
`jax.tree_util.Partial` (as `search_agent` returns) passes its parameters as arguments, not as
constants baked into the compiled program; a new agent with the same network and settings then
reuses the compilation (the training loop evaluates new parameters every few iterations).

Given a `mesh` of several devices (the training loop passes its process's devices), matches and
position sets are split over them: each device plays its share of the games, or of each chunk
of positions, with its own random stream.

Errors for people (an unreadable or malformed file, a benchmark of another game, an unknown
opponent) are ValueErrors with one-line messages.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from importlib import resources
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from jax.sharding import Mesh, PartitionSpec
from jax.tree_util import Partial

from cartridge_jax.evaluation import arena
from cartridge_jax import opponents
from cartridge_jax.model import search
from cartridge_jax import config as config_lib
from cartridge_jax.config import opponent_names
from cartridge_jax import games as games_lib
from cartridge_jax.opponents import perfect
from cartridge_jax.parallel import DATA_AXIS
from cartridge_jax.run import layout
from cartridge_jax.games.base import Game, State, where_batched

Agent = Callable[[jax.Array, State], jax.Array]  # (key, states [B]) -> actions int32[B]

# Positions per compiled agent call: bounds memory (a search tree per position), not results.
BATCH_SIZE = 256

REFDATA = resources.files("cartridge_jax") / "refdata"


# --- agents -------------------------------------------------------------------------------------


def search_agent(game: Game, apply_fn: search.ApplyFn, params, simulations: int,
                 c_puct: float) -> Agent:
    """THE agent (`search.agent_search`) with these parameters; `simulations=0` plays the raw
    network's most likely legal move."""
    if simulations < 0:
        raise ValueError(f"simulations = {simulations}: use 0 (raw network) or more")
    return Partial(_search_policy(game, apply_fn, simulations, c_puct), params)


@functools.lru_cache(maxsize=16)
def _search_policy(game, apply_fn, simulations, c_puct):
    # Cached: one function object per setting, so jit reuses its compilation for new params.
    def policy(params, key, states):
        return search.agent_search(
            game, apply_fn, params, key, states, simulations=simulations, c_puct=c_puct
        ).action

    return policy


def opponent_agent(game: Game, name: str, *, simulations: int, c_puct: float) -> Agent:
    """The agent of opponent `name` (opponents.py); a model path is played by the agent's search
    at `simulations`, like the evaluated model."""
    opponent = opponent_names.parse(name)
    if opponent.kind != "model":
        return opponents.builtin_agent(game, name)
    return load_agent(game, opponent.path, simulations=simulations, c_puct=c_puct)[0]


def load_agent(game: Game, path, *, simulations: int, c_puct: float) -> tuple[Agent, int]:
    """(agent, iteration) of the model at `path` (a run directory, an exported model folder or
    a snapshot file), which must play `game`; a run's network comes from its stats.json."""
    path = epath.Path(path)
    run = path.parent.parent if path.suffix == ".msgpack" else path
    try:
        if (path / "manifest.json").is_file() or not (run / "stats.json").is_file():
            config = config_lib.load_config(flags={"common.game": game.name})[0]
        else:
            config = layout.recorded_config(run)
    except config_lib.ConfigError as error:
        raise ValueError(str(error)) from None
    if config.common.game != game.name:
        raise ValueError(f"model {path} plays {config.common.game}, not {game.name}")
    model_game, apply_fn, params, iteration = load_model(config, path)
    return search_agent(model_game, apply_fn, params, simulations, c_puct), iteration


def _as_partial(agent: Agent) -> Partial:
    return agent if isinstance(agent, Partial) else Partial(agent)


def _split_over(mesh: Mesh | None) -> Mesh | None:
    """`mesh` if it has several devices to split work over, else None: one device runs the
    plain program (one compilation for every single-device call, the same results as ever)."""
    return mesh if mesh is not None and mesh.size > 1 else None


def _on_each_device(function: Callable, mesh: Mesh, in_specs: tuple, out_specs) -> Callable:
    """`function(key, *args)` run on every device of `mesh` with its own key (the given one
    folded with the device's index), arguments and results split per the specs."""

    def local(key, *args):
        return function(jax.random.fold_in(key, jax.lax.axis_index(DATA_AXIS)), *args)

    return jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(), *in_specs),
                         out_specs=out_specs, check_vma=False)


@functools.partial(jax.jit, static_argnums=(3,))
def _act(agent: Partial, key: jax.Array, states: State, mesh: Mesh | None = None) -> jax.Array:
    """`agent`'s moves for `states`; split over `mesh` (from `_split_over`) unless it is None."""
    if mesh is None:
        return agent(key, states)

    def local(key, agent, states):  # this device's positions
        return agent(key, states)

    split = PartitionSpec(DATA_AXIS)  # positions [B] split over the devices
    return _on_each_device(local, mesh, (PartitionSpec(), split), split)(key, agent, states)


def _actions_in_chunks(agent: Agent, states: State, key: jax.Array, batch_size: int,
                       mesh: Mesh | None = None) -> np.ndarray:
    """int32[N] moves of `agent` for `states` [N], in chunks of `batch_size` (the last padded;
    rounded up to a multiple of the mesh's devices)."""
    agent, mesh = _as_partial(agent), _split_over(mesh)
    if mesh is not None:
        batch_size = -(-batch_size // mesh.size) * mesh.size
    count = int(states.current_player.shape[0])
    actions = []
    for index, start in enumerate(range(0, count, batch_size)):
        chunk = _padded_rows(states, start, batch_size)
        actions.append(np.asarray(_act(agent, jax.random.fold_in(key, index), chunk, mesh)))
    return np.concatenate(actions)[:count] if actions else np.zeros(0, np.int32)


def _padded_rows(tree: Any, start: int, size: int) -> Any:
    """Rows start..start+size of every leaf, padded by repeating row `start` (so valid)."""

    def rows(leaf):
        leaf = np.asarray(leaf)
        chunk = leaf[start:start + size]
        padding = np.repeat(chunk[:1], size - len(chunk), axis=0)
        return np.concatenate([chunk, padding])

    return jax.tree.map(rows, tree)


# --- positions from move strings ----------------------------------------------------------------


def digit_moves_array(game: Game, move_strings: Sequence[str]) -> np.ndarray:
    """int32[N, rows * cols]: 0-based actions from 1-based digit strings, -1 past each end.

    For games whose moves are digits (TicTacToe cells, Connect 4 columns); every move fills a
    cell, so rows * cols plies is the longest game and one padded width serves every file.
    """
    width = game.rows * game.cols
    digits = "123456789"[: game.num_actions]
    moves = np.full((len(move_strings), width), -1, np.int32)
    for row, text in enumerate(move_strings):
        if bad := sorted(set(text) - set(digits)):
            raise ValueError(f"move string {row + 1} ({text[:60]!r}) has characters {bad}: "
                             f"{game.display_name} moves are digits 1-{game.num_actions}")
        if len(text) > width:
            raise ValueError(f"move string {row + 1} has {len(text)} moves, more than the "
                             f"{width} cells of {game.display_name}")
        moves[row, : len(text)] = [int(c) - 1 for c in text]
    return moves


@functools.partial(jax.jit, static_argnums=0)
def replay_moves(game: Game, moves: jax.Array) -> tuple[State, jax.Array]:
    """(states [N], ok bool[N]): the positions after `moves` int32[N, T] (-1 = no more moves),
    replayed together from the start. `ok` is False where a move was illegal or came after the
    game had ended (the state is then meaningless)."""
    start = jax.vmap(game.init)(jax.random.split(jax.random.key(0), moves.shape[0]))

    def ply(carry, action):  # action int32[N]
        states, ok = carry
        active = action >= 0
        legal = states.legal_action_mask[jnp.arange(action.shape[0]), jnp.maximum(action, 0)]
        ok = ok & (~active | (legal & ~states.terminated))
        stepped = jax.vmap(game.step)(states, jnp.maximum(action, 0))
        return (where_batched(active, stepped, states), ok), None

    (states, ok), _ = jax.lax.scan(ply, (start, jnp.ones(moves.shape[0], bool)), moves.T)
    return states, ok


# --- Connect 4: Pons' benchmark sets ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PositionSet:
    """Benchmark positions loaded once, to measure any number of agents on."""

    name: str  # e.g. "connect4/Test_L2_R1", "tictactoe/exhaustive"
    states: State  # [N] numpy leaves
    score: Callable[[np.ndarray], dict]  # the agent's moves int32[N] -> its measures, with "n"

    def measure(self, agent: Agent, key: jax.Array, batch_size: int = BATCH_SIZE,
                mesh: Mesh | None = None) -> dict:
        return self.score(_actions_in_chunks(agent, self.states, key, batch_size, mesh))


def connect4_benchmark(agent: Agent, positions_file, *, key: jax.Array,
                       batch_size: int = BATCH_SIZE) -> dict:
    """Mistake and score-optimal rates of `agent` on a Pons `.jsonl` set (refdata/README.md).

    A move is a mistake when sign(move_scores[chosen]) < max over legal c of
    sign(move_scores[c]) (it throws away a win or a draw); it is optimal when it reaches the
    maximum score. A move with no listed score (illegal) counts as a mistake.
    Returns {"mistake_rate", "optimal_rate", "n"}.
    """
    return connect4_positions(positions_file).measure(agent, key, batch_size)


def connect4_positions(positions_file, *, limit: int = 0) -> PositionSet:
    """The first `limit` positions (0: all) of a Pons `.jsonl` set; see connect4_benchmark."""
    game = games_lib.make("connect4")
    lines = _read_pons(positions_file)[: limit or None]
    try:
        moves = digit_moves_array(game, [line["moves"] for line in lines])
    except ValueError as error:
        raise ValueError(f"{positions_file}: {error}") from None
    scores = np.full((len(lines), game.num_actions), np.nan)  # [N, 7], NaN = no listed score
    for row, line in enumerate(lines):
        for column, score in line["move_scores"].items():
            scores[row, game.action_from_text(column)] = score

    states = _replayed_states(game, moves, positions_file, BATCH_SIZE)
    if (wrong := np.isnan(scores) == states.legal_action_mask).any():
        number = int(np.argmax(wrong.any(axis=1))) + 1
        raise ValueError(f"{positions_file} line {number}: move_scores must list exactly the "
                         "legal columns")
    best_sign = np.nanmax(np.sign(scores), axis=1)  # [N]
    best_score = np.nanmax(scores, axis=1)

    def score(actions):
        chosen = scores[np.arange(len(lines)), actions]
        mistake = np.isnan(chosen) | (np.sign(chosen) < best_sign)
        return {"mistake_rate": float(mistake.mean()),
                "optimal_rate": float((chosen == best_score).mean()), "n": len(lines)}

    return PositionSet(_set_name(game, positions_file), states, score)


def _read_pons(positions_file) -> list[dict]:
    lines = []
    for number, text in enumerate(_read_lines(positions_file), start=1):
        try:
            line = json.loads(text)
            ok = (isinstance(line["moves"], str) and isinstance(line["move_scores"], dict)
                  and line["move_scores"]
                  and all(c in "1234567" and len(c) == 1 and isinstance(s, int)
                          for c, s in line["move_scores"].items()))
        except (json.JSONDecodeError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ValueError(f"{positions_file} line {number} is not a Connect 4 benchmark line: "
                             'expected {"moves": "4453", "move_scores": {"1": -2, ...}}')
        lines.append(line)
    return lines


def _replayed_states(game: Game, moves: np.ndarray, positions_file, batch_size: int) -> State:
    """The positions of `moves` [N, T], replayed in chunks; a ValueError names an illegal line."""
    chunks, all_ok = [], []
    for start in range(0, len(moves), batch_size):
        states, ok = replay_moves(game, jnp.asarray(_padded_rows(moves, start, batch_size)))
        chunks.append(jax.tree.map(np.asarray, states))
        all_ok.append(np.asarray(ok))
    ok = np.concatenate(all_ok)[: len(moves)]
    states = jax.tree.map(lambda *leaves: np.concatenate(leaves)[: len(moves)], *chunks)
    ended = states.terminated | ~ok
    if ended.any():
        number = int(np.argmax(ended)) + 1
        raise ValueError(f"{positions_file} line {number}: its moves are illegal or end the game")
    return states


# --- Othello: FForum endgame positions ----------------------------------------------------------


def othello_benchmark(agent: Agent, obf_file, *, key: jax.Array,
                      batch_size: int = BATCH_SIZE) -> dict:
    """Best-move rate and disc loss of `agent` on an Edax `.obf` file of scored positions.

    Returns {"best_move_rate": share of positions where the chosen move is listed with the best
    score, "mean_disc_loss": mean of (best listed score - chosen move's listed score) in discs
    over the positions whose chosen move is listed (None if there are none),
    "unknown_move_rate": share whose chosen move is not listed, "n"}.
    """
    return othello_positions(obf_file).measure(agent, key, batch_size)


def othello_positions(obf_file, *, limit: int = 0) -> PositionSet:
    """The first `limit` positions (0: all) of an Edax `.obf` file; see othello_benchmark."""
    game = games_lib.make("othello")
    states, listed = _read_obf(game, obf_file, limit)
    best = [max(scores.values()) for scores in listed]

    def score(actions):
        chosen = [scores.get(int(action)) for action, scores in zip(actions, listed)]
        losses = [b - c for b, c in zip(best, chosen) if c is not None]
        return {
            "best_move_rate": float(np.mean([c == b for b, c in zip(best, chosen)])),
            "mean_disc_loss": float(np.mean(losses)) if losses else None,
            "unknown_move_rate": float(np.mean([c is None for c in chosen])),
            "n": len(listed),
        }

    return PositionSet(_set_name(game, obf_file), states, score)


def _read_obf(game: Game, obf_file, limit: int) -> tuple[State, list[dict[int, int]]]:
    """(states [N], per position {action: listed final disc difference, side to move's view})
    of the first `limit` lines (0: all)."""
    states, listed = [], []
    for number, text in enumerate(_read_lines(obf_file)[: limit or None], start=1):
        where = f"{obf_file} line {number}"
        position, *pairs = [field.strip() for field in text.split(";")]
        try:
            state = game.from_text(position)
            scores = {}
            for pair in filter(None, pairs):
                move, score = pair.split(":")
                scores[game.action_from_text(move)] = int(score)
        except ValueError as error:
            raise ValueError(f"{where} is not an Othello position with scored moves "
                             f"('... X; G8:+18; H1:+12;'): {error}") from None
        if not scores:
            raise ValueError(f"{where} lists no scored moves: expected '... X; G8:+18; ...'")
        if illegal := [game.action_to_text(a) for a in scores if not state.legal_action_mask[a]]:
            raise ValueError(f"{where} lists illegal moves {illegal}")
        states.append(state)
        listed.append(scores)
    return jax.tree.map(lambda *leaves: np.stack(leaves), *states), listed


def _read_lines(path) -> list[str]:
    try:
        text = pathlib.Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read positions file {path}: {error}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"positions file {path} holds no positions")
    return lines


# --- TicTacToe: every position against the exhaustive solver ------------------------------------


def tictactoe_exhaustive(agent: Agent, *, key: jax.Array, batch_size: int = BATCH_SIZE) -> dict:
    """{"optimal_rate", "n"}: the share of the 4520 reachable live TicTacToe positions where
    `agent` picks a minimax-optimal move (the solver is independent of the package's rules)."""
    return tictactoe_positions().measure(agent, key, batch_size)


@functools.lru_cache(maxsize=1)
def tictactoe_positions() -> PositionSet:
    """Every reachable live TicTacToe position; see tictactoe_exhaustive."""
    boards = perfect.live_positions()
    states = jax.tree.map(np.asarray, perfect.states_of(games_lib.make("tictactoe"), boards))
    indices = np.asarray(boards) @ (3 ** np.arange(9))  # [N]: the table's base-3 board numbers

    def score(actions):
        in_range = (actions >= 0) & (actions < 9)  # anything else is an illegal move
        optimal = opponents.optimal_move_table()[indices, np.clip(actions, 0, 8)] & in_range
        return {"optimal_rate": float(optimal.mean()), "n": len(boards)}

    return PositionSet("tictactoe/exhaustive", states, score)


# --- benchmarks by name -------------------------------------------------------------------------


BENCHMARK_GAMES = {".jsonl": "connect4", ".obf": "othello"}  # file suffix -> its game


def load_benchmark(game: Game, name, *, limit: int = 0) -> PositionSet:
    """The position set `name` for `game`: "exhaustive" (TicTacToe), or a benchmark file, a
    path or one shipped in cartridge_jax/refdata (e.g. "connect4/Test_L2_R1.jsonl"); files cut
    to their first `limit` positions (0: all)."""
    if name == "exhaustive":
        if game.name != "tictactoe":
            raise ValueError(f"exhaustive evaluation is for TicTacToe only, not "
                             f"{game.display_name}: use a positions file or an opponent")
        return tictactoe_positions()
    path = pathlib.Path(name)
    if not path.exists() and (REFDATA / str(name)).is_file():
        path = pathlib.Path(str(REFDATA / str(name)))
    if path.suffix not in BENCHMARK_GAMES:
        raise ValueError(f"positions file {name}: use a Connect 4 .jsonl (Pons) or an "
                         "Othello .obf (FForum) benchmark file")
    file_game = games_lib.make(BENCHMARK_GAMES[path.suffix])
    if file_game is not game:
        raise ValueError(f"positions file {name} holds {file_game.display_name} "
                         f"positions, but the model plays {game.display_name}")
    if game.name == "connect4":
        return connect4_positions(path, limit=limit)
    return othello_positions(path, limit=limit)


def _set_name(game: Game, path) -> str:
    """"connect4/Test_L2_R1" for a file of that name."""
    return f"{game.name}/{pathlib.Path(path).stem}"


# --- arena --------------------------------------------------------------------------------------


def arena_match(game: Game, agent: Agent, opponent: str | Agent, games: int,
                key: jax.Array) -> dict:
    """`games` games of `agent` against `opponent` (an agent, or a name of opponents.py that is
    not a model path), half with each colour.

    Returns {wins, draws, losses, score (a win 1, a draw 1/2, per game), score_low, score_high
    (95% Wilson interval), games}, from the agent's view.
    """
    if games < 2 or games % 2:
        raise ValueError(f"games = {games}: use an even number of 2 or more (half each colour)")
    if isinstance(opponent, str):
        opponent = opponents.builtin_agent(game, opponent)
    result = arena.result(play(game, agent, opponent, games, key))
    low, high = result.score_interval()
    return {"wins": result.wins, "draws": result.draws, "losses": result.losses,
            "score": result.score, "score_low": low, "score_high": high, "games": result.games}


def play(game: Game, agent: Agent, opponent: Agent, games: int, key: jax.Array,
         mesh: Mesh | None = None) -> jax.Array:
    """arena.play compiled once per game, number of games and pair of agents (as Partials,
    whose parameters are arguments: new parameters reuse the compilation).

    On a `mesh` of several devices each plays `games_per_device(games, devices)` of the games,
    half with each colour, and the counts are summed: a few more games than asked for where
    they do not split evenly.
    """
    mesh = _split_over(mesh)
    devices = 1 if mesh is None else mesh.size
    return _play(game, _as_partial(agent), _as_partial(opponent),
                 games_per_device(games, devices), key, mesh)


def games_per_device(games: int, devices: int) -> int:
    """Each device's share of a match of `games`: the even number that covers them all."""
    return 2 * -(-games // (2 * devices))


@functools.partial(jax.jit, static_argnums=(0, 3, 5))
def _play(game, agent, opponent, games, key, mesh):
    if mesh is None:
        return arena.play(game, agent, opponent, games, key)

    def local(key, agent, opponent):  # this device's games; the counts summed over all
        return jax.lax.psum(arena.play(game, agent, opponent, games, key), DATA_AXIS)

    whole = PartitionSpec()
    return _on_each_device(local, mesh, (whole, whole), whole)(key, agent, opponent)


# --- one call for the command line and the training loop ----------------------------------------


def evaluate(config, *, model_dir_or_run_dir, sims: int | None = None, positions=None,
             opponent: str | None = None, games: int | None = None,
             exhaustive: bool = False) -> dict:
    """Loads a model and runs one measure: `positions` (a .jsonl or .obf benchmark file),
    `opponent` (an arena of `games` games against a name of opponents.py, model paths
    included, played at `sims` too) or `exhaustive` (TicTacToe).

    `model_dir_or_run_dir`: a run directory (its latest checkpoint), an exported model folder
    (with manifest.json) or a snapshot file. `sims` defaults to evaluation.simulations, `games`
    to evaluation.games; c_puct and the seed come from `config`. Returns the measure's dict
    plus game, model, iteration and simulations.
    """
    chosen = [name for name, given in
              (("positions", positions is not None), ("opponent", opponent is not None),
               ("exhaustive", exhaustive)) if given]
    if len(chosen) != 1:
        raise ValueError("choose exactly one measure: positions (a benchmark file), an opponent "
                         f"or exhaustive; got {', '.join(chosen) or 'none'}")
    game, apply_fn, params, iteration = load_model(config, model_dir_or_run_dir)
    sims = config.evaluation.simulations if sims is None else sims
    agent = search_agent(game, apply_fn, params, sims, config.mcts.c_puct)
    key = jax.random.key(config.common.seed)
    result = {"game": game.name, "model": str(model_dir_or_run_dir), "iteration": iteration,
              "simulations": sims}
    if opponent is not None:
        games = 2 * max(1, config.evaluation.games // 2) if games is None else games
        opponent_moves = opponent_agent(game, opponent, simulations=sims,
                                        c_puct=config.mcts.c_puct)
        result["opponent"] = opponent
        result.update(arena_match(game, agent, opponent_moves, games, key))
        return result
    if positions is not None:
        result["positions"] = str(positions)
    result.update(load_benchmark(game, "exhaustive" if exhaustive else positions)
                  .measure(agent, key))
    return result


def load_model(config, path) -> tuple[Game, search.ApplyFn, Any, int]:
    """(game, apply_fn, params, iteration) from a run directory (its latest checkpoint), an
    exported model folder or a snapshot file (`<run>/snapshots/iter_<N>.msgpack`). `config`
    describes the network of a run directory or snapshot: the run's own configuration."""
    from cartridge_jax.run import checkpoint
    from cartridge_jax.training import loop
    from cartridge_jax.model import nets  # the training machinery, only when loading

    path = epath.Path(path)
    if (path / "manifest.json").is_file():
        from cartridge_jax.model import export

        try:
            game, network, params, manifest = export.load_exported(path)
        except export.ExportError as error:
            raise ValueError(str(error)) from None
        if game.name != config.common.game:
            raise ValueError(f"{path} holds a {game.name} model, not {config.common.game}: "
                             f"evaluate it with game {game.name}")
        return game, network.apply, params, int(manifest.get("iteration", 0))
    if path.suffix == ".msgpack" and path.is_file():
        game = games_lib.make(config.common.game)
        network = nets.make_network(config.model, game)
        template = jax.eval_shape(lambda: nets.init_params(network, game, jax.random.key(0)))
        try:
            params = checkpoint.load_snapshot(path, template)
        except checkpoint.CheckpointError as error:
            raise ValueError(str(error)) from None
        iteration = checkpoint.snapshot_iteration(path)
        return game, network.apply, params, iteration
    if not path.is_dir():
        raise ValueError(f"model {path} is neither a run directory, an exported model folder "
                         "(with manifest.json) nor a snapshot (.msgpack)")
    run_config = config.model_copy(
        update={"common": config.common.model_copy(update={"run_dir": str(path)})})
    try:
        trainer, state, iteration = loop.restore_latest(run_config)
    except checkpoint.CheckpointError as error:
        raise ValueError(str(error)) from None
    return trainer.game, trainer.network.apply, state.train_state.params, iteration
