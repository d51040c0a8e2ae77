// The agent: PUCT over the network's priors and values, no noise, the most visited move.
//
// This is cartridge_jax/search.py::agent_search, which runs mctx.muzero_policy with
// dirichlet_fraction 0, pb_c_init = cPuct, pb_c_base = 19652 and qtransform_by_parent_and_siblings,
// over a recurrent function that plays the real rules: every edge has discount -1 (a child's
// value, from the child's side to move, is the parent's with the sign flipped) and the reward of
// the player who just moved; a terminal child has discount 0 and value 0. The arithmetic below
// follows mctx's search.py, action_selection.py, qtransforms.py and tree.py step by step, so the
// strength measured in Python is the strength people play against. Differences, all deliberate:
//   * mctx adds 1e-7 * uniform noise to every selection score to break ties; here ties go to
//     the lowest action index. `closestMargin` reports how close the closest call was.
//   * mctx computes in float32, this in float64 (the inputs are the network's float32 outputs).
//   * mctx turns the root priors into probabilities, back into logits (log, clipped at the
//     float32 tiny) and into probabilities again; here they are computed once (equal up to
//     float32 rounding).
//   * mctx evaluates the network on terminal positions and discards the result (value 0, and
//     its priors are all masked, hence uniform); here terminal positions are never evaluated.
//   * mctx also stops a simulation at depth `simulations`, which a tree of at most `simulations`
//     nodes below the root can never reach while the next node is already expanded.

const PB_C_BASE = 19652; // cartridge_jax/search.py PB_C_BASE
const MIN_VALUE_SPREAD = 1e-8; // qtransform_by_parent_and_siblings' epsilon

/**
 * The agent's move in `state` (a live position of `game`).
 *
 * @param evaluate  async (observation Float32Array) -> {logits: Float32Array(A), value: number},
 *                  the network: unmasked policy logits and the side to move's value in [-1, 1].
 * @returns {Promise<{action, visits, prior, netValue, rootValue, closestMargin}>}
 *   action         the most visited move (lowest index on ties); with 0 simulations the
 *                  argmax of the masked prior logits
 *   visits         Float32Array(A) root visit counts (zeros with 0 simulations)
 *   prior          Float32Array(A) softmax of the logits over the legal moves
 *   netValue       the network's value of `state`, side to move's view
 *   rootValue      the search's value of `state` (the root's mean backed-up value), same view
 *   closestMargin  the smallest lead of a chosen move's score over the runner-up's, over every
 *                  selection at a live position (Infinity if none had a runner-up): where it
 *                  is near 1e-7, mctx's tie-breaking noise may have chosen otherwise
 */
export async function agentSearch(game, state, evaluate, { simulations, cPuct }) {
  if (!Number.isInteger(simulations) || simulations < 0) {
    throw new Error(`simulations = ${simulations}: use 0 (the raw network) or more`);
  }
  if (!Number.isFinite(cPuct) || cPuct < 0) {
    throw new Error(`cPuct = ${cPuct}: use a finite number >= 0`);
  }
  if (state.terminated) {
    throw new Error('the game is over: there is no move to search');
  }
  const { logits, value } = await evaluateChecked(game, state, evaluate);
  const prior = legalSoftmax(logits, state.legal);
  const result = (action, visits, rootValue, closestMargin) => ({
    action, visits, prior: Float32Array.from(prior), netValue: value, rootValue, closestMargin,
  });
  if (simulations === 0) {
    return result(argmaxLegal(logits, state.legal), new Float32Array(game.numActions), value,
      Infinity);
  }

  const root = newNode(state, prior, value, null, -1, 0, 0);
  let closestMargin = Infinity;
  for (let simulation = 0; simulation < simulations; simulation++) {
    // Down the tree (mctx's simulate) to an unexpanded action, through terminal nodes too.
    let node = root;
    let action;
    for (;;) {
      const choice = selectAction(node, node === root ? state.legal : null, cPuct);
      if (!node.state.terminated) closestMargin = Math.min(closestMargin, choice.margin);
      action = choice.action;
      const child = node.children[action];
      if (child === null) break;
      node = child;
    }
    const leaf = await expand(game, node, action, evaluate);
    backward(leaf);
  }
  const visits = Float32Array.from(root.childVisits);
  return result(argmaxLegal(visits, state.legal), visits, root.value, closestMargin);
}

/**
 * A tree node (mctx keeps these as arrays indexed by node; the edge data `children_rewards`,
 * `children_discounts` and `children_values` of the parent live here on the child).
 */
function newNode(state, prior, value, parent, actionFromParent, reward, discount) {
  const numActions = prior.length;
  return {
    state,
    prior, // Float64Array(A): softmax of the node's masked logits
    visits: 1, // mctx's node_visits: 1 once expanded, +1 per simulation through the node
    value, // mctx's node_values: the running mean of backed-up values, side to move's view
    children: new Array(numActions).fill(null),
    childVisits: new Int32Array(numActions),
    parent,
    actionFromParent,
    reward, // the reward of the move into this node, for the player who made it
    discount, // -1, or 0 into a terminal node
  };
}

