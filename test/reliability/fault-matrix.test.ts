/**
 * The fault matrix (issue 7, item 2): every action, through its dist bundle, against each fake it
 * talks to, under six faults: a 429 with Retry-After, a burst of 503s, a 500 on a writing call, a
 * request that hangs past the timeout, a connection reset in the middle of a body, and a remote that
 * is down for good.
 *
 * Each case must end in one of two ways:
 * - converged and correct: the fake's state is what a clean run gives (bucket + domain with their
 *   settings; app + IPs + secrets + one started machine booted with them and no lease held; every
 *   path's narinfo with its NAR, committed, and a real Nix substitution of the closure; the GC
 *   finished with the old closure gone and the fresh one kept; a healthy status);
 * - failed (exit 1) with a message that names the remote, the operation and what to do; then, with
 *   the fault lifted, the next run converges.
 * After every run, failed ones included, the state must be one the next run can repair: no narinfo
 * without its NAR, no custom domain on a missing bucket, no machine without its secrets, no lease left
 * held, no second machine. Converged cases also check that one more run changes nothing.
 *
 * Hangs use the timeouts the actions let a user set: push and gc hang on their first contact with
 * `connect-timeout: 2` (later niks3 calls have a fixed 60 s per attempt, uploads 120 s), status uses
 * its `timeout`; provision and deploy have no such input, so those cases wait out the real 30 s
 * client timeout. Resets mid-body come from the fakes (niks3) or from a cutting proxy in front of
 * them (Cloudflare, Fly), which also plays "down for good" for those two.
 *
 * Cases run concurrently (each with its own fakes), so the few that wait 30 s overlap with the
 * rest. The counts per action are printed at the end.
 */
import {
  startFakeCloudflare,
  type CloudflareFaultRule,
  type FakeCloudflare,
} from '../fakes/cloudflare/index.js';
import type { FaultInjector, FaultRule } from '../fakes/faults.js';
import {
  LOCAL_ORG_TOKEN,
  seedAppWithMachine,
  startFakeFly,
  type FakeFly,
  type FlyFaultRule,
} from '../fakes/fly/index.js';
import { startFakeNiks3, type FakeNiks3, type Niks3FaultRule } from '../fakes/niks3/index.js';
import { seedClosure, type SeededClosure } from '../gc/seed-closures.js';
import { buildFixtureClosure, type FixtureClosure } from '../helpers/nix-fixtures.js';
import { runAction, type ActionRun } from '../helpers/run-action.js';
import { APP, deployFixture, type DeployFixture } from '../deploy/deploy-fixture.js';
import {
  BUCKET,
  HOST,
  startProvisionFixture,
  type ProvisionFixture,
} from '../provision/provision-fixture.js';
import { pushFakeInputs } from '../push/push-test-support.js';
import { auditCache, committedProblems, hashPart, substituteAll } from './cache-consistency.js';
import { startCuttingProxy, type CuttingProxy } from './cutting-proxy.js';

type FaultKind =
  | '429 + Retry-After'
  | 'burst of 503s'
  | '500 on a write'
  | 'hang past the timeout'
  | 'reset mid-body'
  | 'down for good';

type Expectation = 'converge' | 'fail' | 'either';

interface Injected {
  /** How often the fault hit (must be > 0: a fault that never fired tests nothing). */
  fired(): number;
  /** Removes the fault (the remote is healthy again). */
  lift(): Promise<void> | void;
}

interface FaultCase<H> {
  readonly kind: FaultKind;
  /** Where the fault hits (test name). */
  readonly where: string;
  readonly expect: Expectation;
  /** Runs before the fault is injected (e.g. an earlier, clean deploy). */
  prepare?(h: H): Promise<void>;
  /** Inputs of every run of this case (the desired state). */
  readonly inputs?: Record<string, string>;
  /** Inputs of the faulted run only (e.g. a short timeout). */
  readonly faultedInputs?: Record<string, string>;
  inject(h: H): Promise<Injected> | Injected;
  /** On failure, the message must name this operation. */
  readonly operation?: RegExp;
}

interface Harness<H> {
  readonly action: string;
  readonly fake: string;
  /** On failure, the message must name the remote. */
  readonly remote: RegExp;
  start(): Promise<H>;
  run(h: H, inputs: Record<string, string>): Promise<ActionRun>;
  /** Must hold after every run, failed ones included. */
  invariants(h: H): Promise<void> | void;
  /** The state after a successful run. */
  converged(h: H, run: ActionRun, inputs: Record<string, string>): Promise<void> | void;
  /** One more run after convergence: it must change nothing. */
  steady?(h: H, run: ActionRun): Promise<void> | void;
  close(h: H): Promise<void>;
  readonly cases: ReadonlyArray<FaultCase<H>>;
}

