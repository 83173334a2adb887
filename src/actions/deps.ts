/**
 * The primitives every action takes from the outside world, under the same names in all five
 * `run(io, deps)`. Each action's deps type extends `ActionDeps` with its own fields; its remote
 * clients are built inside `run` from these primitives and the URLs of its inputs, so a test points
 * the real clients at the stand-ins and replaces only a primitive or a knob.
 */
import { sleep, type Sleep } from '../core/http.js';
import { nodeFetch } from '../core/node-http.js';

export interface ActionDeps {
  /** Every HTTP request the action's clients send. */
  readonly fetch: typeof fetch;
  /** Every pause: retry back-off, polls. */
  readonly sleep: Sleep;
  /** The clock (ms since the epoch) of deadlines and polls. */
  readonly now: () => number;
}

/**
 * The real primitives: `nodeFetch` (fetch over kept-alive node:http connections, a third of the
 * global fetch's CPU per request; it hands what it does not cover to the global fetch), a timer,
 * `Date.now`.
 */
export function actionDeps(): ActionDeps {
  return { fetch: nodeFetch, sleep, now: Date.now };
}
