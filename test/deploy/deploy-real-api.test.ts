/**
 * Behaviours of the real Fly Machines API that a naive stand-in hides, each with the stand-in set
 * to the real behaviour (both answers where it is unconfirmed): app create's idempotency key not
 * honoured, eventually consistent secrets, lease refresh TTLs, machines changed by hand, machines
 * on an unhealthy host, token powers only hinted at, and re-pushed image tags.
 */
import { FlyClient } from '../../src/core/fly/fly-client.js';
import { LeaseKeeper } from '../../src/core/fly/lease-keeper.js';
import { MemoryLogger } from '../../src/core/logger.js';
import {
  LOCAL_ORG_TOKEN,
  seedAppWithMachine,
  startFakeFly,
  type FakeFly,
  type FakeMachine,
} from '../fakes/fly/index.js';
import { APP, DEPLOY_TOKEN, ORG, ORG_TOKEN, deployFixture, type DeployFixture } from './deploy-fixture.js';

function onlyMachine(fx: DeployFixture): FakeMachine {
  const machines = fx.fly.app(APP)?.liveMachines() ?? [];
  expect(machines).toHaveLength(1);
  return machines[0] as FakeMachine;
}

const writesSince = (fx: DeployFixture, before: number): string[] =>
  fx.fly.requests
    .slice(before)
    .filter((r) => r.method !== 'GET')
    .map((r) => r.route);

describe.each([
  ['ignored', 404],
  ['ignored', 401],
  ['honoured', 404],
] as const)('app create with idempotency keys %s and "not visible yet" as %i', (keys, lagStatus) => {
  let fx: DeployFixture;
  beforeEach(async () => {
    fx = await deployFixture({
      appCreateIdempotencyKey: keys,
      appVisibilityLag: 2,
      appVisibilityLagStatus: lagStatus,
    });
  });
  afterEach(async () => {
    await fx.close();
  });

  it('an ambiguous first create, then name_taken on the retry, still deploys the app', async () => {
    // The app is created, the answer is lost (503), the client sends the create again.
    fx.fly.faults.add({ route: 'POST /v1/apps', times: 1, afterHandling: true, action: { status: 503 } });
    const run = await fx.run();
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    const creates = fx.fly.requests.filter((r) => r.route === 'POST /v1/apps');
    expect(creates.map((r) => r.status)).toEqual(keys === 'ignored' ? [503, 422] : [503, 201]);
    expect(fx.fly.world.apps.size).toBe(1);
    expect(fx.fly.app(APP)?.org).toBe(ORG);
    expect(onlyMachine(fx).state).toBe('started');
  });
});

