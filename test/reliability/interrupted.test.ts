/**
 * Interrupted runs (issue 7, item 5), through the dist bundles: a job that is cancelled sends
 * SIGTERM to the step. A push killed mid-way must leave no narinfo without its NAR (nor one whose
 * references are missing), and the next push completes the rest, after which a real Nix substitution
 * works. A deploy killed mid-way must not leave a lease held, and the next apply repairs it: one
 * machine, booted with the current secrets, the new config, `changed` as expected.
 */
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildFixtureClosure, type FixtureClosure } from '../helpers/nix-fixtures.js';
import { runAction, type ActionRun } from '../helpers/run-action.js';
import { APP, deployFixture, type DeployFixture } from '../deploy/deploy-fixture.js';
import { pushFakeInputs } from '../push/push-test-support.js';
import { auditCache, committedProblems, substituteAll } from './cache-consistency.js';

let fx: FixtureClosure;
const fakes: FakeNiks3[] = [];

beforeAll(async () => {
  fx = await buildFixtureClosure();
});

afterAll(async () => {
  for (const fake of fakes) await fake.close();
});

function explain(run: ActionRun): string {
  return `exit ${run.code} (signal ${run.signal})\nerrors: ${run.errors.join(' | ')}\nstdout:\n${run.stdout.slice(-5000)}\nstderr:\n${run.stderr.slice(-2000)}`;
}

function push(fake: FakeNiks3, extra: Parameters<typeof runAction>[1] = {}): Promise<ActionRun> {
  return runAction('push', {
    ...extra,
    inputs: { ...pushFakeInputs(fake), paths: fx.roots.join('\n'), ...extra.inputs },
    secrets: [fake.apiToken, ...fake.secretKeys],
  });
}

async function expectConsistent(fake: FakeNiks3): Promise<readonly string[]> {
  const audit = await auditCache(fake);
  if (audit.problems.length > 0) throw new Error(`inconsistent cache:\n${audit.problems.join('\n')}`);
  return audit.narinfos;
}

/** The next push completes what the killed one left: everything committed, and Nix substitutes it. */
async function expectCompletedByNextPush(fake: FakeNiks3): Promise<ActionRun> {
  fake.faults.clear();
  const next = await push(fake);
  if (next.code !== 0) throw new Error(`the next push failed\n${explain(next)}`);
  expect(Number(next.outputs['pushed']) + Number(next.outputs['skipped-cached'])).toBe(fx.all.length);
  await expectConsistent(fake);
  expect(await committedProblems(fake, fx.all, fx.roots)).toEqual([]);
  const copy = await substituteAll(fake, fx.roots);
  if (copy.code !== 0) throw new Error(`nix copy from the cache failed:\n${copy.stderr}`);
  return next;
}

const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('a push killed with SIGTERM', () => {
  it('while its first NAR uploads are in flight: no narinfo is left without its NAR, and the next push completes the rest', async () => {
    const fake = await startFakeNiks3();
    fakes.push(fake);
    // Slow storage, so uploads are in flight when the job is cancelled.
    fake.faults.add({ target: 's3', method: 'PUT', action: { kind: 'delay', ms: 300 } });
    const s3Puts = (): number => fake.requests.filter((r) => r.target === 's3' && r.method === 'PUT').length;
    const killed = await push(fake, {
      inputs: { 'max-concurrent-uploads': '4' },
      kill: { signal: 'SIGTERM', when: () => s3Puts() > 0 },
    });
    expect({ code: killed.code, signal: killed.signal }).not.toEqual({ code: 0, signal: null });
    await settle(800); // whatever was in flight lands (or not)
    const narinfos = await expectConsistent(fake);
    // Narinfos are written last, so none was written yet.
    expect(narinfos).toEqual([]);
    expect(fake.state.closures.size).toBe(0);

    const next = await expectCompletedByNextPush(fake);
    expect(Number(next.outputs['pushed'])).toBe(fx.all.length);
  }, 120_000);

  it('while writing narinfos: the narinfos that were written have their NARs and references, and the next push completes the rest', async () => {
    const fake = await startFakeNiks3();
    fakes.push(fake);
    fake.faults.add({ target: 's3', method: 'PUT', path: /\.narinfo$/, action: { kind: 'delay', ms: 250 } });
    const narinfosStored = (): number =>
      fake.requests.filter(
        (r) => r.target === 's3' && r.method === 'PUT' && r.path.endsWith('.narinfo') && r.status === 200,
      ).length;
    const killed = await push(fake, {
      inputs: { 'max-concurrent-uploads': '2' },
      kill: { signal: 'SIGTERM', when: () => narinfosStored() >= 3 },
    });
    expect(killed.code).not.toBe(0);
    await settle(800);
    const narinfos = await expectConsistent(fake);
    expect(narinfos.length).toBeGreaterThanOrEqual(3);
    expect(narinfos.length).toBeLessThan(fx.all.length);
    // The sessions were never completed: the server's database knows none of it yet.
    expect(fake.state.closures.size).toBe(0);

    const next = await expectCompletedByNextPush(fake);
    expect(Number(next.outputs['pushed'])).toBeGreaterThan(0);
  }, 120_000);

  it('between completing sessions: the next push completes the rest', async () => {
    const fake = await startFakeNiks3();
    fakes.push(fake);
    // Each root is its own session: two complete, the others get no answer until the job is cancelled.
    const sessionComplete = /^\/api\/pending_closures\/\d+\/complete$/;
    fake.faults.add({ target: 'api', path: sessionComplete, times: 2, action: { kind: 'delay', ms: 1 } });
    fake.faults.add({ target: 'api', path: sessionComplete, action: { kind: 'hang' } });
    const completed = (): number =>
      fake.requests.filter(
        (r) => r.target === 'api' && sessionComplete.test(r.path) && r.status >= 200 && r.status < 300,
      ).length;
    const killed = await push(fake, { kill: { signal: 'SIGTERM', when: () => completed() >= 2 } });
    expect(killed.code).not.toBe(0);
    await settle(800);
    await expectConsistent(fake);
    expect(fake.state.closures.size).toBe(2);

    await expectCompletedByNextPush(fake);
  }, 120_000);
});

