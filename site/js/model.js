// A game's exported network in the browser: its manifest, then model.onnx in an onnxruntime-web
// session. Every failure becomes a ModelError whose message says, in a sentence, what is wrong
// and what fixes it: ort-web's own errors are plain Errors with codes inside the message
// ("protobuf parsing failed", "failed to load external data file", ...).
//
// Files (relative to the site root, see cartridge_jax/export.py):
//   models/<game>/manifest.json        {game, encoding_version, step, iteration, sha256,
//                                       observation_shape, num_actions, created, agent}
//   models/<game>/model.onnx?v=<sha>   input observation [batch, rows, cols, 2],
//                                       outputs policy_logits [batch, A], value [batch]

export const INPUT_NAME = 'observation';
export const OUTPUT_NAMES = Object.freeze(['policy_logits', 'value']);

export class ModelError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ModelError';
  }
}

/** The folder URL of `gameName`'s model under the site root URL `siteUrl`. */
export function modelFolder(siteUrl, gameName) {
  return new URL(`models/${gameName}/`, siteUrl);
}

/**
 * The checked manifest of `game`'s model. Fetched with `no-store`: a training run rewrites it,
 * and a plain fetch of an unchanged URL was served stale from the browser cache.
 */
export async function fetchManifest(siteUrl, game) {
  const path = `models/${game.name}/manifest.json`;
  const response = await fetchOrExplain(new URL('manifest.json', modelFolder(siteUrl, game.name)),
    path, { cache: 'no-store' });
  if (response.status === 404) {
    throw new ModelError(`There is no ${game.displayName} model on this site (${path} is ` +
      'missing): export one with `python -m cartridge_jax export RUN_DIR` and serve that run.');
  }
  checkResponse(response, path);
  let manifest;
  try {
    manifest = await response.json();
  } catch {
    throw new ModelError(`${path} is not valid JSON: export the model again.`);
  }
  checkManifest(manifest, game);
  return manifest;
}

/** Throws a ModelError unless `manifest` describes a model this page's rules can feed. */
export function checkManifest(manifest, game) {
  const path = `models/${game.name}/manifest.json`;
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new ModelError(`${path} is not a model manifest: export the model again.`);
  }
  if (manifest.game !== game.name) {
    throw new ModelError(`${path} describes a model for ${JSON.stringify(manifest.game)}, ` +
      `not ${game.displayName}: put the ${game.name} export in models/${game.name}/.`);
  }
  if (manifest.encoding_version !== game.encodingVersion) {
    throw new ModelError(`The ${game.displayName} model reads positions in encoding version ` +
      `${manifest.encoding_version}, this page writes version ${game.encodingVersion}: ` +
      'export the model with the cartridge-jax version the site comes from.');
  }
  const shape = JSON.stringify(manifest.observation_shape);
  if (shape !== JSON.stringify(game.observationShape) ||
      manifest.num_actions !== game.numActions) {
    throw new ModelError(`The ${game.displayName} model takes observations ${shape} and ` +
      `${manifest.num_actions} actions, the rules here ${JSON.stringify(game.observationShape)} ` +
      `and ${game.numActions}: export the model again.`);
  }
  if (!/^[0-9a-f]{64}$/.test(manifest.sha256)) {
    throw new ModelError(`${path} has no valid sha256 of model.onnx: export the model again.`);
  }
}

/**
 * {session, evaluate} for the model `manifest` announces. `evaluate(observation)` resolves to
 * {logits: Float32Array(A), value} and throws a ModelError on non-finite outputs; the model is
 * tried once on the start position before it is handed out.
 */
