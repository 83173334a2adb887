/**
 * Concurrency (issue 7, item 4), through the dist bundles against one fake niks3: two pushes of
 * overlapping closures at the same time, and pushes while a GC runs (held before its first phase,
 * and held between dropping old closures and sweeping the objects nothing references any more).
 * Each ends with a consistent cache: every narinfo's NAR and referenced narinfos present, everything
 * pushed committed (live in the server's database), and a real Nix substitution with signatures
 * required.
 */
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildFixtureClosure, buildTextPath, type FixtureClosure } from '../helpers/nix-fixtures.js';
import { runAction, type ActionRun } from '../helpers/run-action.js';
import { pushFakeInputs } from '../push/push-test-support.js';
import { auditCache, committedProblems, hashPart, substituteAll } from './cache-consistency.js';
import { execFileSync } from 'node:child_process';

const DAY = 24 * 3600_000;
let fx: FixtureClosure;
const fakes: FakeNiks3[] = [];

beforeAll(async () => {
  fx = await buildFixtureClosure();
});

afterAll(async () => {
  for (const fake of fakes) await fake.close();
});

async function fakeServer(options: Parameters<typeof startFakeNiks3>[0] = {}): Promise<FakeNiks3> {
  const fake = await startFakeNiks3(options);
  fakes.push(fake);
  return fake;
}

function explain(run: ActionRun): string {
  return `exit ${run.code}\nerrors: ${run.errors.join(' | ')}\nstdout:\n${run.stdout.slice(-5000)}\nstderr:\n${run.stderr.slice(-2000)}`;
}

function expectOk(run: ActionRun, what: string): void {
  if (run.code !== 0) throw new Error(`${what} failed\n${explain(run)}`);
}

function push(
  fake: FakeNiks3,
  roots: readonly string[],
  inputs: Record<string, string> = {},
): Promise<ActionRun> {
  return runAction('push', {
    inputs: { ...pushFakeInputs(fake), paths: roots.join('\n'), ...inputs },
    secrets: [fake.apiToken, ...fake.secretKeys],
  });
}

function gc(fake: FakeNiks3): Promise<ActionRun> {
  return runAction('gc', {
    inputs: { 'server-url': fake.url, auth: 'token', token: fake.apiToken, force: 'true', confirm: 'force' },
    secrets: [fake.apiToken],
  });
}

/** The closure of some store paths (sorted). */
function closureOf(roots: readonly string[]): string[] {
  const out = execFileSync('nix-store', ['--query', '--requisites', ...roots], { encoding: 'utf8' });
  return [...new Set(out.split('\n').filter(Boolean))].sort();
}