/** "What to do" in a failure message. */
const HINT = /re-?run|run (it |the \w+ |\w+ )?again|\bcheck\b|raise|wait|later|retry|reachable/i;
const CASE_TIMEOUT_MS = 170_000;
const DAY = 24 * 3600_000;

const tally = new Map<string, { converged: number; repaired: number }>();
/** One line per failed-then-repaired case: the message the user would have seen. */
const failures: string[] = [];

function explain(run: ActionRun): string {
  return `exit ${run.code} (signal ${run.signal})\nerrors: ${run.errors.join(' | ')}\nstdout:\n${run.stdout.slice(-6000)}\nstderr:\n${run.stderr.slice(-3000)}`;
}

function expectExit(run: ActionRun, code: number, what: string): void {
  if (run.code !== code) throw new Error(`${what}: expected exit ${code}\n${explain(run)}`);
}

function expectNoProblems(problems: readonly string[], what: string): void {
  if (problems.length > 0) throw new Error(`${what}:\n${problems.join('\n')}`);
}

function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= make());
}

async function runCase<H>(harness: Harness<H>, c: FaultCase<H>): Promise<void> {
  const h = await harness.start();
  try {
    const inputs = c.inputs ?? {};
    await c.prepare?.(h);
    const fault = await c.inject(h);
    const first = await harness.run(h, { ...inputs, ...c.faultedInputs });
    await harness.invariants(h);
    if (fault.fired() === 0) throw new Error(`the fault never fired\n${explain(first)}`);
    if (first.code === 0) {
      if (c.expect === 'fail') throw new Error(`expected the run to fail\n${explain(first)}`);
      await fault.lift();
      await harness.converged(h, first, inputs);
      tally.get(`${harness.action} × ${harness.fake}`)!.converged += 1;
    } else {
      if (c.expect === 'converge') throw new Error(`expected the run to converge\n${explain(first)}`);
      expectExit(first, 1, 'the faulted run');
      const message = first.errors.join('\n');
      if (!harness.remote.test(message) || !(c.operation ?? /./).test(message) || !HINT.test(message)) {
        throw new Error(
          `the failure must name the remote (${String(harness.remote)}), the operation (${String(c.operation)}) and what to do (${String(HINT)}):\n${message}`,
        );
      }
      await fault.lift();
      const repaired = await harness.run(h, inputs);
      await harness.invariants(h);
      expectExit(repaired, 0, 'the run after the fault was lifted');
      await harness.converged(h, repaired, inputs);
      tally.get(`${harness.action} × ${harness.fake}`)!.repaired += 1;
      failures.push(
        `  ${harness.action}, ${c.kind} (${c.where}): ${message.split('\n')[0]?.slice(0, 300) ?? ''}`,
      );
    }
    if (harness.steady) {
      const again = await harness.run(h, inputs);
      expectExit(again, 0, 'one more run');
      await harness.steady(h, again);
      await harness.invariants(h);
    }
  } finally {
    await harness.close(h);
  }
}

function matrix<H>(harness: Harness<H>): void {
  tally.set(`${harness.action} × ${harness.fake}`, { converged: 0, repaired: 0 });
  describe(`${harness.action} × ${harness.fake}`, () => {
    for (const c of harness.cases) {
      it.concurrent(
        `${c.kind}: ${c.where} (${c.expect === 'either' ? 'converges, or fails and is repaired' : c.expect === 'fail' ? 'fails clearly, then is repaired' : 'converges'})`,
        () => runCase(harness, c),
        CASE_TIMEOUT_MS,
      );
    }
  });
}

// ---- provision × Cloudflare --------------------------------------------------------------------

interface ProvisionH {
  readonly f: ProvisionFixture;
  readonly proxy: CuttingProxy;
}

/** A rule on one of the fakes (they share one fault language, `test/fakes/faults.ts`). */
function ruleFault<R extends FaultRule>(faults: FaultInjector<R>, rule: R): Injected {
  const handle = faults.add(rule);
  return { fired: () => handle.hits(), lift: () => faults.clear() };
}

function cfFault(h: ProvisionH, rule: CloudflareFaultRule): Injected {
  return ruleFault(h.f.cf.faults, rule);
}

function proxyDown(proxy: CuttingProxy): Promise<Injected> {
  return proxy.down().then(() => ({ fired: () => 1, lift: () => proxy.up() }));
}

const provisionBase = {
  remote: /Cloudflare API/,
  async start(): Promise<ProvisionH> {
    const f = await startProvisionFixture();
    return { f, proxy: await startCuttingProxy(f.cf.origin) };
  },
  run(h: ProvisionH, inputs: Record<string, string>): Promise<ActionRun> {
    return runAction('provision', {
      inputs: h.f.inputs({ 'cloudflare-api-url': `${h.proxy.url}/client/v4`, ...inputs }),
      secrets: [h.f.token.value],
      timeoutMs: CASE_TIMEOUT_MS,
    });
  },
  invariants(h: ProvisionH): void {
    // No custom domain on a bucket that does not exist; never a second bucket.
    for (const domain of h.f.cf.state.domains.values()) {
      expect({
        domain: domain.domain,
        bucket: h.f.cf.state.bucket(domain.accountId, domain.jurisdiction, domain.bucket)?.name,
      }).toEqual({
        domain: domain.domain,
        bucket: domain.bucket,
      });
    }
    expect(h.f.cf.state.buckets.size).toBeLessThanOrEqual(1);
  },
  async close(h: ProvisionH): Promise<void> {
    await h.proxy.close();
    await h.f.close();
  },
};

