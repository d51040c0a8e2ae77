// The games the site plays, by the names Python uses (cartridge_jax.games.names()).

import { game as connect4 } from './connect4.js';
import { game as othello } from './othello.js';
import { game as tictactoe } from './tictactoe.js';

export const GAMES = Object.freeze({ tictactoe, connect4, othello });

/** The game called `name`; throws, naming the known games, for any other name. */
export function getGame(name) {
  if (!Object.hasOwn(GAMES, name)) {
    throw new Error(`unknown game '${name}': use one of ${Object.keys(GAMES).join(', ')}`);
  }
  return GAMES[name];
}