export async function loadModel(ort, siteUrl, game, manifest) {
  const path = `models/${game.name}/model.onnx`;
  // The sha256 in the URL: a new export is a new URL, so no cache serves a stale model.
  const url = new URL(`model.onnx?v=${manifest.sha256}`, modelFolder(siteUrl, game.name));
  const response = await fetchOrExplain(url, path, {});
  if (response.status === 404) {
    throw new ModelError(`The ${game.displayName} model file is missing (${path}): export ` +
      'the model again.');
  }
  checkResponse(response, path);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length === 0) {
    throw new ModelError(`The ${game.displayName} model file (${path}) is empty: the export ` +
      'was interrupted; export the model again.');
  }
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  } catch (error) {
    throw new ModelError(explainRuntimeError(error, game, path));
  }
  const outputsMissing = OUTPUT_NAMES.filter((name) => !session.outputNames.includes(name));
  if (!session.inputNames.includes(INPUT_NAME) || outputsMissing.length > 0) {
    await session.release();
    throw new ModelError(`${path} has inputs [${session.inputNames}] and outputs ` +
      `[${session.outputNames}], not ${INPUT_NAME} -> ${OUTPUT_NAMES.join(', ')}: it was not ` +
      'written by cartridge-jax export; export the model again.');
  }
  const evaluate = evaluator(ort, session, game);
  try {
    await evaluate(game.observe(game.init()));
  } catch (error) {
    await session.release();
    throw error instanceof ModelError ? error : new ModelError(explainRuntimeError(error, game, path));
  }
  return { session, evaluate };
}

/** A sentence for an error that onnxruntime-web raised while creating or running a session. */
export function explainRuntimeError(error, game, path) {
  const detail = firstLine(error);
  if (/protobuf parsing failed|invalid (model|protobuf)/i.test(detail)) {
    return `The ${game.displayName} model file (${path}) is corrupt: it is not a readable ` +
      'ONNX model. Export the model again.';
  }
  if (/external data/i.test(detail)) {
    return `The ${game.displayName} model (${path}) needs a separate weights file that is ` +
      'missing: export the model again (cartridge-jax writes one self-contained file).';
  }
  if (/opset|ir version/i.test(detail)) {
    return `The ${game.displayName} model (${path}) uses a newer ONNX version than ` +
      'onnxruntime-web here reads (IR 13, opset 26 at most): export it with the configured ' +
      `export.onnx_opset and export.onnx_ir_version (${detail}).`;
  }
  if (/backend|wasm|webassembly|failed to fetch|dynamically imported|aborted/i.test(detail)) {
    return 'The WebAssembly runtime could not be loaded, so the network cannot run here: ' +
      'check that vendor/onnxruntime-web/ holds ort-wasm-simd-threaded.wasm ' +
      `(npm --prefix site run vendor). Details: ${detail}`;
  }
  return `The ${game.displayName} model (${path}) could not be run: ${detail}`;
}

function evaluator(ort, session, game) {
  const dims = [1, ...game.observationShape];
  return async function evaluate(observation) { // observation: Float32Array(rows * cols * 2)
    const outputs = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', observation, dims) });
    const logits = Float32Array.from(outputs.policy_logits.data); // [A]
    const value = Number(outputs.value.data[0]);
    if (logits.length !== game.numActions) {
      throw new ModelError(`The ${game.displayName} model returned ${logits.length} move ` +
        `scores, not ${game.numActions}: export the model again.`);
    }
    if (!Number.isFinite(value) || !logits.every(Number.isFinite)) {
      throw new ModelError(`The ${game.displayName} model returned non-finite numbers (NaN or ` +
        'infinity): the network is broken, perhaps diverged in training; export an earlier ' +
        'checkpoint.');
    }
    return { logits, value };
  };
}

async function fetchOrExplain(url, path, options) {
  try {
    return await fetch(url, options);
  } catch (error) {
    throw new ModelError(`Could not fetch ${path} (${firstLine(error)}): is the site's server ` +
      'still running?');
  }
}

function checkResponse(response, path) {
  if (!response.ok) {
    throw new ModelError(`Fetching ${path} failed: HTTP ${response.status} ` +
      `${response.statusText}.`.replace(/ \.$/, '.'));
  }
}

function firstLine(error) {
  const text = String(error?.message ?? error).trim();
  return text.split('\n')[0] || String(error?.name ?? 'Error');
}