/** Consistent, committed, and substitutable by Nix with signatures required. */
async function expectConsistentCache(fake: FakeNiks3, roots: readonly string[]): Promise<void> {
  const audit = await auditCache(fake);
  if (audit.problems.length > 0) throw new Error(`inconsistent cache:\n${audit.problems.join('\n')}`);
  expect(await committedProblems(fake, closureOf(roots), roots)).toEqual([]);
  const copy = await substituteAll(fake, roots);
  if (copy.code !== 0) throw new Error(`nix copy from the cache failed:\n${copy.stderr}`);
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('two pushes of overlapping closures at the same time', () => {
  it('both succeed and the cache is consistent, with every path substitutable', async () => {
    const fake = await fakeServer();
    const b = fx.byName;
    const first = [b.chain3, b.diamondTop, b.large, b.nested, b.selfRef];
    const second = [b.chain2, b.diamondLeft, b.diamondRight, b.large, b.symlinks, b.singleFile];
    // No session create is answered before all of both pushes' creates (one per root) arrived, so
    // both pushes are told to upload the shared paths, however late the second process starts;
    // slow storage makes their uploads overlap.
    let allArrived = (): void => undefined;
    const barrier = new Promise<void>((resolve) => (allArrived = resolve));
    const creates = (): number =>
      fake.requests.filter(
        (r) => r.target === 'api' && r.method === 'POST' && r.path === '/api/pending_closures',
      ).length;
    fake.faults.add({
      target: 'api',
      method: 'POST',
      path: /^\/api\/pending_closures$/,
      action: { kind: 'delay', ms: 60_000, until: barrier },
    });
    fake.faults.add({ target: 's3', method: 'PUT', action: { kind: 'delay', ms: 40 } });
    const pushes = Promise.all([push(fake, first), push(fake, second)]);
    await until(
      () => creates() >= first.length + second.length,
      'the session creates of both pushes',
      60_000,
    );
    allArrived();
    const [one, two] = await pushes;
    expectOk(one, 'the first push');
    expectOk(two, 'the second push');
    expect(Number(one.outputs['pushed']) + Number(one.outputs['skipped-cached'])).toBe(
      closureOf(first).length,
    );
    expect(Number(two.outputs['pushed']) + Number(two.outputs['skipped-cached'])).toBe(
      closureOf(second).length,
    );
    // They really overlapped: both uploaded the shared paths, the large NAR (multipart) included.
    expect(Number(one.outputs['pushed']) + Number(two.outputs['pushed'])).toBeGreaterThan(
      closureOf([...first, ...second]).length,
    );
    expect(
      fake.requests.filter((r) => r.target === 'api' && r.path === '/api/multipart/complete'),
    ).toHaveLength(2);
    fake.faults.clear();
    await expectConsistentCache(fake, [...new Set([...first, ...second])]);
  }, 120_000);
});

describe('a push during a GC', () => {
  it('held before its first phase: an old root pushed again is kept, a new one is added, the rest of the old closure goes', async () => {
    const fake = await fakeServer();
    const b = fx.byName;
    const old = [b.chain3, b.diamondTop];
    expectOk(await push(fake, old), 'the first push');
    fake.advance(31 * DAY);

    const release = fake.faults.holdGc();
    const collecting = gc(fake);
    await until(() => fake.gcStatus()?.['state'] === 'running', 'the GC to start');
    const fresh = await buildTextPath('pushed while the GC was held\n');
    const during = [b.chain3, fresh];
    const pushed = await push(fake, during);
    release();
    const collected = await collecting;
    expectOk(pushed, 'the push during the GC');
    expectOk(collected, 'the GC');
    expect(collected.outputs['state']).toBe('succeeded');
    expect(Number(collected.outputs['old-closures-deleted'])).toBe(1); // diamondTop's

    const keys = fake.objectKeys();
    expect(keys).not.toContain(`${hashPart(b.diamondTop)}.narinfo`);
    expect(keys).toContain(`${hashPart(b.chain3)}.narinfo`);
    await expectConsistentCache(fake, during);
  }, 120_000);

  it('held after dropping old closures, before sweeping: paths pushed again in between are not swept', async () => {
    // A pause after each phase lets the test hold the GC right after cleanup_old_closures.
    const fake = await fakeServer({ gcPhaseDelayMs: 300 });
    const b = fx.byName;
    expectOk(await push(fake, [b.chain3, b.diamondTop, b.nested]), 'the first push');
    fake.advance(31 * DAY);

    const collecting = gc(fake);
    await until(
      () => fake.gcStatus()?.['phase'] === 'cleanup_old_closures',
      'the GC to drop old closures',
      60_000,
    );
    const release = fake.faults.holdGc();
    // The old closures are gone: chain2, diamondLeft and nested are in the bucket but no closure
    // references them. Pushing them again (they are "cached") must make them live again.
    expect(fake.state.closures.size).toBe(0);
    const fresh = await buildTextPath('pushed between the GC phases\n');
    const during = [b.chain2, b.diamondLeft, b.nested, fresh];
    const pushed = await push(fake, during);
    expectOk(pushed, 'the push during the GC');
    expect(fake.gcStatus()?.['phase']).toBe('cleanup_old_closures');
    release();
    const collected = await collecting;
    expectOk(collected, 'the GC');
    expect(collected.outputs['state']).toBe('succeeded');

    // What only the dropped roots referenced is gone (narinfo and NAR alike); the rest is intact.
    const keys = fake.objectKeys();
    for (const path of [b.chain3, b.diamondTop, b.diamondRight])
      expect(keys).not.toContain(`${hashPart(path)}.narinfo`);
    await expectConsistentCache(fake, during);
  }, 120_000);
});