/** mctx's recurrent step: play `action` from `parent` and evaluate the new position. */
async function expand(game, parent, action, evaluate) {
  const state = game.step(parent.state, action);
  const reward = state.rewards[parent.state.currentPlayer];
  if (state.terminated) {
    // All moves are masked in a finished game, so mctx's softmax is uniform; its value is 0.
    const uniform = new Float64Array(game.numActions).fill(1 / game.numActions);
    return attach(parent, action, newNode(state, uniform, 0, parent, action, reward, 0));
  }
  const { logits, value } = await evaluateChecked(game, state, evaluate);
  const prior = legalSoftmax(logits, state.legal);
  return attach(parent, action, newNode(state, prior, value, parent, action, reward, -1));
}

function attach(parent, action, child) {
  parent.children[action] = child;
  return child;
}

/** mctx's backward: the leaf's value up to the root, sign-flipped by each edge's discount. */
function backward(leaf) {
  let value = leaf.value;
  for (let node = leaf; node.parent !== null; node = node.parent) {
    const parent = node.parent;
    value = node.reward + node.discount * value;
    parent.value = (parent.value * parent.visits + value) / (parent.visits + 1);
    parent.visits += 1;
    parent.childVisits[node.actionFromParent] += 1;
  }
}

/**
 * mctx's muzero_action_selection with qtransform_by_parent_and_siblings: the action maximising
 * normalised Q + PUCT exploration, only among `rootLegal` moves at the root (null elsewhere).
 * Returns {action, margin}: margin = best score - runner-up's score.
 */
function selectAction(node, rootLegal, cPuct) {
  const numActions = node.prior.length;
  const qValue = (a) => node.children[a].reward + node.children[a].discount * node.children[a].value;
  // Q-values normalised to [0, 1] by the min and max over the node's own value and its
  // visited children's Q; unvisited children score 0.
  let low = node.value;
  let high = node.value;
  for (let a = 0; a < numActions; a++) {
    if (node.childVisits[a] > 0) {
      const q = qValue(a);
      low = Math.min(low, q);
      high = Math.max(high, q);
    }
  }
  const spread = Math.max(high - low, MIN_VALUE_SPREAD);
  const pbC = cPuct + Math.log((node.visits + PB_C_BASE + 1) / PB_C_BASE);
  const exploration = Math.sqrt(node.visits) * pbC;

  let action = -1;
  let best = -Infinity;
  let runnerUp = -Infinity;
  for (let a = 0; a < numActions; a++) {
    if (rootLegal !== null && rootLegal[a] !== 1) continue;
    const visits = node.childVisits[a];
    const valueScore = visits > 0 ? (qValue(a) - low) / spread : 0;
    const score = valueScore + exploration * node.prior[a] / (visits + 1);
    if (score > best) {
      runnerUp = best;
      best = score;
      action = a;
    } else if (score > runnerUp) {
      runnerUp = score;
    }
  }
  return { action, margin: best - runnerUp };
}

/**
 * Softmax over the legal moves (the masked logits' softmax: illegal moves get 0). With no
 * legal move every logit is masked alike, so mctx's softmax is uniform.
 */
function legalSoftmax(logits, legal) {
  const probs = new Float64Array(logits.length);
  let max = -Infinity;
  for (let a = 0; a < logits.length; a++) if (legal[a] === 1) max = Math.max(max, logits[a]);
  if (max === -Infinity) return probs.fill(1 / logits.length);
  let total = 0;
  for (let a = 0; a < logits.length; a++) {
    if (legal[a] === 1) {
      probs[a] = Math.exp(logits[a] - max);
      total += probs[a];
    }
  }
  for (let a = 0; a < logits.length; a++) probs[a] /= total;
  return probs;
}

/** The legal index of the largest value, the lowest such index on ties (as jnp.argmax). */
function argmaxLegal(values, legal) {
  let best = -1;
  for (let a = 0; a < values.length; a++) {
    if (legal[a] === 1 && (best < 0 || values[a] > values[best])) best = a;
  }
  return best;
}

async function evaluateChecked(game, state, evaluate) {
  const { logits, value } = await evaluate(game.observe(state));
  if (logits?.length !== game.numActions || !Array.prototype.every.call(logits, Number.isFinite)) {
    throw new Error(`the network returned policy logits that are not ${game.numActions} ` +
      'finite numbers: the model does not fit this game, or it is broken');
  }
  if (!Number.isFinite(value)) {
    throw new Error(`the network returned the value ${value}: the model is broken`);
  }
  return { logits, value };
}
