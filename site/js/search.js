// The agent: Gumbel MuZero over the network's priors and values, without Gumbel noise, every
// legal move considered; the move is the one Sequential Halving leaves on top.
//
// This is cartridge_jax/model/search.py::agent_search, which runs
// tree_search.gumbel_muzero_policy (mctx.gumbel_muzero_policy's algorithm) with gumbel_scale 0,
// max_num_considered_actions = the game's actions, reply_depth REPLY_DEPTH and
// qtransform_completed_by_mix_value at its defaults, over a recurrent function that plays the
// real rules: every edge has discount -1 (a child's value, from the child's side to move, is
// the parent's with the sign flipped) and the reward of the player who just moved; a terminal
// child has discount 0 and value 0. The arithmetic below follows tree_search.py
// (_gumbel_root_action, _gumbel_interior_action, _score_considered, _considered_visits_table,
// the backward pass) and mctx's qtransforms.py step by step, so the strength measured in Python
// is the strength people play against.
//
// reply_depth is where both depart from mctx: at a node one or three plies below the root (the
// opponent to move), every legal reply gets a visit before any reply gets a second (the highest
// logit first, ties to the lowest index); after that, and at the other depths, Gumbel's rule.
// That rule alone never visits a reply to which the network gives a tiny prior, so a
// refutation it did not expect went unseen at any simulation count (the Othello bot lost 30 of
// 100 games to greedy play, every one a wipeout it believed it was winning; visiting every
// reply one ply down it lost 16, and a later network still lost 11 of 100 at 1024 simulations,
// to wipeouts two moves deep: three plies down it lost 4 of 200).
//
// Differences from Python's search, all deliberate:
//   * mctx computes in float32, this in float64 (the inputs are the network's float32 outputs),
//     so a choice between two near-equal scores can go either way. `closestMargin` reports how
//     close the closest call was. Exact ties go to the lowest action index in both (jnp.argmax).
//   * mctx draws Gumbel noise and multiplies it by 0; here there is none.
//   * Illegal moves stay in mctx's arrays with the logit finfo(float32).min (probability 0, never
//     chosen); here they are skipped, except where mctx's result depends on them: as unvisited
//     moves they take the mixed value, which then counts in the completed Q-values' min and max.
//   * mctx evaluates the network on terminal positions and discards the result; here terminal
//     positions are never evaluated. A walk that reaches a finished game stops there and backs
//     up its value 0, where mctx goes on below it (no-op steps of reward 0, value 0, discount
//     0): every live node gets the same statistics.
//   * mctx also stops a simulation at depth `simulations`, which a tree of at most `simulations`
//     nodes below the root can never reach while the next node is already expanded.

// qtransform_completed_by_mix_value's defaults (mctx 0.0.71): the completed Q-values, rescaled
// to [0, 1], are multiplied by (MAXVISIT_INIT + the node's largest child visit count) *
// VALUE_SCALE, so the search trusts them more against the prior logits as visits grow.
const VALUE_SCALE = 0.1;
const MAXVISIT_INIT = 50;
const MIN_VALUE_SPREAD = 1e-8; // its epsilon: the smallest denominator of the rescaling
const FLOAT32_TINY = 2 ** -126; // jnp.finfo(float32).tiny: the floor of the prior probabilities
const SCORE_FLOOR = -1e9; // _score_considered's floor on a candidate's score
const REPLY_DEPTH = 3; // search.py's REPLY_DEPTH: the deepest replies that are all visited

/**
 * The agent's move in `state` (a live position of `game`).
 *
 * @param evaluate  async (observation Float32Array) -> {logits: Float32Array(A), value: number},
 *                  the network: unmasked policy logits and the side to move's value in [-1, 1].
 * @returns {Promise<{action, visits, prior, policy, netValue, rootValue, closestMargin}>}
 *   action         the move: of the most visited moves, the best by logit + completed Q
 *                  (lowest index on ties); with 0 simulations the argmax of the legal logits
 *   visits         Float32Array(A) root visit counts, as Sequential Halving spent them (zeros
 *                  with 0 simulations)
 *   prior          Float32Array(A) softmax of the logits over the legal moves
 *   policy         Float32Array(A) the search's improved policy, softmax(logits + completed Q)
 *                  over the legal moves (Python's policy target): the move probabilities the
 *                  page shows, as the visits only say how Sequential Halving spent the
 *                  simulations (its finalists get equal shares); the prior with 0 simulations
 *   netValue       the network's value of `state`, side to move's view
 *   rootValue      the search's value of `state`, same view: the Q of its move (the move's
 *                  reward plus its sign-flipped mean value), not the root's mean backed-up
 *                  value, which gives Sequential Halving's finalists equal weight; with 0
 *                  simulations the network's value
 *   closestMargin  the smallest lead of a chosen move's score over the runner-up's, over every
 *                  choice at a live position (each simulation's root choice among Sequential
 *                  Halving's candidates, its choices below the root, and the final move);
 *                  Infinity if none had a runner-up. Scores are logit + scaled Q at the root
 *                  (a few units), logits for a root move's first visit to each reply, and
 *                  improved-policy shares below it otherwise (at most 1): where the margin is
 *                  below float32's rounding of them, Python's search may have chosen otherwise
 */