const provisionApply: Harness<ProvisionH> = {
  ...provisionBase,
  action: 'provision',
  fake: 'Cloudflare',
  converged(h, run) {
    expectExit(run, 0, 'provision');
    const buckets = [...h.f.cf.state.buckets.values()];
    expect(buckets.map((b) => [b.name, b.jurisdiction, b.location, b.storageClass])).toEqual([
      [BUCKET, 'default', 'ENAM', 'Standard'],
    ]);
    expect([...h.f.cf.state.domains.keys()]).toEqual([HOST]);
    expect(h.f.cf.state.domains.get(HOST)).toMatchObject({
      bucket: BUCKET,
      zoneId: h.f.zone.id,
      enabled: true,
      minTLS: '1.2',
    });
    expect(run.outputs['custom-domain-status']).toBe('active');
    h.f.cf.log.clear();
  },
  steady(h, run) {
    expect(run.outputs['changed']).toBe('false');
    expect(h.f.cf.log.writes()).toEqual([]);
  },
  cases: [
    {
      kind: '429 + Retry-After',
      where: 'bucket create, twice',
      expect: 'converge',
      inject: (h) =>
        cfFault(h, {
          path: '/r2/buckets',
          method: 'POST',
          times: 2,
          action: {
            status: 429,
            errors: [{ code: 10058, message: 'TooManyRequests' }],
            headers: { 'retry-after': '1' },
          },
        }),
    },
    {
      kind: 'burst of 503s',
      where: 'bucket reads, three in a row',
      expect: 'converge',
      inject: (h) =>
        cfFault(h, { path: `/r2/buckets/${BUCKET}`, method: 'GET', times: 3, action: { status: 503 } }),
    },
    {
      kind: '500 on a write',
      where: 'custom domain create, after it took effect',
      expect: 'converge',
      inject: (h) =>
        cfFault(h, {
          path: '/domains/custom',
          method: 'POST',
          times: 1,
          afterHandling: true,
          action: { status: 500 },
        }),
    },
    {
      kind: 'hang past the timeout',
      where: 'bucket read (30 s client timeout)',
      expect: 'converge',
      inject: (h) =>
        cfFault(h, { path: `/r2/buckets/${BUCKET}`, method: 'GET', times: 1, action: { kind: 'hang' } }),
    },
    {
      kind: 'reset mid-body',
      where: 'bucket create answer, after it took effect',
      expect: 'converge',
      inject: (h) => {
        const rule = h.proxy.cut({ method: 'POST', path: /\/r2\/buckets$/, times: 1 });
        return { fired: () => rule.hits(), lift: () => h.proxy.clear() };
      },
    },
    {
      kind: 'down for good',
      where: 'the whole API',
      expect: 'fail',
      operation: /zone|GET \/zones|token/,
      inject: (h) => proxyDown(h.proxy),
    },
  ],
};

// ---- provision (destroy) × Cloudflare ----------------------------------------------------------

const DESTROY = { mode: 'destroy', confirm: BUCKET, 'delete-data': 'true' };

async function provisioned(h: ProvisionH): Promise<void> {
  const run = await provisionBase.run(h, {});
  expectExit(run, 0, 'the provision before the destroy');
  const bucket = h.f.cf.state.bucket(h.f.account.id, 'default', BUCKET);
  for (let i = 0; i < 3; i++) h.f.cf.state.putObject(bucket!, `nar/${i}.nar.zst`, `object ${i}`);
}

