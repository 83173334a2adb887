/**
 * Faults on the way to a deploy (dist bundle against the fake Fly): ambiguous machine creates must
 * not make two machines, and 429 / 5xx answers are retried until the deploy converges.
 */
import { APP, deployFixture, type DeployFixture } from './deploy-fixture.js';

describe('deploy under faults', () => {
  let fx: DeployFixture;
  beforeEach(async () => {
    fx = await deployFixture();
  });
  afterEach(async () => {
    await fx.close();
  });

  const creates = (): number =>
    fx.fly.requests.filter((r) => r.route === 'POST /v1/apps/:app/machines').length;

  it('a create that times out but succeeded leaves exactly one machine', async () => {
    // The machine is created, then the connection hangs and is dropped without an answer.
    fx.fly.faults.add({
      route: 'POST /v1/apps/:app/machines',
      times: 1,
      afterHandling: true,
      action: { kind: 'hang', ms: 300 },
    });
    const run = await fx.run();
    expect(run.code).toBe(0);
    expect(creates()).toBe(1);
    const machines = fx.fly.app(APP)?.liveMachines() ?? [];
    expect(machines).toHaveLength(1);
    expect(run.outputs['machine-id']).toBe(machines[0]?.id);
    // It was found by its launch id, and its create lease was adopted and released.
    expect(
      fx.fly.requests.some(
        (r) => r.route === 'GET /v1/apps/:app/machines' && r.query['metadata.niks3_launch_id'],
      ),
    ).toBe(true);
    expect(machines[0]?.activeLease()).toBeUndefined();
    expect(machines[0]?.state).toBe('started');
    expect(run.stdout).toContain('not creating another');
  });

  it('a 408 after commit, with a lagging machine list, still leaves exactly one machine', async () => {
    await fx.close();
    fx = await deployFixture({ listLag: 1 });
    fx.fly.faults.add({
      route: 'POST /v1/apps/:app/machines',
      times: 1,
      afterHandling: true,
      action: { status: 408 },
    });
    const run = await fx.run();
    expect(run.code).toBe(0);
    expect(creates()).toBe(1);
    expect(fx.fly.app(APP)?.liveMachines()).toHaveLength(1);
  });

  it('a 503 before the create did anything is retried after looking for the machine', async () => {
    fx.fly.faults.add({ route: 'POST /v1/apps/:app/machines', times: 1, action: { status: 503 } });
    const run = await fx.run();
    expect(run.code).toBe(0);
    expect(creates()).toBe(2);
    expect(fx.fly.app(APP)?.liveMachines()).toHaveLength(1);
  });

  it('429 (with Retry-After) and 5xx answers on every kind of call still converge', async () => {
    fx.fly.faults.add({
      route: 'GET /v1/apps/:app',
      times: 1,
      action: { status: 429, headers: { 'retry-after': '1' } },
    });
    fx.fly.faults.add({ route: 'POST /v1/apps', times: 1, action: { status: 502 } });
    fx.fly.faults.add({ route: 'POST /v1/apps/:app/secrets', times: 1, action: { status: 500 } });
    fx.fly.faults.add({ route: 'POST /v1/apps/:app/secrets', times: 1, action: { status: 429 } });
    fx.fly.faults.add({ route: 'POST /v1/apps/:app/ip_assignments', times: 1, action: { status: 429 } });
    fx.fly.faults.add({
      route: 'POST /v1/apps/:app/machines',
      times: 1,
      action: { status: 429, headers: { 'retry-after': '1' } },
    });
    fx.fly.faults.add({ route: 'GET /v1/apps/:app/machines/:id/wait', times: 1, action: { status: 503 } });
    fx.fly.faults.add({ route: 'GET /v1/apps/:app/machines/:id', times: 1, action: { kind: 'reset' } });
    fx.fly.faults.add({
      route: 'DELETE /v1/apps/:app/machines/:id/lease',
      times: 1,
      action: { status: 500 },
    });
    const run = await fx.run();
    expect(run.code).toBe(0);
    expect(fx.fly.world.apps.size).toBe(1);
    const app = fx.fly.app(APP);
    expect(app?.ips.map((ip) => ip.type).sort()).toEqual(['shared_v4', 'v6']);
    expect(app?.liveMachines()).toHaveLength(1);
    expect(app?.liveMachines()[0]?.activeLease()).toBeUndefined();
    expect(fx.fly.requests.filter((r) => r.status === 429 || r.status >= 500 || r.status === -1).length).toBe(
      9,
    );

    // Faults during an update under a lease: the update is retried and the lease still released.
    fx.fly.faults.add({ route: 'POST /v1/apps/:app/machines/:id', times: 1, action: { status: 503 } });
    fx.fly.faults.add({ route: 'POST /v1/apps/:app/machines/:id/lease', times: 1, action: { status: 429 } });
    const update = await fx.run({ 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1' });
    expect(update.code).toBe(0);
    const machine = app?.liveMachines()[0];
    expect(machine?.current.config['image']).toBe('ghcr.io/mic92/niks3:v1.7.1');
    expect(machine?.activeLease()).toBeUndefined();
    expect(app?.liveMachines()).toHaveLength(1);
  });

  it('an IPv6 allocation whose answer is lost is not repeated', async () => {
    fx.fly.faults.add({
      route: 'POST /v1/apps/:app/ip_assignments',
      times: 1,
      afterHandling: true,
      action: { kind: 'reset' },
    });
    const run = await fx.run();
    expect(run.code).toBe(0);
    expect(
      fx.fly
        .app(APP)
        ?.ips.map((ip) => ip.type)
        .sort(),
    ).toEqual(['shared_v4', 'v6']);
  });

  it('an app that is slow to become visible after its create is waited for', async () => {
    await fx.close();
    fx = await deployFixture({ appVisibilityLag: 2, appVisibilityLagStatus: 401 });
    const run = await fx.run();
    expect(run.code).toBe(0);
    expect(fx.fly.app(APP)?.liveMachines()).toHaveLength(1);
  });

  it('stays within the documented rate limits (no hot polling loops)', async () => {
    await fx.close();
    fx = await deployFixture({ rateLimit: true });
    const run = await fx.run();
    expect(run.code).toBe(0);
    const update = await fx.run({ 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1' });
    expect(update.code).toBe(0);
    expect(fx.fly.requests.filter((r) => r.status === 429)).toEqual([]);
  });
});