export async function agentSearch(game, state, evaluate, { simulations }) {
  if (!Number.isInteger(simulations) || simulations < 0) {
    throw new Error(`simulations = ${simulations}: use 0 (the raw network) or more`);
  }
  if (state.terminated) {
    throw new Error('the game is over: there is no move to search');
  }
  const { logits, value } = await evaluateChecked(game, state, evaluate);
  const root = newNode(state, legalLogits(logits, state.legal), value, null, -1, 0, 0);
  const result = (action, visits, policy, rootValue, closestMargin) => ({
    action, visits, prior: Float32Array.from(root.prior), policy: Float32Array.from(policy),
    netValue: value, rootValue, closestMargin,
  });
  if (simulations === 0) {
    return result(argmaxLegal(logits, state.legal), new Float32Array(game.numActions),
      root.prior, value, Infinity);
  }

  const legalCount = state.legal.reduce((count, legal) => count + legal, 0);
  const schedule = consideredVisits(legalCount, simulations);
  let closestMargin = Infinity;
  for (let simulation = 0; simulation < simulations; simulation++) {
    // Each simulation visits one root move, so `simulation` is the root's visit sum, which
    // selects Sequential Halving's column.
    let node = root;
    let depth = 0; // edges from the root to `node`
    let choice = rootChoice(root, schedule[simulation]);
    for (;;) {
      closestMargin = Math.min(closestMargin, choice.margin);
      const child = node.children[choice.action];
      if (child === null) {
        backward(await expand(game, node, choice.action, evaluate));
        break;
      }
      if (child.state.terminated) {
        child.visits += 1; // its value stays 0, the mean of the zeros backed up through it
        backward(child);
        break;
      }
      node = child;
      depth += 1;
      choice = interiorChoice(node, depth);
    }
  }
  const final = rootChoice(root, Math.max(...root.childVisits));
  closestMargin = Math.min(closestMargin, final.margin);
  const qValues = completedQValues(root);
  const policy = softmax(root.logits.map((logit, a) => logit + qValues[a]));
  const move = root.children[final.action];
  return result(final.action, Float32Array.from(root.childVisits), policy,
    move.reward + move.discount * move.value, closestMargin);
}

/**
 * A tree node (mctx keeps these as arrays indexed by node; the edge data `children_rewards`,
 * `children_discounts` and `children_values` of the parent live here on the child).
 * `logits` is null for a finished game, which is never searched from.
 */
