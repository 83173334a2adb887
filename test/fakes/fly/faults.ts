/**
 * Fault injection for the Fly stand-in (spec fly.md §8.7), in the language of every fake
 * (`../faults.ts`: matching, `skip`, `times` unlimited unless given, `probability` and `seed`).
 * What is Fly's own:
 *
 * - one listener, so no `target`; `route` names a route as the router does and as the request
 *   log's `route` shows it (`POST /v1/apps/:app/machines`, `POST /graphql`); `path` is the request
 *   path without a trailing slash;
 * - a `status` answer without a body is `{ "error": … }` (rate limit exceeded for a 429, request
 *   timed out for a 408, internal error otherwise); a given `body` is sent as is, as JSON;
 *   `Retry-After` goes in `headers`;
 * - `reset`, `delay` and `hang` (with `ms`: the connection is dropped after that long);
 * - `afterHandling` with `status`, `reset` or `hang`: the work is done (state changes happen), the
 *   answer is lost or replaced (an ambiguous create). The request log's `fault` says `after-commit`.
 */
import { FaultInjector, type FaultAction, type FaultKind, type FaultRule } from '../faults.js';

export type FlyFaultAction = Exclude<FaultAction, { kind: 'reset-mid-body' }>;

/** A fault rule of the Fly stand-in. */
export type FlyFaultRule = FaultRule<never, FlyFaultAction>;

/** What the request log records of a fault. */
export type FlyFaultLabel = Exclude<FaultKind, 'reset-mid-body'> | 'after-commit';

export class FlyFaults extends FaultInjector<FlyFaultRule> {
  constructor() {
    super({
      fake: 'Fly',
      support: { kinds: ['status', 'reset', 'delay', 'hang'], afterHandling: ['status', 'reset', 'hang'] },
    });
  }
}
