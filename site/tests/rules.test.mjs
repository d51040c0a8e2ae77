// The JS rules equal the JAX rules: every game that scripts/write_js_fixtures.py recorded from
// cartridge_jax/games is replayed here and compared state by state (board, side to move, legal
// moves, end, rewards, observation), plus the metadata and move names.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { GAMES, getGame } from '../js/games/index.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);

function fixture(name) {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8'));
}

const digits = (values) => Array.from(values, (v) => String(v)).join('');

for (const name of Object.keys(GAMES)) {
  const data = fixture(name);
  const game = getGame(name);

  test(`${name}: metadata equals Python's`, () => {
    assert.equal(game.name, data.game);
    assert.equal(game.displayName, data.display_name);
    assert.equal(game.numActions, data.num_actions);
    assert.equal(game.rows, data.rows);
    assert.equal(game.cols, data.cols);
    assert.deepEqual([...game.observationShape], data.observation_shape);
    assert.equal(game.encodingVersion, data.encoding_version);
    assert.deepEqual([...game.playerNames], data.player_names);
    assert.equal(game.passAction, data.pass_action);
  });

  test(`${name}: move names equal Python's, both ways`, () => {
    for (let action = 0; action < game.numActions; action++) {
      const text = data.action_texts[action];
      assert.equal(game.actionToText(action), text);
      assert.equal(game.actionFromText(text), action);
      assert.equal(game.actionFromText(` ${text.toUpperCase()} `), action);
    }
    assert.throws(() => game.actionFromText('z9'), /is not an?/);
    assert.throws(() => game.actionToText(game.numActions), /is not an?/);
  });

  test(`${name}: ${data.trajectories.length} recorded games replay state by state`, () => {
    for (const [index, recorded] of data.trajectories.entries()) {
      let state = game.init();
      assert.equal(state.lastAction, null);
      for (let ply = 0; ply <= recorded.actions.length; ply++) {
        const where = `${name} game ${index} after ${ply} plies`;
        assert.equal(digits(state.board), recorded.boards[ply], `${where}: board`);
        assert.equal(state.currentPlayer, Number(recorded.current_player[ply]), `${where}: player`);
        assert.equal(digits(state.legal), recorded.legal[ply], `${where}: legal moves`);
        assert.equal(state.terminated, recorded.terminated[ply] === '1', `${where}: terminated`);
        assert.deepEqual(state.rewards, recorded.rewards[ply], `${where}: rewards`);
        const observation = game.observe(state);
        assert.ok(observation instanceof Float32Array);
        assert.equal(digits(observation), recorded.observations[ply], `${where}: observation`);
        if (ply === recorded.actions.length) break;

        const action = recorded.actions[ply];
        const before = { ...state, board: Int8Array.from(state.board) };
        const next = game.step(state, action);
        assert.deepEqual(state, before, `${where}: step mutated its input`);
        assert.equal(next.lastAction, state.terminated ? state.lastAction : action);
        state = next;
      }
    }
  });
}

test('the recorded games cover forfeits, out-of-range moves, steps after the end and passes', () => {
  for (const name of Object.keys(GAMES)) {
    const { trajectories, num_actions: numActions } = fixture(name);
    const inRange = (a) => a >= 0 && a < numActions;
    const forfeits = trajectories.flatMap(({ actions, legal, terminated }) => actions.filter(
      (a, ply) => terminated[ply] === '0' && !(inRange(a) && legal[ply][a] === '1')));
    assert.ok(forfeits.filter(inRange).length >= 1, `${name}: an illegal move in range`);
    assert.ok(forfeits.filter((a) => !inRange(a)).length >= 1, `${name}: a move out of range`);
    assert.ok(trajectories.every(({ terminated }) => terminated.endsWith('11')), name);
  }
  const othello = fixture('othello').trajectories;
  assert.ok(othello.some(({ actions, terminated }) =>
    actions.some((a, ply) => a === 64 && terminated[ply] === '0')), 'an Othello pass');
});

test('getGame names the known games for an unknown one', () => {
  assert.equal(getGame('othello'), GAMES.othello);
  assert.throws(() => getGame('chess'), /unknown game 'chess': use one of tictactoe, connect4, othello/);
  assert.throws(() => getGame('toString'), /unknown game/);
});

test('actionOfCell: the cell for grids, the column for Connect 4, null off the board', () => {
  assert.equal(GAMES.tictactoe.actionOfCell(2, 1), 7);
  assert.equal(GAMES.othello.actionOfCell(7, 7), 63);
  assert.equal(GAMES.connect4.actionOfCell(0, 3), 3);
  assert.equal(GAMES.connect4.actionOfCell(5, 3), 3);
  for (const game of Object.values(GAMES)) {
    assert.equal(game.actionOfCell(-1, 0), null);
    assert.equal(game.actionOfCell(game.rows, 0), null);
    assert.equal(game.actionOfCell(0, game.cols), null);
  }
});

test('a non-integer action forfeits like an illegal one', () => {
  const game = GAMES.connect4;
  const state = game.step(game.init(), 2.5);
  assert.equal(state.terminated, true);
  assert.deepEqual(state.rewards, [-1, 1]);
  assert.equal(state.currentPlayer, 0);
});