function newNode(state, logits, value, parent, actionFromParent, reward, discount) {
  const numActions = state.legal.length;
  return {
    state,
    logits, // Float64Array(A): the network's logits, -Infinity for illegal moves
    prior: logits === null ? null : softmax(logits), // probabilities, 0 for illegal moves
    rawValue: value, // mctx's raw_values: the network's value of the node (0 if finished)
    value, // mctx's node_values: the running mean of backed-up values, side to move's view
    visits: 1, // mctx's node_visits: 1 once expanded, +1 per simulation through the node
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
  let child;
  if (state.terminated) {
    child = newNode(state, null, 0, parent, action, reward, 0);
  } else {
    const { logits, value } = await evaluateChecked(game, state, evaluate);
    child = newNode(state, legalLogits(logits, state.legal), value, parent, action, reward, -1);
  }
  parent.children[action] = child;
  return child;
}

/** mctx's backward: the node's value up to the root, sign-flipped by each edge's discount. */
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
 * _gumbel_root_action with no Gumbel noise (_score_considered): of the legal moves with
 * `consideredVisit` visits, the one with the highest logit + completed Q. Returns
 * {action, margin}: margin = best score - runner-up's (Infinity without a runner-up).
 */
function rootChoice(root, consideredVisit) {
  const qValues = completedQValues(root);
  const legal = root.state.legal;
  const maxLogit = Math.max(...root.logits); // over the legal moves: the others are -Infinity
  const best = new Choice();
  for (let a = 0; a < legal.length; a++) {
    if (legal[a] === 1 && root.childVisits[a] === consideredVisit) {
      best.offer(a, Math.max(SCORE_FLOOR, root.logits[a] - maxLogit + qValues[a]));
    }
  }
  return best;
}

/**
 * _gumbel_interior_action with reply_depth, at `node` `depth` edges below the root: at an odd
 * depth up to REPLY_DEPTH (the opponent to move), while it has a legal move with no visit yet,
 * the one with the highest logit (the unvisited moves share one completed Q, so this is their
 * order by the improved policy); otherwise the move whose share of the visits lags most behind
 * its share of the improved policy softmax(logits + completed Q). Illegal moves score 0 there
 * (no probability, no visits) and some legal move always scores more (the legal scores sum to
 * 1 / (1 + visits)), so only the legal moves are scored.
 */
function interiorChoice(node, depth) {
  const legal = node.state.legal;
  if (depth % 2 === 1 && depth <= REPLY_DEPTH) { // every reply is tried once first
    const unvisited = new Choice();
    for (let a = 0; a < legal.length; a++) {
      if (legal[a] === 1 && node.childVisits[a] === 0) unvisited.offer(a, node.logits[a]);
    }
    if (unvisited.action >= 0) return unvisited;
  }
  const qValues = completedQValues(node);
  const improved = softmax(node.logits.map((logit, a) => logit + qValues[a]));
  let totalVisits = 0;
  for (const visits of node.childVisits) totalVisits += visits;
  const best = new Choice();
  for (let a = 0; a < legal.length; a++) {
    if (legal[a] === 1) best.offer(a, improved[a] - node.childVisits[a] / (1 + totalVisits));
  }
  return best;
}

/** An argmax that keeps the runner-up's score; ties go to the first offered (lowest index). */
class Choice {
  action = -1;
  score = -Infinity;
  runnerUp = -Infinity;

  offer(action, score) {
    if (score > this.score) {
      this.runnerUp = this.score;
      this.score = score;
      this.action = action;
    } else if (score > this.runnerUp) {
      this.runnerUp = score;
    }
  }

  get margin() {
    return this.score - this.runnerUp;
  }
}

/**
 * mctx's qtransform_completed_by_mix_value (value_scale 0.1, maxvisit_init 50, rescaled, mixed
 * value): Float64Array(A). A visited move's Q is its reward plus its discounted value; an
 * unvisited one (illegal moves included) takes the mixed value, the node's raw network value
 * averaged with the prior-weighted Q of the visited moves. Rescaled to [0, 1] over all moves,
 * then scaled by (MAXVISIT_INIT + the largest visit count) * VALUE_SCALE.
 */
function completedQValues(node) {
  const numActions = node.childVisits.length;
  const qValues = new Float64Array(numActions);
  let totalVisits = 0;
  let maxVisits = 0;
  let visitedProbability = 0;
  for (let a = 0; a < numActions; a++) {
    const visits = node.childVisits[a];
    totalVisits += visits;
    maxVisits = Math.max(maxVisits, visits);
    if (visits > 0) {
      const child = node.children[a];
      qValues[a] = child.reward + child.discount * child.value;
      visitedProbability += Math.max(FLOAT32_TINY, node.prior[a]);
    }
  }
  let weightedQ = 0;
  for (let a = 0; a < numActions; a++) {
    if (node.childVisits[a] > 0) {
      weightedQ += Math.max(FLOAT32_TINY, node.prior[a]) * qValues[a] / visitedProbability;
    }
  }
  const mixedValue = (node.rawValue + totalVisits * weightedQ) / (totalVisits + 1);
  let low = Infinity;
  let high = -Infinity;
  for (let a = 0; a < numActions; a++) {
    if (node.childVisits[a] === 0) qValues[a] = mixedValue;
    low = Math.min(low, qValues[a]);
    high = Math.max(high, qValues[a]);
  }
  const spread = Math.max(high - low, MIN_VALUE_SPREAD);
  const scale = (MAXVISIT_INIT + maxVisits) * VALUE_SCALE;
  return qValues.map((q) => scale * ((q - low) / spread));
}

/**
 * _considered_visits_table's row for `numConsidered` moves: entry i is the visit count a root
 * move must have to be chosen by simulation i. Each phase visits every considered move equally,
 * max(1, floor(simulations / (ceil(log2 m) * considered))) times, then halves the considered
 * moves (to no fewer than 2).
 */
function consideredVisits(numConsidered, simulations) {
  if (numConsidered <= 1) return Array.from({ length: simulations }, (_, i) => i);
  let log2 = 0; // ceil(log2(numConsidered)), in integers
  while (2 ** log2 < numConsidered) log2++;
  const sequence = [];
  let visits = 0;
  let considered = numConsidered;
  while (sequence.length < simulations) {
    const extraVisits = Math.max(1, Math.floor(simulations / (log2 * considered)));
    for (let round = 0; round < extraVisits; round++) {
      for (let i = 0; i < considered; i++) sequence.push(visits);
      visits++;
    }
    considered = Math.max(2, Math.floor(considered / 2));
  }
  return sequence.slice(0, simulations);
}

/** The logits as float64, -Infinity for illegal moves (mctx: finfo(float32).min). */
function legalLogits(logits, legal) {
  return Float64Array.from(logits, (logit, a) => (legal[a] === 1 ? logit : -Infinity));
}

/** Softmax of logits with at least one finite entry; -Infinity entries get 0. */
function softmax(logits) {
  const max = Math.max(...logits);
  const probs = logits.map((logit) => Math.exp(logit - max));
  const total = probs.reduce((sum, p) => sum + p, 0);
  return probs.map((p) => p / total);
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