const provisionDestroy: Harness<ProvisionH> = {
  ...provisionBase,
  action: 'provision (destroy)',
  fake: 'Cloudflare',
  converged(h, run) {
    expectExit(run, 0, 'provision destroy');
    expect(h.f.cf.state.buckets.size).toBe(0);
    expect(h.f.cf.state.domains.size).toBe(0);
    h.f.cf.log.clear();
  },
  steady(h, run) {
    expect(run.outputs['changed']).toBe('false');
    expect(h.f.cf.log.writes()).toEqual([]);
  },
  cases: [
    {
      kind: '429 + Retry-After',
      where: 'bucket delete',
      expect: 'converge',
      inputs: DESTROY,
      prepare: provisioned,
      inject: (h) =>
        cfFault(h, {
          path: `/r2/buckets/${BUCKET}`,
          method: 'DELETE',
          times: 1,
          action: {
            status: 429,
            errors: [{ code: 10058, message: 'TooManyRequests' }],
            headers: { 'retry-after': '1' },
          },
        }),
    },
    {
      kind: 'burst of 503s',
      where: 'custom domain reads',
      expect: 'converge',
      inputs: DESTROY,
      prepare: provisioned,
      inject: (h) =>
        cfFault(h, { path: '/domains/custom', method: 'GET', times: 3, action: { status: 503 } }),
    },
    {
      kind: '500 on a write',
      where: 'every custom domain delete',
      expect: 'fail',
      inputs: DESTROY,
      operation: /custom domain/,
      prepare: provisioned,
      inject: (h) =>
        cfFault(h, { path: `/domains/custom/${HOST}`, method: 'DELETE', action: { status: 500 } }),
    },
    {
      kind: 'hang past the timeout',
      where: 'custom domain delete (30 s client timeout)',
      expect: 'converge',
      inputs: DESTROY,
      prepare: provisioned,
      inject: (h) =>
        cfFault(h, { path: `/domains/custom/${HOST}`, method: 'DELETE', times: 1, action: { kind: 'hang' } }),
    },
    {
      kind: 'reset mid-body',
      where: 'bucket delete answer, after it took effect',
      expect: 'converge',
      inputs: DESTROY,
      prepare: provisioned,
      inject: (h) => {
        const rule = h.proxy.cut({ method: 'DELETE', path: new RegExp(`/r2/buckets/${BUCKET}$`), times: 1 });
        return { fired: () => rule.hits(), lift: () => h.proxy.clear() };
      },
    },
    {
      kind: 'down for good',
      where: 'the whole API',
      expect: 'fail',
      inputs: DESTROY,
      operation: /zone|GET \/zones|token|bucket/,
      prepare: provisioned,
      inject: (h) => proxyDown(h.proxy),
    },
  ],
};

// ---- deploy × Fly ------------------------------------------------------------------------------

interface DeployH {
  readonly fx: DeployFixture;
  readonly proxy: CuttingProxy;
}

const SECRET_NAMES = [
  'NIKS3_API_TOKEN',
  'NIKS3_DB',
  'NIKS3_OIDC_CONFIG_B64',
  'NIKS3_S3_ACCESS_KEY',
  'NIKS3_S3_SECRET_KEY',
  'NIKS3_SIGNING_KEY_FILE_B64',
];
const NEW_API_TOKEN = 'tok-rotated-0123456789abcdef0123456789abcdef01';
const NEW_IMAGE = 'ghcr.io/mic92/niks3:v1.7.1';

function flyFault(h: DeployH, rule: FlyFaultRule): Injected {
  return ruleFault(h.fx.fly.faults, rule);
}

async function deployed(h: DeployH): Promise<void> {
  const run = await deploy.run(h, {});
  expectExit(run, 0, 'the first deploy');
}

