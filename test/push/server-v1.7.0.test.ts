/**
 * The suite against a niks3 server of exactly v1.7.0 (the protocol version the push targets), which
 * lacks the later routes (`HEAD /api/objects`, `/api/cache-stats`, `/metrics`) and the later
 * multipart conveniences: push round-trips a closure with a multipart NAR that real Nix substitutes
 * with signatures checked, a re-push uploads nothing, gc runs to the end, and status reports what a
 * v1.7.0 server can answer.
 */
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import {
  buildDerivations,
  buildRandomPath,
  copyFromCache,
  nixStoreDump,
  removeStoreRoot,
} from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { pushFakeInputs } from './push-test-support.js';

let fake: FakeNiks3;
let roots: string[] = [];
const storeRoots: string[] = [];

beforeAll(async () => {
  fake = await startFakeNiks3({ version: '1.7.0', gcPhaseDelayMs: 5 });
  const large = await buildRandomPath(11 * 1024 * 1024);
  const built = await buildDerivations({
    leaf: 'echo leaf > $out',
    top: '/bin/mkdir -p $out/sub; echo ${leaf} > $out/sub/ref; echo top > "$out/with space"',
  });
  roots = [built.top as string, large];
}, 180_000);

afterAll(async () => {
  await fake?.close();
  for (const root of storeRoots) removeStoreRoot(root);
});

describe('against a niks3 v1.7.0 server', () => {
  it('push: uploads (multipart included), and Nix substitutes every path with signatures checked', async () => {
    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: roots.join('\n') },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(Number(run.outputs['pushed'])).toBe(3);
    expect(fake.requests.some((r) => r.route === 'POST /api/multipart/complete')).toBe(true);
    // Nothing of HEAD's newer API was needed.
    expect(fake.requests.filter((r) => r.target === 'api' && r.status === 404 && r.path !== '/')).toEqual([]);

    const copy = await copyFromCache(fake.publicUrl, roots[0] as string, {
      trustedPublicKeys: fake.publicKeys,
    });
    storeRoots.push(copy.storeRoot);
    expect(copy.code).toBe(0);
    const again = await copyFromCache(fake.publicUrl, roots[1] as string, {
      trustedPublicKeys: fake.publicKeys,
      storeRoot: copy.storeRoot,
    });
    expect(again.code).toBe(0);
    for (const root of roots)
      expect(nixStoreDump(`${copy.storeRoot}${root}`).equals(nixStoreDump(root))).toBe(true);
  }, 120_000);

  it('push: a second push uploads nothing', async () => {
    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: roots.join('\n') },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.code).toBe(0);
    expect(run.outputs['pushed']).toBe('0');
    expect(run.outputs['uploaded-bytes']).toBe('0');
  }, 60_000);

  it('gc: starts, follows and reports the run', async () => {
    const run = await runAction('gc', {
      inputs: { 'server-url': fake.url, auth: 'token', token: fake.apiToken, 'older-than': '1h' },
      secrets: [fake.apiToken],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['state']).toBe('succeeded');
  }, 60_000);

  it('status: the checks a v1.7.0 server can answer pass', async () => {
    const run = await runAction('status', {
      inputs: { 'server-url': fake.url, 'expected-public-key': fake.publicKeys[0] },
      secrets: [fake.apiToken],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['public-key']).toBe(fake.publicKeys[0]);
  }, 60_000);
});