describe('a deploy killed with SIGTERM', () => {
  const NEW_TOKEN = 'tok-after-the-kill-0123456789abcdef0123456789ab';
  const NEW_IMAGE = 'ghcr.io/mic92/niks3:v1.7.1';
  let d: DeployFixture;

  afterEach(async () => {
    await d.close();
  });

  function onlyMachine() {
    const app = d.fly.app(APP);
    app?.tick();
    const machines = app?.liveMachines() ?? [];
    expect(machines).toHaveLength(1);
    return { app: app!, machine: machines[0]! };
  }

  function expectRepaired(run: ActionRun, token: string, image: string): void {
    if (run.code !== 0) throw new Error(`the next apply failed\n${explain(run)}`);
    const { app, machine } = onlyMachine();
    expect([...app.secrets.keys()].sort()).toEqual([
      'NIKS3_API_TOKEN',
      'NIKS3_DB',
      'NIKS3_OIDC_CONFIG_B64',
      'NIKS3_S3_ACCESS_KEY',
      'NIKS3_S3_SECRET_KEY',
      'NIKS3_SIGNING_KEY_FILE_B64',
    ]);
    expect(app.secrets.get('NIKS3_API_TOKEN')?.value).toBe(token);
    expect(machine.state).toBe('started');
    expect(machine.activeLease()).toBeUndefined();
    expect(machine.current.config['image']).toBe(image);
    expect(machine.current.boot?.env['NIKS3_API_TOKEN']).toBe(token);
    expect(machine.current.boot?.secretsVersion).toBe(app.secretsVersion);
    expect(run.outputs['machine-id']).toBe(machine.id);
  }

  it('during the machine update: the lease is released on the way out, and the next apply makes the update', async () => {
    d = await deployFixture();
    const first = await d.run();
    expect(first.code).toBe(0);
    // The update request never gets an answer (and does not take effect) until the job is cancelled.
    d.fly.faults.add({ route: 'POST /v1/apps/:app/machines/:id', times: 1, action: { kind: 'hang' } });
    const updateSent = (): boolean =>
      d.fly.requests.some((r) => r.route === 'POST /v1/apps/:app/machines/:id');
    const killed = await d.run(
      { 'niks3-api-token': NEW_TOKEN, 'niks3-image': NEW_IMAGE },
      { kill: { signal: 'SIGTERM', when: () => updateSent() } },
    );
    expect(killed.code).toBe(143);
    expect(killed.warnings.join('\n')).toMatch(/SIGTERM: releasing 1 machine lease/);
    // The secrets were already written; the machine still runs the old version, and no lease is held.
    const { app, machine } = onlyMachine();
    expect(app.secrets.get('NIKS3_API_TOKEN')?.value).toBe(NEW_TOKEN);
    expect(machine.current.config['image']).toBe('ghcr.io/mic92/niks3:v1.7.0');
    expect(machine.activeLease()).toBeUndefined();

    d.fly.faults.clear();
    const next = await d.run({ 'niks3-api-token': NEW_TOKEN, 'niks3-image': NEW_IMAGE });
    expectRepaired(next, NEW_TOKEN, NEW_IMAGE);
    expect(next.outputs['changed']).toBe('true');
    // (The secrets are written again: the machine's fingerprint of them is still the old one.)
    expect(JSON.parse(next.outputs['plan'] ?? '[]')).toContainEqual(
      expect.objectContaining({ action: 'update-machine' }),
    );
  }, 120_000);

  it('while waiting for the updated machine to boot: the next apply finds the update made and waits for a healthy machine', async () => {
    // The new image boots slowly (about 3 s real time), so the kill lands in the wait.
    d = await deployFixture({ images: { [NEW_IMAGE]: 'slowboot' }, bootDelayMs: 6_000 });
    const first = await d.run();
    expect(first.code).toBe(0);
    const updated = (): boolean =>
      d.fly.requests.some((r) => r.route === 'POST /v1/apps/:app/machines/:id' && r.status === 200);
    const killed = await d.run(
      { 'niks3-api-token': NEW_TOKEN, 'niks3-image': NEW_IMAGE },
      { kill: { signal: 'SIGTERM', when: () => updated() } },
    );
    expect(killed.code).toBe(143);
    const { machine } = onlyMachine();
    expect(machine.activeLease()).toBeUndefined();
    expect(machine.current.config['image']).toBe(NEW_IMAGE);
    expect(machine.state).not.toBe('started');

    const next = await d.run({ 'niks3-api-token': NEW_TOKEN, 'niks3-image': NEW_IMAGE });
    expectRepaired(next, NEW_TOKEN, NEW_IMAGE);
    // The update itself was made by the killed run.
    expect(next.outputs['changed']).toBe('false');
  }, 120_000);
});
