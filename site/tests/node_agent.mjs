// Runs exported models in the vendored onnxruntime-web under Node, for the Python parity tests
// (tests/test_export_parity.py): the network on given observations, and the site's agent
// (js/search.js over js/games/) on given positions. One process serves a whole test module.
//
//     node site/tests/node_agent.mjs JOB.json > RESULT.json
//
// JOB     {models: {<name>: path of model.onnx},
//          evaluations: [{game, observations: [N][rows * cols * 2]}],          one batch each
//          searches: [{game, model, moves: [[actions from the start], ...], simulations}]}
//         (a search's model names one of `models`; without one, and for evaluations, the
//         model named after the game)
// RESULT  {evaluations: [{policy_logits: [N][A], value: [N]}],
//          searches: [[{action, visits, policy, root_value, net_value, closest_margin}, ...]]}
// (closest_margin is null where no choice had a runner-up: JSON has no Infinity.)

import { readFileSync } from 'node:fs';

import { getGame } from '../js/games/index.js';
import { agentSearch } from '../js/search.js';
import { evaluator, loadSession, runBatch } from '../scripts/node_onnx.mjs';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const sessions = {};
for (const [name, path] of Object.entries(job.models)) {
  sessions[name] = await loadSession(path);
}

const evaluations = [];
for (const { game: name, observations } of job.evaluations ?? []) {
  const { policy_logits: logits, value } = await runBatch(sessions[name], getGame(name),
    observations);
  evaluations.push({ policy_logits: logits.map((row) => Array.from(row)), value });
}

const searches = [];
for (const { game: name, model = name, moves, simulations } of job.searches ?? []) {
  const game = getGame(name);
  const evaluate = evaluator(sessions[model], game);
  const results = [];
  for (const actions of moves) {
    const state = actions.reduce((s, action) => game.step(s, action), game.init());
    const result = await agentSearch(game, state, evaluate, { simulations });
    results.push({
      action: result.action,
      visits: Array.from(result.visits),
      policy: Array.from(result.policy),
      root_value: result.rootValue,
      net_value: result.netValue,
      closest_margin: Number.isFinite(result.closestMargin) ? result.closestMargin : null,
    });
  }
  searches.push(results);
}

process.stdout.write(JSON.stringify({ evaluations, searches }));
