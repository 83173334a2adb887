/**
 * The push under faults, through the bundle: a flaky server and storage (20 % of API calls 503,
 * 10 % of uploads dropped mid-body, a 429 with Retry-After) still give a complete, substitutable
 * push; a server or storage that is down for good fails the step (or warns) with a message that
 * says what was and was not pushed, and leaves no narinfo for a path whose NAR is incomplete.
 */
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import {
  buildFixtureClosure,
  buildTextPath,
  copyFromCache,
  nixStoreDump,
  removeStoreRoot,
} from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { pushFakeInputs, storeHash } from './push-test-support.js';

const fakes: FakeNiks3[] = [];
const storeRoots: string[] = [];

async function fakeServer(): Promise<FakeNiks3> {
  const fake = await startFakeNiks3();
  fakes.push(fake);
  return fake;
}

afterAll(async () => {
  for (const fake of fakes) await fake.close();
  for (const root of storeRoots) removeStoreRoot(root);
});

describe('push under faults (bundle, real Nix)', () => {
  it('completes with 20 % API 503s, 10 % uploads reset mid-body and a 429, and the round trip holds', async () => {
    const [fake, fx] = await Promise.all([fakeServer(), buildFixtureClosure()]);
    const api503 = fake.faults.add({
      target: 'api',
      path: /^\/api\//,
      probability: 0.2,
      action: { status: 503 },
      name: 'api-503',
    });
    const resets = fake.faults.add({
      target: 's3',
      method: 'PUT',
      probability: 0.1,
      action: { kind: 'reset-mid-body' },
      name: 'reset',
    });
    const throttle = fake.faults.add({
      target: 'api',
      path: /pending_closures$/,
      times: 1,
      action: { status: 429, headers: { 'retry-after': '1' } },
    });

    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: fx.roots.join('\n') },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(Number(run.outputs['pushed'])).toBe(fx.all.length);
    expect(api503.hits()).toBeGreaterThan(3);
    expect(resets.hits()).toBeGreaterThan(0);
    expect(throttle.hits()).toBe(1);
    fake.faults.clear();

    const copy = await copyFromCache(fake.publicUrl, fx.byName.large, { trustedPublicKeys: fake.publicKeys });
    storeRoots.push(copy.storeRoot);
    expect(copy.code).toBe(0);
    for (const root of fx.roots) {
      const again = await copyFromCache(fake.publicUrl, root, {
        trustedPublicKeys: fake.publicKeys,
        storeRoot: copy.storeRoot,
      });
      expect({ root, code: again.code }).toEqual({ root, code: 0 });
    }
    for (const path of fx.all)
      expect(nixStoreDump(`${copy.storeRoot}${path}`).equals(nixStoreDump(path))).toBe(true);
  }, 120_000);

  it('a NAR whose upload cannot be completed gets no narinfo; the rest is pushed; the step says what was not pushed', async () => {
    const [fake, fx] = await Promise.all([fakeServer(), buildFixtureClosure()]);
    fake.faults.add({ target: 'api', path: /^\/api\/multipart\/complete$/, action: { status: 503 } });
    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: fx.roots.join('\n'), 'max-concurrent-uploads': '4' },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.code).toBe(1);
    const message = run.errors.join('\n');
    expect(message).toMatch(/NOT pushed/);
    expect(message).toContain(fx.byName.large);
    expect(message).toMatch(/No narinfo was written for any path that is not pushed/);
    const keys = fake.objectKeys();
    expect(keys).not.toContain(`${storeHash(fx.byName.large)}.narinfo`);
    // The multipart upload was never completed, so no NAR object of it exists either.
    const largeNar = fake.requests.find((r) => r.target === 's3' && /partNumber=1(&|$)/.test(r.query))?.path;
    expect(largeNar).toBeDefined();
    expect(keys.some((key) => largeNar?.endsWith(key))).toBe(false);
    // Its session is left open; the summary lists what was pushed and what was not.
    expect(fake.state.closures.has(`${storeHash(fx.byName.large)}.narinfo`)).toBe(false);
    expect(run.summary).toMatch(/not pushed/);
    // Paths whose NAR did upload are complete and substitutable, whatever the pool got to.
    const pushed = fx.all.filter((path) => keys.includes(`${storeHash(path)}.narinfo`));
    const copy = await copyFromCache(fake.publicUrl, fx.byName.singleFile, {
      trustedPublicKeys: fake.publicKeys,
    });
    storeRoots.push(copy.storeRoot);
    if (pushed.includes(fx.byName.singleFile)) expect(copy.code).toBe(0);
    for (const path of pushed) {
      const again = await copyFromCache(fake.publicUrl, path, {
        trustedPublicKeys: fake.publicKeys,
        storeRoot: copy.storeRoot,
      });
      expect({ path, code: again.code }).toEqual({ path, code: 0 });
    }
  }, 120_000);

  it('storage down for good: the step fails, nothing gets a narinfo, and the message says so', async () => {
    const [fake, path] = await Promise.all([fakeServer(), buildTextPath('storage is down\n')]);
    await fake.down('s3');
    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: path },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.code).toBe(1);
    const message = run.errors.join('\n');
    expect(message).toMatch(/1 of 1 path\(s\) were NOT pushed \(0 are in the cache\)/);
    expect(message).toContain(path);
    expect(fake.objectKeys().filter((key) => key.endsWith('.narinfo'))).toEqual([]);
    expect(fake.state.closures.size).toBe(0);
  }, 60_000);

  it('server down for good: fails naming the server and connect-timeout; with on-failure: warn it only warns', async () => {
    const [fake, path] = await Promise.all([fakeServer(), buildTextPath('server is down\n')]);
    await fake.down();
    const failed = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: path, 'connect-timeout': '2' },
      secrets: [fake.apiToken],
    });
    expect(failed.code).toBe(1);
    expect(failed.errors.join('\n')).toMatch(
      /niks3: first contact failed.*no answer within 2 s.*connect-timeout/s,
    );

    const warned = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: path, 'connect-timeout': '2', 'on-failure': 'warn' },
      secrets: [fake.apiToken],
    });
    expect(warned.code).toBe(0);
    expect(warned.errors).toEqual([]);
    expect(warned.warnings.join('\n')).toMatch(/nothing was pushed/);
    expect(warned.outputs['pushed']).toBe('0');
  }, 60_000);
});
