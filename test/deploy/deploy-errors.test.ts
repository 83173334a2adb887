/**
 * Refusals and teardown of the deploy action (dist bundle against the fake Fly): bad inputs fail
 * before any request; token and organisation problems fail clearly; destroy is guarded and
 * idempotent; a machine that never gets healthy fails within the bound and leaves no lease.
 */
import {
  APP,
  DEPLOY_TOKEN,
  ORG_TOKEN,
  USER_TOKEN,
  deployFixture,
  type DeployFixture,
} from './deploy-fixture.js';

describe('deploy refusals and destroy', () => {
  let fx: DeployFixture;
  beforeEach(async () => {
    fx = await deployFixture({
      orgs: [
        { slug: 'my-org', name: 'My Org', type: 'SHARED' },
        { slug: 'jane-doe', name: 'Jane Doe', type: 'PERSONAL' },
        { slug: 'other-org', name: 'Other Org', type: 'SHARED' },
      ],
      tokens: {
        [ORG_TOKEN]: { kind: 'org', org: 'my-org' },
        [DEPLOY_TOKEN]: { kind: 'deploy', org: 'my-org', apps: [APP] },
        [USER_TOKEN]: { kind: 'user', orgs: ['jane-doe', 'other-org'] },
      },
      takenAppNames: ['someone-elses-app'],
      images: { 'ghcr.io/mic92/niks3:broken': 'unhealthy' },
    });
  });
  afterEach(async () => {
    await fx.close();
  });

  it.each([
    [
      'a signing key that is not 64 bytes',
      { 'niks3-signing-key': 'niks3-test-1:c2hvcnQ=' },
      /niks3-signing-key.*decodes to 5 bytes, not the 64 bytes/s,
    ],
    [
      'a 32-byte seed instead of the secret key',
      { 'niks3-signing-key': `k-1:${Buffer.alloc(32, 7).toString('base64')}` },
      /niks3-signing-key.*decodes to 32 bytes/s,
    ],
    ['a signing key without a name', { 'niks3-signing-key': 'no-colon-here' }, /niks3-signing-key/],
    [
      'a short niks3 API token',
      { 'niks3-api-token': 'too-short-token' },
      /niks3-api-token.*at least 36 characters/s,
    ],
    ['a short Fly token', { 'fly-api-token': 'FlyV1 x' }, /fly-api-token/],
    ['a memory size that is not a size', { 'fly-vm-memory': 'lots' }, /fly-vm-memory/],
    [
      'a memory size that is not a multiple of 256 MB',
      { 'fly-vm-memory': '100mb' },
      /fly-vm-memory.*"100mb".*multiple of 256/s,
    ],
    [
      'too little memory for the CPUs',
      { 'fly-vm-memory': '1gb', 'fly-vm-cpu-kind': 'performance' },
      /fly-vm-memory.*2048/s,
    ],
    ['a bad region', { 'fly-primary-region': 'US-EAST' }, /fly-primary-region/],
    ['a database URL that is not postgres', { 'niks3-db': 'mysql://u:p@h/db' }, /niks3-db/],
    ['a missing bucket for apply', { 'bucket-name': undefined }, /bucket-name.*required/s],
  ])('refuses %s before any request', async (_name, overrides, message) => {
    const run = await fx.run(overrides);
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(message);
    expect(fx.fly.requests).toEqual([]);
  });

  it('a deploy token with a missing app tries the create and names the missing power', async () => {
    const run = await fx.run({ 'fly-api-token': DEPLOY_TOKEN });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /app 'niks3-test' does not exist, and fly-api-token may not create it in organisation my-org \(HTTP 403.*a deploy token cannot create apps.*fly tokens create org.*limited to 'niks3-test'/s,
    );
    // The create was tried (the token's `apps` is only a hint) and refused; nothing else was written.
    expect(fx.fly.writes().map((r) => `${r.route} ${r.status}`)).toEqual(['POST /v1/apps 403']);
  });

  it('a deploy token updates an app that exists', async () => {
    expect((await fx.run()).code).toBe(0);
    const run = await fx.run({ 'fly-api-token': DEPLOY_TOKEN, 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1' });
    expect(run.code).toBe(0);
    expect(fx.fly.app(APP)?.liveMachines()[0]?.current.config['image']).toBe('ghcr.io/mic92/niks3:v1.7.1');
  });

  it('several organisations and no slug is an error naming them', async () => {
    const run = await fx.run({ 'fly-api-token': USER_TOKEN });
    expect(run.code).toBe(1);
    const message = run.errors.join('\n');
    expect(message).toMatch(/fly-org-slug.*several organisations/s);
    expect(message).toContain('personal (Jane Doe)');
    expect(message).toContain('other-org (Other Org)');
    expect(fx.fly.writes().filter((r) => r.route !== 'POST /graphql')).toEqual([]);
  });

  it('with a user token, the given organisation slug is used', async () => {
    const run = await fx.run({ 'fly-api-token': USER_TOKEN, 'fly-org-slug': 'other-org' });
    expect(run.code).toBe(0);
    expect(fx.fly.app(APP)?.org).toBe('other-org');
    // A user token is sent as Bearer to the Machines API (fly.md §2.2).
    expect(fx.fly.requests.every((r) => r.tokenId !== undefined)).toBe(true);
  });

  it('an app name owned by another organisation is refused', async () => {
    const run = await fx.run({ 'fly-app-name': 'someone-elses-app' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/someone-elses-app.*cannot see.*another fly-app-name/s);
    expect(fx.fly.writes()).toEqual([]);
  });

  it('a machine that never passes its checks fails within the bound and leaves no lease', async () => {
    const run = await fx.run({ 'niks3-image': 'ghcr.io/mic92/niks3:broken', 'wait-timeout': '4' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /health checks did not pass within 4 s.*critical.*fly logs -a niks3-test/s,
    );
    const machine = fx.fly.app(APP)?.liveMachines()[0];
    expect(machine?.activeLease()).toBeUndefined();
    // Released with the create's nonce (on the sped-up clock it may have lapsed just before: 404).
    const release = fx.fly.requests.find((r) => r.route === 'DELETE /v1/apps/:app/machines/:id/lease');
    expect(release?.headers['fly-machine-lease-nonce']).toMatch(/^[0-9a-f]{12}$/);
  });

  it('SIGTERM while waiting releases the lease before the process ends', async () => {
    expect((await fx.run()).code).toBe(0);
    const run = await fx.run(
      { 'niks3-image': 'ghcr.io/mic92/niks3:broken', 'wait-timeout': '60' },
      { kill: { signal: 'SIGTERM', when: (stdout) => stdout.includes('waiting for health checks') } },
    );
    expect(run.code).toBe(143);
    const machine = fx.fly.app(APP)?.liveMachines()[0];
    const update = fx.fly.requests.find(
      (r) => r.route === 'POST /v1/apps/:app/machines/:id' && r.status === 200,
    );
    expect(update).toBeDefined();
    const release = fx.fly.requests.find(
      (r) => r.route === 'DELETE /v1/apps/:app/machines/:id/lease' && r.seq > (update?.seq ?? 0),
    );
    expect(release?.status).toBe(200);
    expect(release?.headers['fly-machine-lease-nonce']).toBe(update?.headers['fly-machine-lease-nonce']);
    expect(machine?.activeLease()).toBeUndefined();
  });

  it('destroy refuses without the right confirm, deletes with it, and a second destroy succeeds', async () => {
    expect((await fx.run()).code).toBe(0);
    const before = fx.fly.requests.length;

    const refused = await fx.run({ mode: 'destroy', confirm: 'wrong-name' });
    expect(refused.code).toBe(1);
    expect(refused.errors.join('\n')).toMatch(
      /confirm.*must equal fly-app-name \('niks3-test'\).*Nothing was changed/s,
    );
    const unconfirmed = await fx.run({ mode: 'destroy' });
    expect(unconfirmed.code).toBe(1);
    expect(fx.fly.requests.length).toBe(before);
    expect(fx.fly.app(APP)).toBeDefined();

    // Destroy needs neither the server's secrets nor its settings.
    const destroyInputs = {
      mode: 'destroy',
      confirm: APP,
      'niks3-api-token': undefined,
      'niks3-db': undefined,
      'niks3-s3-access-key': undefined,
      'niks3-s3-secret-key': undefined,
      'niks3-signing-key': undefined,
      'cache-url': undefined,
      'bucket-name': undefined,
      's3-endpoint': undefined,
    };
    const destroyed = await fx.run(destroyInputs);
    expect(destroyed.code).toBe(0);
    expect(destroyed.outputs['changed']).toBe('true');
    expect(fx.fly.app(APP)).toBeUndefined();
    expect(fx.fly.requests.some((r) => r.route === 'DELETE /v1/apps/:app' && r.status === 202)).toBe(true);
    expect(destroyed.summary).toContain('was deleted');

    const again = await fx.run(destroyInputs);
    expect(again.code).toBe(0);
    expect(again.outputs['changed']).toBe('false');
    expect(again.summary).toContain('does not exist');
  });
});