const deploy: Harness<DeployH> = {
  action: 'deploy',
  fake: 'Fly',
  remote: /Fly (Machines|GraphQL) API/,
  async start() {
    const fx = await deployFixture();
    return { fx, proxy: await startCuttingProxy(fx.fly.apiUrl) };
  },
  run(h, inputs) {
    return h.fx.run(
      { 'fly-api-url': h.proxy.url, 'fly-graphql-url': `${h.proxy.url}/graphql`, ...inputs },
      { timeoutMs: CASE_TIMEOUT_MS },
    );
  },
  invariants(h) {
    const app = h.fx.fly.app(APP);
    if (!app) return;
    app.tick();
    const machines = app.liveMachines();
    expect(machines.length).toBeLessThanOrEqual(1);
    for (const machine of machines) {
      // No lease left held, and no machine without the app's secrets.
      expect({ machine: machine.id, lease: machine.activeLease()?.owner }).toEqual({
        machine: machine.id,
        lease: undefined,
      });
      expect([...app.secrets.keys()].sort()).toEqual(SECRET_NAMES);
    }
  },
  converged(h, run, inputs) {
    expectExit(run, 0, 'deploy');
    const app = h.fx.fly.app(APP);
    expect(app).toBeDefined();
    app!.tick();
    expect(app!.ips.map((ip) => ip.type).sort()).toEqual(['shared_v4', 'v6']);
    const token = inputs['niks3-api-token'] ?? h.fx.secrets['niks3-api-token'];
    expect([...app!.secrets.keys()].sort()).toEqual(SECRET_NAMES);
    expect(app!.secrets.get('NIKS3_API_TOKEN')?.value).toBe(token);
    expect(app!.secrets.get('NIKS3_DB')?.value).toBe(h.fx.secrets['niks3-db']);
    const machines = app!.liveMachines();
    expect(machines).toHaveLength(1);
    const machine = machines[0]!;
    expect(run.outputs['machine-id']).toBe(machine.id);
    expect(machine.state).toBe('started');
    expect(machine.activeLease()).toBeUndefined();
    expect(machine.current.config['image']).toBe(inputs['niks3-image'] ?? 'ghcr.io/mic92/niks3:v1.7.0');
    // It booted with the secrets as they are now.
    expect(machine.current.boot?.env['NIKS3_API_TOKEN']).toBe(token);
    expect(machine.current.boot?.secretsVersion).toBe(app!.secretsVersion);
  },
  steady(h, run) {
    expect(run.outputs['changed']).toBe('false');
    expect(run.outputs['plan']).toBe('[]');
  },
  async close(h) {
    await h.proxy.close();
    await h.fx.close();
  },
  cases: [
    {
      kind: '429 + Retry-After',
      where: 'machine create',
      expect: 'converge',
      inject: (h) =>
        flyFault(h, {
          route: 'POST /v1/apps/:app/machines',
          times: 1,
          action: { status: 429, headers: { 'retry-after': '1' } },
        }),
    },
    {
      kind: 'burst of 503s',
      where: 'app reads, three in a row',
      expect: 'converge',
      inject: (h) => flyFault(h, { route: 'GET /v1/apps/:app', times: 3, action: { status: 503 } }),
    },
    {
      kind: '500 on a write',
      where: 'every machine update after a secret and image change',
      expect: 'fail',
      operation: /machine/,
      prepare: deployed,
      inputs: { 'niks3-api-token': NEW_API_TOKEN, 'niks3-image': NEW_IMAGE },
      inject: (h) => flyFault(h, { route: 'POST /v1/apps/:app/machines/:id', action: { status: 500 } }),
    },
    {
      kind: 'hang past the timeout',
      where: 'secrets write (30 s client timeout)',
      expect: 'converge',
      inject: (h) => flyFault(h, { route: 'POST /v1/apps/:app/secrets', times: 1, action: { kind: 'hang' } }),
    },
    {
      kind: 'reset mid-body',
      where: 'machine create answer, after it took effect',
      expect: 'converge',
      inject: (h) => {
        const rule = h.proxy.cut({ method: 'POST', path: /^\/v1\/apps\/[^/]+\/machines$/, times: 1 });
        return { fired: () => rule.hits(), lift: () => h.proxy.clear() };
      },
    },
    {
      kind: 'down for good',
      where: 'Machines and GraphQL API',
      expect: 'fail',
      operation: /app|GET \/v1/,
      inject: (h) => proxyDown(h.proxy),
    },
  ],
};

// ---- push × niks3 ------------------------------------------------------------------------------

const fixture = lazy(() => buildFixtureClosure());

interface PushH {
  readonly fake: FakeNiks3;
  readonly fx: FixtureClosure;
}

function niks3Fault(fake: FakeNiks3, rule: Niks3FaultRule): Injected {
  return ruleFault(fake.faults, rule);
}

function niks3Down(fake: FakeNiks3, target?: 'api' | 's3' | 'public'): Promise<Injected> {
  return fake.down(target).then(() => ({ fired: () => 1, lift: () => fake.up(target) }));
}

