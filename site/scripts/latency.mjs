// The site's bot, timed per move under Node: the agent of js/search.js over an exported model in
// the vendored onnxruntime-web (one wasm thread, as the page runs it), on every position of
// games that open with a few seeded random plies and then let the bot play both sides. What the
// 1 s per move budget is checked against when choosing an agent's simulations.
//
//     node site/scripts/latency.mjs MODEL_DIR SIMULATIONS[,SIMULATIONS...] [GAMES]
//
// MODEL_DIR is an exported model folder (manifest.json, model.onnx), e.g. site/models/othello.
// Prints one JSON line per simulation count: {game, simulations, moves, median_ms, p90_ms,
// max_ms}. The first search of the process (wasm start-up) is left out.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { getGame } from '../js/games/index.js';
import { agentSearch } from '../js/search.js';
import { evaluator, loadSession } from './node_onnx.mjs';

const [modelDir, simulationList, gamesArg = '4'] = process.argv.slice(2);
if (!modelDir || !simulationList) {
  console.error('usage: node site/scripts/latency.mjs MODEL_DIR SIMULATIONS[,...] [GAMES]');
  process.exit(2);
}
const simulationCounts = simulationList.split(',').map(Number);
const gameCount = Number(gamesArg);
if (simulationCounts.some((n) => !Number.isInteger(n) || n < 1) || !(gameCount >= 1)) {
  console.error(`bad SIMULATIONS "${simulationList}" or GAMES "${gamesArg}": use positive integers`);
  process.exit(2);
}

const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8'));
const game = getGame(manifest.game);
const evaluate = evaluator(await loadSession(join(modelDir, 'model.onnx')), game);

let seed = 12345; // a fixed LCG: the same games on every run
const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const legalActions = (state) => [...state.legal.keys()].filter((a) => state.legal[a] === 1);

await agentSearch(game, game.init(), evaluate, { simulations: 1 }); // start-up, not timed
for (const simulations of simulationCounts) {
  const times = [];
  for (let g = 0; g < gameCount; g += 1) {
    let state = game.init();
    for (let ply = 0; ply < 4 && !state.terminated; ply += 1) {
      const legal = legalActions(state);
      state = game.step(state, legal[Math.floor(random() * legal.length)]);
    }
    while (!state.terminated) {
      const start = performance.now();
      const { action } = await agentSearch(game, state, evaluate, { simulations });
      times.push(performance.now() - start);
      state = game.step(state, action);
    }
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  console.log(JSON.stringify({
    game: game.name, simulations, moves: times.length, median_ms: Math.round(at(0.5)),
    p90_ms: Math.round(at(0.9)), max_ms: Math.round(times[times.length - 1]),
  }));
}
