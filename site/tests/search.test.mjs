// The agent's search on positions whose answer is known. Its equality with the Python agent
// (tree_search.gumbel_muzero_policy) on real networks is checked by tests/test_export_parity.py
// through node_agent.mjs.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { GAMES } from '../js/games/index.js';
import { agentSearch } from '../js/search.js';

/** A network that knows nothing: uniform logits, value 0; counts its calls. */
function uniformNetwork(game) {
  const network = async (observation) => {
    network.calls += 1;
    assert.equal(observation.length, game.rows * game.cols * 2);
    return { logits: new Float32Array(game.numActions), value: 0 };
  };
  network.calls = 0;
  return network;
}

function play(game, actions) {
  return actions.reduce((state, action) => {
    assert.equal(state.legal[action], 1, `move ${action} is legal`);
    return game.step(state, action);
  }, game.init());
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

test('TicTacToe: takes the immediate win, also when it is the highest legal index', async () => {
  const game = GAMES.tictactoe;
  const state = play(game, [0, 1, 4, 2]); // X on a1 b2, O on b1 c1: X wins on c3 (8)
  for (const simulations of [16, 64]) {
    const result = await agentSearch(game, state, uniformNetwork(game), { simulations });
    assert.equal(result.action, 8);
    // Sequential Halving keeps the win to the end: it has the most visits.
    assert.equal(result.visits[8], Math.max(...result.visits), `visits ${result.visits}`);
    // The search's value is its move's: the win's reward, 1 (the game ends, nothing follows).
    assert.equal(result.rootValue, 1);
    // The improved policy prefers it too, though the finalists' visits are equal.
    assert.equal(result.policy[8], Math.max(...result.policy), `policy ${result.policy}`);
  }
});

test('root visits follow Sequential Halving\'s schedule, whatever the network says', async () => {
  // 7 legal moves, 32 simulations, ceil(log2 7) = 3 phases: every move once (7 simulations),
  // the best 3 three more times each (9, as floor(32 / (3 * 3)) = 3), then the best 2 until the
  // simulations run out (16, at floor(32 / (3 * 2)) = 5 a phase): 1 1 1 1 4 12 12.
  const game = GAMES.connect4;
  const logits = Float32Array.from([0.3, -1, 2, 0.5, 1.5, -0.2, 0.1]);
  const networks = {
    uniform: uniformNetwork(game),
    opinionated: async (observation) => ({ logits, value: observation[3] - observation[45] }),
  };
  for (const [name, network] of Object.entries(networks)) {
    for (const moves of [[], [3, 3, 2]]) {
      const result = await agentSearch(game, play(game, moves), network, { simulations: 32 });
      assert.deepEqual([...result.visits].sort((a, b) => a - b), [1, 1, 1, 1, 4, 12, 12],
        `${name} network after ${moves}`);
      assert.equal(result.visits[result.action], 12); // the move is one of the finalists
    }
  }
  // The uniform network's ties go to the lowest columns, as jnp.argmax breaks them.
  const result = await agentSearch(game, game.init(), uniformNetwork(game), { simulations: 32 });
  assert.deepEqual([...result.visits], [12, 12, 4, 1, 1, 1, 1]);
  assert.equal(result.action, 0);
});

test('Connect 4: takes the immediate win over lower columns', async () => {
  const game = GAMES.connect4;
  const state = play(game, [4, 0, 5, 0, 6, 1]); // Red on 5 6 7 (bottom row) wins in column 4
  const result = await agentSearch(game, state, uniformNetwork(game), { simulations: 32 });
  assert.equal(result.action, 3);
});

test('Connect 4: blocks the only threat when there is no win', async () => {
  const game = GAMES.connect4;
  const state = play(game, [0, 4, 0, 5, 1, 6]); // Yellow on 5 6 7 threatens column 4
  const result = await agentSearch(game, state, uniformNetwork(game), { simulations: 200 });
  assert.equal(result.action, 3);
});

test('Connect 4: blocks a threat that its network does not expect', async () => {
  // The network is blind to Red's winning column: logit -8 there when Red is to move (an even
  // number of pieces), 0 elsewhere; value 0. Gumbel's interior rule alone never visits a reply
  // that unlikely; the agent tries every reply to a root move once before any twice, sees the
  // win and blocks it (tests/test_search.py checks that mctx's rule does not, in Python).
  const game = GAMES.connect4;
  for (const [moves, block] of [[[0, 1, 0, 1, 0], 0], [[0, 0, 1, 1, 2], 3], [[6, 0, 6, 1, 6], 6]]) {
    const blind = async (observation) => {
      const pieces = observation.reduce((count, x) => count + x, 0);
      const logits = new Float32Array(game.numActions);
      if (pieces % 2 === 0) logits[block] = -8;
      return { logits, value: 0 };
    };
    const result = await agentSearch(game, play(game, moves), blind, { simulations: 256 });
    assert.equal(result.action, block, `after ${moves}`);
  }
});

test('visit counts sum to the simulations, on legal moves only; one evaluation per new node', async () => {
  for (const game of Object.values(GAMES)) {
    const state = play(game, game.name === 'othello' ? [19, 18] : [1, 2]);
    for (const simulations of [1, 7, 50]) {
      const network = uniformNetwork(game);
      const result = await agentSearch(game, state, network, { simulations });
      assert.equal(sum(result.visits), simulations, `${game.name} ${simulations}`);
      assert.ok(result.visits.every((v, a) => v === 0 || state.legal[a] === 1));
      assert.equal(result.visits[result.action], Math.max(...result.visits));
      assert.ok(Math.abs(sum(result.policy) - 1) < 1e-6);
      assert.ok(result.policy.every((p, a) => p === 0 || state.legal[a] === 1));
      assert.ok(network.calls <= simulations + 1, `${network.calls} evaluations`);
      assert.ok(Math.abs(result.rootValue) <= 1);
    }
  }
});

test('0 simulations: the most likely legal move of the raw network', async () => {
  const game = GAMES.tictactoe;
  const state = play(game, [4]); // the centre is taken
  const logits = Float32Array.from([0.5, 1, 0.2, 0, 9, 0.3, 1, 0, 0]); // centre highest, illegal
  const evaluate = async () => ({ logits, value: -0.25 });
  const result = await agentSearch(game, state, evaluate, { simulations: 0 });
  assert.equal(result.action, 1); // first of the tied best legal logits (1 and 6)
  assert.deepEqual([...result.visits], new Array(9).fill(0));
  assert.equal(result.netValue, -0.25);
  assert.equal(result.rootValue, -0.25);
  assert.equal(result.prior[4], 0);
  assert.deepEqual(result.policy, result.prior);
  assert.ok(Math.abs(sum(result.prior) - 1) < 1e-6);
  const expected = Math.exp(1) / sum([0.5, 1, 0.2, 0, 0.3, 1, 0, 0].map(Math.exp));
  assert.ok(Math.abs(result.prior[1] - expected) < 1e-6);
});

test('a pass is searched like any move when it is the only one', async () => {
  const game = GAMES.othello;
  // The first forced pass of seeded random games (a small linear congruential generator).
  let state = game.init();
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let tries = 0; !state.legal[64]; tries++) {
    assert.ok(tries < 20000, 'no pass found');
    if (state.terminated) state = game.init();
    const legal = [...state.legal.keys()].filter((a) => state.legal[a] === 1);
    state = game.step(state, legal[Math.floor(next() * legal.length)]);
  }
  const result = await agentSearch(game, state, uniformNetwork(game), { simulations: 8 });
  assert.equal(result.action, 64);
  assert.equal(result.visits[64], 8);
});

test('the search leaves its input alone and refuses what it cannot search', async () => {
  const game = GAMES.connect4;
  const state = play(game, [3, 3]);
  const copy = { ...state, board: Int8Array.from(state.board), legal: Uint8Array.from(state.legal) };
  await agentSearch(game, state, uniformNetwork(game), { simulations: 20 });
  assert.deepEqual(state, copy);

  const over = game.step(state, 99); // a forfeit ends the game
  await assert.rejects(agentSearch(game, over, uniformNetwork(game), { simulations: 4 }),
    /the game is over/);
  await assert.rejects(agentSearch(game, state, uniformNetwork(game), { simulations: -1 }),
    /simulations = -1/);
  const broken = async () => ({ logits: new Float32Array(7).fill(NaN), value: 0 });
  await assert.rejects(agentSearch(game, state, broken, { simulations: 4 }),
    /not 7 finite numbers/);
  const wrongGame = async () => ({ logits: new Float32Array(9), value: 0 });
  await assert.rejects(agentSearch(game, state, wrongGame, { simulations: 4 }),
    /does not fit this game/);
});
