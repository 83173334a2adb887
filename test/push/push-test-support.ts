/** Shared bits of the push tests: inputs pointing the action at a fake, store path helpers. */
import type { FakeNiks3 } from '../fakes/niks3/index.js';

/** Inputs for a token push to `fake` with the upstream filter off (tests have no internet). */
export function pushFakeInputs(fake: FakeNiks3, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'server-url': fake.url,
    auth: 'token',
    token: fake.apiToken,
    'upstream-filter': 'false',
    'connect-timeout': '10',
    ...extra,
  };
}

/** The 32-character hash part of a store path. */
export function storeHash(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1, path.lastIndexOf('/') + 33);
}