const push: Harness<PushH> = {
  action: 'push',
  fake: 'niks3',
  remote: /niks3|storage|S3|R2|public cache URL/,
  async start() {
    const [fake, fx] = await Promise.all([startFakeNiks3(), fixture()]);
    return { fake, fx };
  },
  run(h, inputs) {
    return runAction('push', {
      inputs: { ...pushFakeInputs(h.fake), paths: h.fx.roots.join('\n'), ...inputs },
      secrets: [h.fake.apiToken, ...h.fake.secretKeys],
      timeoutMs: CASE_TIMEOUT_MS,
    });
  },
  async invariants(h) {
    expectNoProblems(
      (await auditCache(h.fake)).problems,
      'a narinfo without its NAR or a referenced narinfo',
    );
  },
  async converged(h, run) {
    expectExit(run, 0, 'push');
    expect(Number(run.outputs['pushed']) + Number(run.outputs['skipped-cached'])).toBe(h.fx.all.length);
    expectNoProblems(await committedProblems(h.fake, h.fx.all, h.fx.roots), 'not committed');
    const copy = await substituteAll(h.fake, h.fx.roots);
    if (copy.code !== 0) throw new Error(`nix copy from the cache failed:\n${copy.stderr}`);
  },
  steady(_h, run) {
    expect(run.outputs['pushed']).toBe('0');
  },
  close: (h) => h.fake.close(),
  cases: [
    {
      kind: '429 + Retry-After',
      where: 'upload session create, twice',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.fake, {
          target: 'api',
          path: /\/pending_closures$/,
          times: 2,
          action: { status: 429, headers: { 'retry-after': '1' } },
        }),
    },
    {
      kind: 'burst of 503s',
      where: 'the first four API writes',
      expect: 'converge',
      inject: (h) => niks3Fault(h.fake, { target: 'api', method: 'POST', times: 4, action: { status: 503 } }),
    },
    {
      kind: '500 on a write',
      where: 'two uploads to the storage',
      expect: 'converge',
      inject: (h) => niks3Fault(h.fake, { target: 's3', method: 'PUT', times: 2, action: { status: 500 } }),
    },
    {
      kind: '500 on a write',
      where: 'every sign request',
      expect: 'fail',
      operation: /sign/,
      inject: (h) => niks3Fault(h.fake, { target: 'api', path: /\/sign$/, action: { status: 500 } }),
    },
    {
      kind: '500 on a write',
      where: 'every storage write of one narinfo that others depend on',
      expect: 'fail',
      operation: /PUT .*\.narinfo|narinfo/,
      inject: (h) => {
        // diamondBottom is referenced by diamondLeft and diamondRight (and so by diamondTop): none of
        // their narinfos may be written while its narinfo is missing.
        const key = `${hashPart(h.fx.byName.diamondBottom)}.narinfo`;
        return niks3Fault(h.fake, {
          target: 's3',
          method: 'PUT',
          path: new RegExp(`/${key}$`),
          action: { status: 500 },
        });
      },
    },
    {
      kind: 'hang past the timeout',
      where: 'first contact (connect-timeout 2 s)',
      expect: 'fail',
      operation: /first contact/,
      faultedInputs: { 'connect-timeout': '2' },
      inject: (h) =>
        niks3Fault(h.fake, {
          target: 'api',
          path: /^\/api\/cache-config$/,
          times: 1,
          action: { kind: 'hang' },
        }),
    },
    {
      kind: 'reset mid-body',
      where: 'three uploads to the storage',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.fake, { target: 's3', method: 'PUT', times: 3, action: { kind: 'reset-mid-body' } }),
    },
    {
      kind: 'reset mid-body',
      where: 'the cache-config answer',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.fake, {
          target: 'api',
          path: /^\/api\/cache-config$/,
          times: 1,
          action: { kind: 'reset-mid-body' },
        }),
    },
    {
      kind: 'down for good',
      where: 'the API (connect-timeout 2 s)',
      expect: 'fail',
      operation: /first contact/,
      faultedInputs: { 'connect-timeout': '2' },
      inject: (h) => niks3Down(h.fake, 'api'),
    },
    {
      kind: 'down for good',
      where: 'the storage',
      expect: 'fail',
      operation: /PUT|upload/,
      inject: (h) => niks3Down(h.fake, 's3'),
    },
    {
      kind: 'down for good',
      where: 'the public read URL (verification)',
      expect: 'either',
      operation: /verif|public/,
      inject: (h) => niks3Down(h.fake, 'public'),
    },
  ],
};

// ---- gc × niks3 --------------------------------------------------------------------------------

interface GcH {
  readonly fake: FakeNiks3;
  readonly old: SeededClosure;
  readonly fresh: SeededClosure;
}

const gc: Harness<GcH> = {
  action: 'gc',
  fake: 'niks3',
  remote: /niks3/,
  async start() {
    const fake = await startFakeNiks3({ gcPhaseDelayMs: 5 });
    const old = await seedClosure(fake, 'old');
    fake.advance(31 * DAY);
    const fresh = await seedClosure(fake, 'fresh');
    return { fake, old, fresh };
  },
  run(h, inputs) {
    return runAction('gc', {
      inputs: {
        'server-url': h.fake.url,
        auth: 'token',
        token: h.fake.apiToken,
        force: 'true',
        confirm: 'force',
        ...inputs,
      },
      secrets: [h.fake.apiToken],
      timeoutMs: CASE_TIMEOUT_MS,
    });
  },
  async invariants(h) {
    await h.fake.waitForGc();
    // The GC never leaves a narinfo whose NAR it deleted, and never touches the fresh closure.
    expectNoProblems((await auditCache(h.fake)).problems, 'a narinfo without its NAR');
    expect(h.fake.objectKeys()).toEqual(expect.arrayContaining([h.fresh.narinfoKey, h.fresh.narKey]));
    expect(h.fake.state.isLive(h.fresh.narKey)).toBe(true);
  },
  async converged(h, run) {
    expectExit(run, 0, 'gc');
    expect(run.outputs['state']).toBe('succeeded');
    const task = await h.fake.waitForGc();
    expect(task?.state).toBe('succeeded');
    expect(h.fake.state.closures.has(h.old.narinfoKey)).toBe(false);
    expect(h.fake.objectKeys()).not.toContain(h.old.narKey);
    expect(h.fake.objectKeys()).not.toContain(h.old.narinfoKey);
    expect(h.fake.state.closures.has(h.fresh.narinfoKey)).toBe(true);
  },
  close: (h) => h.fake.close(),
  cases: [
    {
      kind: '429 + Retry-After',
      where: 'GC start',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.fake, {
          target: 'api',
          method: 'DELETE',
          path: /^\/api\/closures$/,
          times: 1,
          action: { status: 429, headers: { 'retry-after': '1' } },
        }),
    },
    {
      kind: 'burst of 503s',
      where: 'GC status polls, three in a row',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.fake, { target: 'api', path: /^\/api\/gc\/status$/, times: 3, action: { status: 503 } }),
    },
    {
      kind: '500 on a write',
      where: 'GC start',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.fake, {
          target: 'api',
          method: 'DELETE',
          path: /^\/api\/closures$/,
          times: 1,
          action: { status: 500 },
        }),
    },
    {
      kind: 'hang past the timeout',
      where: 'first contact (connect-timeout 2 s)',
      expect: 'fail',
      operation: /first contact/,
      faultedInputs: { 'connect-timeout': '2' },
      inject: (h) =>
        niks3Fault(h.fake, {
          target: 'api',
          path: /^\/api\/cache-config$/,
          times: 1,
          action: { kind: 'hang' },
        }),
    },
    {
      kind: 'reset mid-body',
      where: 'GC status answers, twice',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.fake, {
          target: 'api',
          path: /^\/api\/gc\/status$/,
          times: 2,
          action: { kind: 'reset-mid-body' },
        }),
    },
    {
      kind: 'down for good',
      where: 'the API (connect-timeout 2 s)',
      expect: 'fail',
      operation: /first contact/,
      faultedInputs: { 'connect-timeout': '2' },
      inject: (h) => niks3Down(h.fake, 'api'),
    },
  ],
};

