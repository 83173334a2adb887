/**
 * 200 paths through the bundle: the first push uploads them all; a second push of the same
 * closure uploads nothing, with a bounded number of API requests and none per path beyond the
 * session that settles it (as one root, and as 200 roots). How long it takes is for `npm run bench`.
 */
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildDerivations } from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { pushFakeInputs } from './push-test-support.js';

let fake: FakeNiks3;
let paths: Record<string, string>;

beforeAll(async () => {
  const scripts: Record<string, string> = {};
  for (let i = 0; i < 199; i++) scripts[`p${i}`] = `echo ${i} > $out`;
  scripts['top'] =
    `/bin/mkdir $out; echo ${Array.from({ length: 199 }, (_, i) => `\${p${i}}`).join(' ')} > $out/deps`;
  [fake, paths] = await Promise.all([startFakeNiks3(), buildDerivations(scripts, { namePrefix: 'many-' })]);
}, 120_000);

afterAll(async () => {
  await fake?.close();
});

/** The requests a push made to the fake's API, as "METHOD path" with ids masked. */
function apiCalls(from: number): string[] {
  return fake.requests
    .slice(from)
    .filter((r) => r.target === 'api')
    .map((r) => `${r.method} ${r.path.replace(/\/\d+(?=\/|$)/g, '/ID')}`);
}

describe('push of 200 paths (bundle, real Nix)', () => {
  it('pushes 200 paths, then a second push uploads nothing and asks only for its sessions', async () => {
    const first = await runAction('push', {
      inputs: pushFakeInputs(fake, { paths: paths['top'] as string }),
      secrets: [fake.apiToken],
    });
    expect(first.code).toBe(0);
    expect(first.outputs['pushed']).toBe('200');

    const before = fake.requests.length;
    const objectsAfterFirst = fake.objectKeys().length;
    const second = await runAction('push', {
      inputs: pushFakeInputs(fake, { paths: paths['top'] as string }),
      secrets: [fake.apiToken],
    });
    expect(second.code).toBe(0);
    expect(second.outputs['pushed']).toBe('0');
    expect(second.outputs['skipped-cached']).toBe('200');
    expect(fake.requests.slice(before).filter((r) => r.target === 's3')).toEqual([]);
    // The only public reads are verify's look at the one root's narinfo and its NAR.
    expect(fake.requests.slice(before).filter((r) => r.target === 'public').length).toBeLessThanOrEqual(2);
    const calls = apiCalls(before);
    // First contact (health, cache-config), one session for the one root, its complete: no request per path.
    expect(calls.filter((c) => c === 'POST /api/pending_closures')).toHaveLength(1);
    expect(calls.length).toBeLessThanOrEqual(5);
    expect(calls.filter((c) => /sign|multipart|objects/.test(c))).toEqual([]);
    expect(fake.objectKeys().length).toBe(objectsAfterFirst);

    const beforeRoots = fake.requests.length;
    const asRoots = await runAction('push', {
      inputs: pushFakeInputs(fake, { paths: Object.values(paths).join('\n') }),
      secrets: [fake.apiToken],
    });
    expect(asRoots.code).toBe(0);
    expect(asRoots.outputs['skipped-cached']).toBe('200');
    expect(fake.requests.slice(beforeRoots).filter((r) => r.target === 's3')).toEqual([]);
    expect(fake.requests.slice(beforeRoots).filter((r) => r.target === 'public').length).toBeLessThanOrEqual(
      400,
    );
    const rootCalls = apiCalls(beforeRoots);
    // One session per root (the protocol's unit), nothing else per path.
    expect(rootCalls.filter((c) => c === 'POST /api/pending_closures')).toHaveLength(200);
    expect(rootCalls.length).toBeLessThanOrEqual(200 * 2 + 3);
    expect(rootCalls.filter((c) => /sign|multipart|objects/.test(c))).toEqual([]);
    expect(fake.objectKeys().length).toBe(objectsAfterFirst);
  }, 120_000);
});
