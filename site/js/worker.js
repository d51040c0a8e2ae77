// The bot's thinking, off the page's thread (a module Worker): onnxruntime-web runs the network,
// agentSearch the tree search, so the page stays responsive during a search.
//
// Messages from the page, handled strictly one after another (a model is never replaced in the
// middle of a search); every reply carries the request's id:
//   {id, type: 'load', game, manifest}   -> {type: 'loaded'}
//   {id, type: 'search', game, state, simulations}
//                                        -> {type: 'searched', action, visits, prior, policy,
//                                            netValue, rootValue, seconds}
//   any failure                          -> {type: 'failed', message, modelBroken}
// A failed load keeps the model loaded before it (if any).

import { getGame } from './games/index.js';
import { ModelError, loadModel } from './model.js';
import { agentSearch } from './search.js';

const SITE_URL = new URL('../', import.meta.url);
// Absolute URLs: ort resolves relative wasm paths against the wrong base under a sub-path.
const ORT_FOLDER = new URL('../vendor/onnxruntime-web/', import.meta.url);
const ORT_MODULE = new URL('ort.wasm.bundle.min.mjs', ORT_FOLDER);

const models = new Map(); // game name -> {sha256, session, evaluate}
let runtime = null; // Promise of the configured ort module

function ortRuntime() {
  runtime ??= import(ORT_MODULE.href).then((ort) => {
    // One thread: multi-threaded wasm needs cross-origin isolation headers that static hosts
    // rarely send, and a one-position-at-a-time search gains little from threads.
    ort.env.wasm.numThreads = 1;
    // Only the binary's URL: the bundle carries its own glue code, which a URL prefix here
    // would make ort fetch again as a separate file.
    ort.env.wasm.wasmPaths = { wasm: new URL('ort-wasm-simd-threaded.wasm', ORT_FOLDER).href };
    ort.env.logLevel = 'error';
    return ort;
  }, (error) => {
    runtime = null; // retried at the next load
    throw new ModelError('The onnxruntime-web library (vendor/onnxruntime-web/' +
      `ort.wasm.bundle.min.mjs) could not be loaded: ${error.message}`);
  });
  return runtime;
}

async function load({ game: name, manifest }) {
  const game = getGame(name);
  if (models.get(name)?.sha256 !== manifest.sha256) {
    const model = await loadModel(await ortRuntime(), SITE_URL, game, manifest);
    await models.get(name)?.session.release();
    models.set(name, { ...model, sha256: manifest.sha256 });
  }
  return { type: 'loaded' };
}

async function search({ game: name, state, simulations }) {
  const model = models.get(name);
  if (model === undefined) throw new ModelError(`No ${name} model is loaded.`);
  const started = performance.now();
  const result = await agentSearch(getGame(name), state, model.evaluate, { simulations });
  return { type: 'searched', ...result, seconds: (performance.now() - started) / 1000 };
}

const HANDLERS = { load, search };
let queue = Promise.resolve();

self.addEventListener('message', (event) => {
  const request = event.data;
  queue = queue
    .then(() => HANDLERS[request.type](request))
    .then((reply) => self.postMessage({ ...reply, id: request.id }), (error) => {
      self.postMessage({
        type: 'failed',
        id: request.id,
        message: error instanceof ModelError ? error.message
          : `The bot failed: ${error?.message ?? error}`,
        modelBroken: error instanceof ModelError,
      });
    });
});