// ---- status × niks3 (+ Cloudflare, Fly) --------------------------------------------------------

interface StatusH {
  readonly niks3: FakeNiks3;
  readonly cf: FakeCloudflare;
  readonly cfToken: string;
  readonly accountId: string;
  readonly fly: FakeFly;
  readonly cfProxy: CuttingProxy;
  readonly flyProxy: CuttingProxy;
  /** Requests the seeding made before the runs. */
  readonly flyWrites: number;
  readonly niks3Requests: number;
}

const status: Harness<StatusH> = {
  action: 'status',
  fake: 'niks3, Cloudflare, Fly',
  remote: /niks3|public|R2|Fly|Cloudflare/,
  async start() {
    const niks3 = await startFakeNiks3();
    await seedClosure(niks3, 'one');
    await seedClosure(niks3, 'two');
    const cf = await startFakeCloudflare();
    const account = cf.state.addAccount();
    const cfToken = cf.state.addToken().value;
    const zone = cf.state.addZone({ name: 'example.dev', accountId: account.id });
    const bucket = cf.state.addBucket({ accountId: account.id, name: 'my-cache-niks3', location: 'enam' });
    cf.state.addCustomDomain({ bucket, domain: '127.0.0.1', zoneId: zone.id, activation: { afterGets: 0 } });
    const fly = await startFakeFly({ speed: 50 });
    await seedAppWithMachine(fly, 'my-niks3');
    const cfProxy = await startCuttingProxy(cf.origin);
    const flyProxy = await startCuttingProxy(fly.apiUrl);
    return {
      niks3,
      cf,
      cfToken,
      accountId: account.id,
      fly,
      cfProxy,
      flyProxy,
      flyWrites: fly.writes().length,
      niks3Requests: niks3.requests.length,
    };
  },
  run(h, inputs) {
    return runAction('status', {
      inputs: {
        'server-url': h.niks3.url,
        'expected-public-key': h.niks3.publicKeys[0] ?? '',
        'cloudflare-api-token': h.cfToken,
        'cloudflare-account-id': h.accountId,
        'r2-bucket-name': 'my-cache-niks3',
        'cloudflare-api-url': `${h.cfProxy.url}/client/v4`,
        'fly-api-token': LOCAL_ORG_TOKEN,
        'fly-app-name': 'my-niks3',
        'fly-api-url': h.flyProxy.url,
        timeout: '4',
        ...inputs,
      },
      secrets: [h.niks3.apiToken, h.cfToken, LOCAL_ORG_TOKEN],
      timeoutMs: CASE_TIMEOUT_MS,
    });
  },
  invariants(h) {
    // status only reads.
    expect(
      h.niks3.requests
        .slice(h.niks3Requests)
        .filter((r) => r.method !== 'GET' && r.method !== 'HEAD')
        .map((r) => `${r.method} ${r.path}`),
    ).toEqual([]);
    expect(h.cf.log.writes()).toEqual([]);
    expect(h.fly.writes().slice(h.flyWrites)).toEqual([]);
  },
  converged(h, run) {
    expectExit(run, 0, 'status');
    expect(run.outputs).toMatchObject({
      healthy: 'true',
      'public-key': h.niks3.publicKeys[0],
      'cache-url': h.niks3.publicUrl,
      objects: '4',
    });
    const checks = JSON.parse(run.outputs['checks'] ?? '[]') as Array<{ name: string; status: string }>;
    expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['R2 bucket', 'Fly machine', 'public read URL']),
    );
  },
  async close(h) {
    await h.cfProxy.close();
    await h.flyProxy.close();
    await h.niks3.close();
    await h.cf.close();
    await h.fly.close();
  },
  cases: [
    {
      kind: '429 + Retry-After',
      where: 'niks3 cache-stats',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.niks3, {
          target: 'api',
          path: /^\/api\/cache-stats$/,
          times: 1,
          action: { status: 429, headers: { 'retry-after': '1' } },
        }),
    },
    {
      kind: '429 + Retry-After',
      where: 'Cloudflare bucket read',
      expect: 'converge',
      inject: (h) =>
        ruleFault(h.cf.faults, {
          path: '/r2/buckets/my-cache-niks3',
          method: 'GET',
          times: 1,
          action: { status: 429, headers: { 'retry-after': '1' } },
        }),
    },
    {
      kind: 'burst of 503s',
      where: 'niks3 /health, three in a row',
      expect: 'either',
      operation: /health/,
      inject: (h) =>
        niks3Fault(h.niks3, { target: 'api', path: /^\/health$/, times: 3, action: { status: 503 } }),
    },
    {
      kind: 'burst of 503s',
      where: 'Fly machine list, three in a row',
      expect: 'either',
      operation: /Fly/,
      inject: (h) =>
        ruleFault(h.fly.faults, { route: 'GET /v1/apps/:app/machines', times: 3, action: { status: 503 } }),
    },
    {
      kind: '500 on a write',
      where: 'status makes no writes: a 500 on niks3 cache-config instead',
      expect: 'converge',
      inject: (h) =>
        niks3Fault(h.niks3, {
          target: 'api',
          path: /^\/api\/cache-config$/,
          times: 1,
          action: { status: 500 },
        }),
    },
    {
      kind: 'hang past the timeout',
      where: 'niks3 cache-stats (timeout 4 s)',
      expect: 'either',
      operation: /stats/,
      inject: (h) =>
        niks3Fault(h.niks3, {
          target: 'api',
          path: /^\/api\/cache-stats$/,
          times: 1,
          action: { kind: 'hang' },
        }),
    },
    {
      kind: 'reset mid-body',
      where: 'the public nix-cache-info answer',
      expect: 'either',
      operation: /public/,
      inject: (h) =>
        niks3Fault(h.niks3, {
          target: 'public',
          path: /nix-cache-info$/,
          times: 1,
          action: { kind: 'reset-mid-body' },
        }),
    },
    {
      kind: 'hang past the timeout',
      where: 'Fly machine list (timeout 4 s)',
      expect: 'either',
      operation: /Fly/,
      inject: (h) =>
        ruleFault(h.fly.faults, { route: 'GET /v1/apps/:app/machines', times: 1, action: { kind: 'hang' } }),
    },
    {
      kind: 'reset mid-body',
      where: 'the Cloudflare bucket answer',
      expect: 'either',
      operation: /R2|bucket/,
      inject: (h) => {
        const rule = h.cfProxy.cut({ method: 'GET', path: /\/r2\/buckets\/my-cache-niks3$/, times: 1 });
        return { fired: () => rule.hits(), lift: () => h.cfProxy.clear() };
      },
    },
    {
      kind: 'down for good',
      where: 'the Cloudflare API',
      expect: 'fail',
      operation: /R2|bucket/,
      inject: (h) => proxyDown(h.cfProxy),
    },
    {
      kind: 'down for good',
      where: 'the Fly Machines API',
      expect: 'fail',
      operation: /Fly/,
      inject: (h) => proxyDown(h.flyProxy),
    },
    {
      kind: 'down for good',
      where: 'the niks3 server',
      expect: 'fail',
      operation: /write URL|health|niks3/,
      inject: (h) => niks3Down(h.niks3, 'api'),
    },
  ],
};

matrix(provisionApply);
matrix(provisionDestroy);
matrix(deploy);
matrix(push);
matrix(gc);
matrix(status);

afterAll(() => {
  const byAction = new Map<string, number>();
  const lines: string[] = [];
  for (const [name, t] of tally) {
    const action = name.split(' ')[0] ?? name;
    byAction.set(action, (byAction.get(action) ?? 0) + t.converged + t.repaired);
    lines.push(
      `  ${name}: ${t.converged + t.repaired} case(s) passed (${t.converged} converged, ${t.repaired} failed clearly and were repaired by the next run)`,
    );
  }
  console.log(
    [
      `fault matrix: cases run per action: ${[...byAction].map(([action, n]) => `${action} ${n}`).join(', ')}`,
      ...lines,
      'failures as the user sees them (each repaired by the next run):',
      ...failures,
    ].join('\n'),
  );
});