describe('the real Fly API', () => {
  let fx: DeployFixture;
  afterEach(async () => {
    await fx.close();
  });

  it.each(['min_version', 'version'] as const)(
    'secrets are listed with the version just set (store honouring %s), so a stale store does not leak into the next run',
    async (secretsMinVersionParam) => {
      fx = await deployFixture({ secretsStaleReads: 1, secretsMinVersionParam });
      expect((await fx.run()).code).toBe(0);
      const set = fx.fly.requests.find((r) => r.route === 'POST /v1/apps/:app/secrets');
      const list = fx.fly.requests.find(
        (r) => r.route === 'GET /v1/apps/:app/secrets' && (set?.seq ?? 0) < r.seq,
      );
      const version = String(fx.fly.app(APP)?.secretsVersion);
      expect(list?.query['min_version']).toEqual([version]);
      expect(list?.query['version']).toEqual([version]);
      const before = fx.fly.requests.length;
      const again = await fx.run();
      expect(again.outputs['changed']).toBe('false');
      expect(writesSince(fx, before)).toEqual([]);
    },
  );

  it('a machine changed by hand (metadata kept) is noticed and put back; then nothing changes', async () => {
    fx = await deployFixture();
    expect((await fx.run()).code).toBe(0);
    const machine = onlyMachine(fx);
    // As `fly scale memory 512` and `fly deploy --env` do: a new version, the metadata untouched.
    fx.fly.editByHand(APP, machine.id, {
      guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 512 },
      env: { ...(machine.current.requested['env'] as Record<string, string>), EXTRA: 'by hand' },
    });
    const before = fx.fly.requests.length;
    const plan = await fx.run({ mode: 'plan' });
    expect(plan.code).toBe(0);
    expect(writesSince(fx, before)).toEqual([]);
    const planned = JSON.parse(plan.outputs['plan'] ?? '[]') as Array<{ action: string; reasons?: string[] }>;
    expect(planned).toEqual([
      { action: 'update-machine', machineId: machine.id, reasons: ['changed outside nix-cache: guest, env'] },
    ]);

    const run = await fx.run();
    expect(run.code).toBe(0);
    expect(machine.current.config['guest']).toEqual({ cpu_kind: 'shared', cpus: 1, memory_mb: 256 });
    expect((machine.current.config['env'] as Record<string, string>)['EXTRA']).toBeUndefined();
    const after = fx.fly.requests.length;
    expect((await fx.run()).outputs['changed']).toBe('false');
    expect(writesSince(fx, after)).toEqual([]);
  });

  it.each(['with-metadata', 'empty'] as const)(
    'a machine on an unhealthy host (incomplete_config %s) is replaced, not doubled',
    async (incompleteConfig) => {
      fx = await deployFixture({ incompleteConfig });
      expect((await fx.run()).code).toBe(0);
      const broken = onlyMachine(fx);
      fx.fly.hostUnhealthy(APP, broken.id);
      const run = await fx.run();
      expect(run.errors).toEqual([]);
      expect(run.code).toBe(0);
      const live = fx.fly.app(APP)?.liveMachines() ?? [];
      expect(live).toHaveLength(1);
      expect(live[0]?.id).not.toBe(broken.id);
      expect(live[0]?.state).toBe('started');
      expect(broken.state).toBe('destroyed');
      expect(run.stdout).toMatch(/destroy machine \w+ \(on an unhealthy host/);
      const before = fx.fly.requests.length;
      expect((await fx.run()).outputs['changed']).toBe('false');
      expect(writesSince(fx, before)).toEqual([]);
    },
  );

  it('an org token whose introspection lists apps (orgTokenApps: org-apps) still creates the app', async () => {
    fx = await deployFixture({ orgTokenApps: 'org-apps' });
    const other = await fetch(`${fx.fly.apiUrl}/v1/apps`, {
      method: 'POST',
      headers: { authorization: ORG_TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'another-app', org_slug: ORG }),
    });
    expect(other.status).toBe(201);
    const run = await fx.run();
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(fx.fly.app(APP)?.org).toBe(ORG);
    expect(run.stdout).toContain("The Fly token reports itself limited to 'another-app'");
  });

  it('a refused operation names the token power it needs (destroy with a deploy token)', async () => {
    fx = await deployFixture();
    expect((await fx.run()).code).toBe(0);
    const run = await fx.run({ mode: 'destroy', confirm: APP, 'fly-api-token': DEPLOY_TOKEN });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /delete app niks3-test answered HTTP 403.*deleting the app needs an org token \(`fly tokens create org`\)/s,
    );
    expect(fx.fly.app(APP)).toBeDefined();
  });

  it('a re-pushed tag is rolled forward with redeploy: true; a pinned digest is compared with what runs', async () => {
    fx = await deployFixture();
    expect((await fx.run()).code).toBe(0);
    const machine = onlyMachine(fx);
    const image = 'ghcr.io/mic92/niks3:v1.7.0';
    const first = machine.current.imageDigest;
    const pushed = fx.fly.world.repushTag(image);

    // Same tag: nothing in the API says the tag moved, so a plain run changes nothing.
    let before = fx.fly.requests.length;
    expect((await fx.run()).outputs['changed']).toBe('false');
    expect(writesSince(fx, before)).toEqual([]);

    const redeploy = await fx.run({ redeploy: 'true' });
    expect(redeploy.code).toBe(0);
    expect(redeploy.stdout).toContain('redeploy: true (the image is pulled again)');
    expect(machine.current.imageDigest).toBe(pushed);
    expect(machine.current.imageDigest).not.toBe(first);

    // Pinned by digest: the machine runs that digest, so re-runs write nothing.
    const pinned = `${image}@${fx.fly.world.repushTag(image)}`;
    expect((await fx.run({ 'niks3-image': pinned })).code).toBe(0);
    expect(machine.current.config['image']).toBe(pinned);
    before = fx.fly.requests.length;
    expect((await fx.run({ 'niks3-image': pinned })).outputs['changed']).toBe('false');
    expect(writesSince(fx, before)).toEqual([]);
  });
});

describe('lease refresh', () => {
  let fly: FakeFly;
  beforeEach(async () => {
    fly = await startFakeFly();
    await seedAppWithMachine(fly, 'lease-app');
  });
  afterEach(async () => {
    await fly.close();
  });

  function keeperFor(logger: MemoryLogger): { client: FlyClient; keeper: LeaseKeeper } {
    const client = new FlyClient({
      token: LOCAL_ORG_TOKEN,
      apiUrl: fly.apiUrl,
      graphqlUrl: fly.graphqlUrl,
      logger,
      sleep: () => Promise.resolve(),
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1, retryAfterCapMs: 1, retryStatuses: [500] },
    });
    return {
      client,
      keeper: new LeaseKeeper({ client, logger, sleep: () => Promise.resolve(), description: 't' }),
    };
  }

  const machineId = (): string => [...(fly.app('lease-app')?.machines.keys() ?? [])][0] ?? '';

  it('refreshes with the TTL the lease was adopted with, not the keeper default', async () => {
    const logger = new MemoryLogger();
    const { client, keeper } = keeperFor(logger);
    const got = await client.acquireLease('lease-app', machineId(), 3, 't');
    if (got.kind !== 'acquired') throw new Error('no lease');
    keeper.adopt('lease-app', machineId(), got.lease, 3);
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    const refresh = fly.requests.find(
      (r) => r.route === 'POST /v1/apps/:app/machines/:id/lease' && r.headers['fly-machine-lease-nonce'],
    );
    await keeper.releaseAll();
    expect(refresh?.query['ttl']).toEqual(['3']);
    expect(refresh?.body).toMatchObject({ ttl: 3 });
  });

  it('logs a failed refresh as a warning', async () => {
    const logger = new MemoryLogger();
    const { client, keeper } = keeperFor(logger);
    const got = await client.acquireLease('lease-app', machineId(), 3, 't');
    if (got.kind !== 'acquired') throw new Error('no lease');
    fly.faults.add({ route: 'POST /v1/apps/:app/machines/:id/lease', times: 10, action: { status: 500 } });
    keeper.adopt('lease-app', machineId(), got.lease, 3);
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    fly.faults.clear();
    await keeper.releaseAll();
    expect(logger.lines.join('\n')).toMatch(/warning: could not refresh the lease of machine \w+ \(.*500/);
  });
});
