// The vendored onnxruntime-web under Node, set up as the page runs it (one wasm thread), and an
// exported model's network as the site's agent calls it. Shared by the parity tests' runner
// (site/tests/node_agent.mjs) and the latency script (site/scripts/latency.mjs).
//
//     const session = await loadSession('site/models/othello/model.onnx');
//     const { policy_logits, value } = await runBatch(session, game, observations);
//     const evaluate = evaluator(session, game);  // what js/search.js's agentSearch calls

import { readFileSync } from 'node:fs';

const VENDOR = new URL('../vendor/onnxruntime-web/', import.meta.url);
const ort = await import(new URL('ort.wasm.bundle.min.mjs', VENDOR).href);
ort.env.wasm.numThreads = 1;
// Under Node the bundle cannot fetch its wasm from a file URL: hand it the bytes.
ort.env.wasm.wasmBinary = readFileSync(new URL('ort-wasm-simd-threaded.wasm', VENDOR));

/** An inference session of the model.onnx at `path`. */
export function loadSession(path) {
  return ort.InferenceSession.create(readFileSync(path));
}

/** (observations [N][cells * 2]) -> {policy_logits [N][A] Float32Array rows, value [N]}. */
export async function runBatch(session, game, observations) {
  const size = game.rows * game.cols * 2;
  const data = new Float32Array(observations.length * size);
  observations.forEach((observation, row) => data.set(observation, row * size));
  const input = new ort.Tensor('float32', data, [observations.length, ...game.observationShape]);
  const output = await session.run({ observation: input });
  const logits = output.policy_logits.data;
  return {
    policy_logits: observations.map((_, row) =>
      logits.subarray(row * game.numActions, (row + 1) * game.numActions)),
    value: Array.from(output.value.data),
  };
}

/** The network on one position, as js/search.js's agentSearch calls it:
 *  (observation) -> {logits [A], value}. */
export function evaluator(session, game) {
  return async (observation) => {
    const { policy_logits: logits, value } = await runBatch(session, game, [observation]);
    return { logits: logits[0], value: value[0] };
  };
}
