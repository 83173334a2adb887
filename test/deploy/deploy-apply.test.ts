/**
 * The deploy action end to end through its dist bundle against the fake Fly: a first apply on an
 * empty org, a no-op re-apply, image and secret changes under a lease, plan mode, and no OIDC.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP, ORG, deployFixture, type DeployFixture } from './deploy-fixture.js';
import type { FakeMachine } from '../fakes/fly/index.js';

/** The machine config of stack.md, field by field, as the Machines API stores it (autostop normalised to true). */
function expectedConfig(
  overrides: { image?: string; env?: Record<string, string | undefined>; files?: unknown[] } = {},
): Record<string, unknown> {
  const env: Record<string, string | undefined> = {
    FLY_PROCESS_GROUP: 'app',
    NIKS3_CACHE_URL: 'https://cache.example.dev',
    NIKS3_ENABLE_READ_PROXY: 'false',
    NIKS3_HTTP_ADDR: ':5751',
    NIKS3_OIDC_CONFIG: '/run/secrets/niks3-oidc-config',
    NIKS3_S3_BUCKET: 'niks3-test-bucket',
    NIKS3_S3_CONCURRENCY: '20',
    NIKS3_S3_ENDPOINT: '0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com',
    NIKS3_S3_REGION: 'auto',
    NIKS3_S3_USE_SSL: 'true',
    NIKS3_SIGN_KEY_PATHS: '/run/secrets/niks3-signing-key',
    PRIMARY_REGION: 'iad',
    ...overrides.env,
  };
  return {
    image: overrides.image ?? 'ghcr.io/mic92/niks3:v1.7.0',
    env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
    init: { swap_size_mb: 512 },
    guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 },
    services: [
      {
        protocol: 'tcp',
        internal_port: 5751,
        autostop: true,
        autostart: true,
        min_machines_running: 0,
        ports: [
          { port: 80, handlers: ['http'], force_https: true },
          { port: 443, handlers: ['http', 'tls'] },
        ],
        concurrency: { type: 'requests', soft_limit: 25, hard_limit: 50 },
        checks: [
          {
            type: 'http',
            interval: '15s',
            timeout: '5s',
            grace_period: '20s',
            method: 'GET',
            path: '/health',
          },
        ],
      },
    ],
    files: overrides.files ?? [
      { guest_path: '/run/secrets/niks3-signing-key', secret_name: 'NIKS3_SIGNING_KEY_FILE_B64' },
      { guest_path: '/run/secrets/niks3-oidc-config', secret_name: 'NIKS3_OIDC_CONFIG_B64' },
    ],
    stop_config: { signal: 'SIGTERM', timeout: '30s' },
    restart: { policy: 'on-failure', max_retries: 10 },
  };
}

function onlyMachine(fx: DeployFixture, app = APP): FakeMachine {
  const machines = fx.fly.app(app)?.liveMachines() ?? [];
  expect(machines).toHaveLength(1);
  return machines[0] as FakeMachine;
}

function withoutMetadata(config: Record<string, unknown>): Record<string, unknown> {
  const { metadata, ...rest } = config;
  void metadata;
  return rest;
}

describe('deploy (dist bundle against the fake Fly)', () => {
  let fx: DeployFixture;
  let temp: string;
  beforeAll(async () => {
    fx = await deployFixture();
    temp = mkdtempSync(join(tmpdir(), 'deploy-test-'));
  });
  afterAll(async () => {
    await fx.close();
    rmSync(temp, { recursive: true, force: true });
  });

  it('apply on an empty org creates one app, two IPs, the secrets and one machine as stack.md says', async () => {
    const run = await fx.run({}, { env: { RUNNER_TEMP: temp } });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);

    const app = fx.fly.app(APP);
    expect(app?.org).toBe(ORG);
    expect(fx.fly.world.apps.size).toBe(1);
    // Two IPs: a shared v4 and a public v6, so <app>.fly.dev resolves.
    expect(app?.ips.map((ip) => ip.type).sort()).toEqual(['shared_v4', 'v6']);
    expect(app?.resolves()).toBe(true);

    // The secrets of stack.md, set in one call.
    expect([...(app?.secrets.keys() ?? [])].sort()).toEqual([
      'NIKS3_API_TOKEN',
      'NIKS3_DB',
      'NIKS3_OIDC_CONFIG_B64',
      'NIKS3_S3_ACCESS_KEY',
      'NIKS3_S3_SECRET_KEY',
      'NIKS3_SIGNING_KEY_FILE_B64',
    ]);
    expect(app?.secrets.get('NIKS3_DB')?.value).toBe(fx.secrets['niks3-db']);
    expect(app?.secrets.get('NIKS3_API_TOKEN')?.value).toBe(fx.secrets['niks3-api-token']);
    expect(app?.secrets.get('NIKS3_S3_ACCESS_KEY')?.value).toBe(fx.secrets['niks3-s3-access-key']);
    expect(app?.secrets.get('NIKS3_S3_SECRET_KEY')?.value).toBe(fx.secrets['niks3-s3-secret-key']);
    expect(fx.fly.writes().filter((r) => r.route === 'POST /v1/apps/:app/secrets')).toHaveLength(1);

    // One machine whose config equals stack.md field by field.
    const machine = onlyMachine(fx);
    expect(machine.region).toBe('iad');
    expect(withoutMetadata(machine.current.config)).toEqual(expectedConfig());
    // The client sent autostop as fly.toml's "stop"; env keys sorted as the template rendered them.
    const requested = machine.current.requested as {
      services: Array<{ autostop: unknown }>;
      env: Record<string, string>;
    };
    expect(requested.services[0]?.autostop).toBe('stop');
    expect(Object.keys(requested.env)).toEqual(Object.keys(requested.env).sort());
    const metadata = machine.current.config['metadata'] as Record<string, string>;
    expect(metadata['fly_platform_version']).toBe('v2');
    expect(metadata['fly_process_group']).toBe('app');
    expect(metadata['niks3_config_hash']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(metadata['niks3_launch_id']).toMatch(/^gh-3000003-1-[0-9a-f]{8}$/);
    // The digest is in the metadata; no secret (nor its base64 form) is.
    const metadataText = JSON.stringify(metadata);
    for (const secret of Object.values(fx.secrets)) {
      expect(metadataText).not.toContain(secret);
      expect(metadataText).not.toContain(Buffer.from(secret).toString('base64'));
    }

    // The create carried min_secrets_version (the version of the secrets call) and a lease TTL.
    const create = fx.fly.requests.find((r) => r.route === 'POST /v1/apps/:app/machines');
    expect(create?.body).toMatchObject({
      region: 'iad',
      min_secrets_version: app?.secretsVersion,
      skip_launch: false,
    });
    expect((create?.body as { lease_ttl?: number }).lease_ttl).toBeGreaterThan(0);

    // The machine booted with the files: the signing key and the OIDC policy JSON.
    const boot = machine.current.boot;
    expect(boot?.files['/run/secrets/niks3-signing-key']).toBe(fx.signingKey);
    const policy = JSON.parse(boot?.files['/run/secrets/niks3-oidc-config'] ?? '{}') as unknown;
    expect(policy).toEqual({
      providers: {
        github: {
          issuer: 'https://token.actions.githubusercontent.com',
          audience: 'https://niks3-test.fly.dev',
          bound_claims: { repository_owner_id: ['1000001'] },
          bound_subject: ['repo:octo-org/*:*'],
        },
      },
    });
    expect(boot?.env['NIKS3_DB']).toBe(fx.secrets['niks3-db']);
    expect(machine.state).toBe('started');

    // The create lease was released with its nonce.
    expect(machine.activeLease()).toBeUndefined();
    const release = fx.fly.requests.find((r) => r.route === 'DELETE /v1/apps/:app/machines/:id/lease');
    expect(release?.headers['fly-machine-lease-nonce']).toMatch(/^[0-9a-f]{12}$/);
    expect(release?.status).toBe(200);

    // The affinity cookie set by the app create is sent back on later calls for the app.
    const afterCreate = fx.fly.requests.filter(
      (r) =>
        r.path.startsWith(`/v1/apps/${APP}`) &&
        r.seq > (fx.fly.requests.find((q) => q.route === 'POST /v1/apps')?.seq ?? 0),
    );
    expect(afterCreate.length).toBeGreaterThan(0);
    expect(afterCreate.every((r) => r.headers['cookie'] === `fly-affinity=${app?.affinity ?? ''}`)).toBe(
      true,
    );

    // Outputs.
    expect(run.outputs['server-url']).toBe('https://niks3-test.fly.dev');
    expect(run.outputs['public-key']).toBe(fx.publicKey);
    expect(run.outputs['machine-id']).toBe(machine.id);
    expect(run.outputs['image']).toBe('ghcr.io/mic92/niks3:v1.7.0');
    expect(run.outputs['changed']).toBe('true');
    const plan = JSON.parse(run.outputs['plan'] ?? '[]') as Array<{ action: string }>;
    expect(plan.map((c) => c.action)).toEqual([
      'create-app',
      'set-secrets',
      'allocate-ip',
      'allocate-ip',
      'create-machine',
    ]);

    // fly.toml in RUNNER_TEMP, equivalent to the original template.
    expect(run.outputs['fly-toml']?.startsWith(temp)).toBe(true);
    const toml = readFileSync(run.outputs['fly-toml'] ?? '', 'utf8');
    for (const line of [
      'app = "niks3-test"',
      'primary_region = "iad"',
      'kill_signal = "SIGTERM"',
      'kill_timeout = 30',
      'swap_size_mb = 512',
      '  image = "ghcr.io/mic92/niks3:v1.7.0"',
      '  NIKS3_HTTP_ADDR = ":5751"',
      '  NIKS3_OIDC_CONFIG = "/run/secrets/niks3-oidc-config"',
      '  secret_name = "NIKS3_SIGNING_KEY_FILE_B64"',
      '  internal_port = 5751',
      '  force_https = true',
      '  auto_stop_machines = "stop"',
      '  auto_start_machines = true',
      '  min_machines_running = 0',
      '    soft_limit = 25',
      '    hard_limit = 50',
      '    path = "/health"',
      '  memory = "256mb"',
    ]) {
      expect(toml).toContain(line);
    }
    const envBlock = toml
      .slice(toml.indexOf('[env]'), toml.indexOf('[[files]]'))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(' ')[0] ?? '');
    expect(envBlock).toEqual([...envBlock].sort());

    // Job summary: app, region, image, machine state and checks, what changed, the consumer snippet.
    expect(run.summary).toContain('niks3-test');
    expect(run.summary).toContain('| Region | iad |');
    expect(run.summary).toContain('ghcr.io/mic92/niks3:v1.7.0');
    expect(run.summary).toContain('| Machine state | started |');
    expect(run.summary).toContain('servicecheck-00-http-5751 passing');
    expect(run.summary).toContain('create a machine in iad');
    expect(run.summary).toContain(`extra-trusted-public-keys = ${fx.publicKey}`);
    expect(run.summary).toContain('extra-substituters = https://cache.example.dev');
  });

  it('a second apply with the same inputs makes no writing request and outputs changed=false', async () => {
    const before = fx.fly.requests.length;
    const run = await fx.run();
    expect(run.code).toBe(0);
    const during = fx.fly.requests.slice(before);
    expect(during.length).toBeGreaterThan(0);
    expect(during.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(run.outputs['changed']).toBe('false');
    expect(run.outputs['plan']).toBe('[]');
    expect(run.outputs['machine-id']).toBe(onlyMachine(fx).id);
    expect(run.summary).toContain('None: everything was already as desired.');
  });

  it('plan mode lists an image change and writes nothing', async () => {
    const before = fx.fly.requests.length;
    const run = await fx.run({ mode: 'plan', 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1' });
    expect(run.code).toBe(0);
    expect(fx.fly.requests.slice(before).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(run.outputs['changed']).toBe('true');
    const plan = JSON.parse(run.outputs['plan'] ?? '[]') as Array<{ action: string; reasons?: string[] }>;
    expect(plan).toHaveLength(1);
    expect(plan[0]?.action).toBe('update-machine');
    expect(plan[0]?.reasons?.join()).toContain('v1.7.0 -> ghcr.io/mic92/niks3:v1.7.1');
    expect(onlyMachine(fx).current.config['image']).toBe('ghcr.io/mic92/niks3:v1.7.0');
  });

  it('changing the image updates the same machine under a lease, then releases it', async () => {
    const machine = onlyMachine(fx);
    const versionsBefore = machine.versions.length;
    const before = fx.fly.requests.length;
    const run = await fx.run({ 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1' });
    expect(run.code).toBe(0);
    expect(onlyMachine(fx).id).toBe(machine.id);
    expect(machine.versions.length).toBe(versionsBefore + 1);
    expect(machine.current.config['image']).toBe('ghcr.io/mic92/niks3:v1.7.1');
    expect(withoutMetadata(machine.current.config)).toEqual(
      expectedConfig({ image: 'ghcr.io/mic92/niks3:v1.7.1' }),
    );
    const writes = fx.fly.requests.slice(before).filter((r) => r.method !== 'GET');
    // No secrets call: only the image changed.
    expect(writes.map((r) => r.route)).toEqual([
      'POST /v1/apps/:app/machines/:id/lease',
      'POST /v1/apps/:app/machines/:id',
      'DELETE /v1/apps/:app/machines/:id/lease',
    ]);
    const lease = writes[0];
    const update = writes[1];
    const release = writes[2];
    expect(lease?.status).toBe(201);
    expect(update?.headers['fly-machine-lease-nonce']).toMatch(/^[0-9a-f]{12}$/);
    expect(release?.headers['fly-machine-lease-nonce']).toBe(update?.headers['fly-machine-lease-nonce']);
    expect(release?.status).toBe(200);
    expect(machine.activeLease()).toBeUndefined();
    expect(machine.state).toBe('started');
    expect(run.outputs['image']).toBe('ghcr.io/mic92/niks3:v1.7.1');
    expect(run.outputs['changed']).toBe('true');
  });

  it('changing a secret sets the secrets and restarts the same machine with the new version', async () => {
    const machine = onlyMachine(fx);
    const before = fx.fly.requests.length;
    const db = 'postgresql://niks3:An0ther-secret-pass@db2.example.com/niks3?sslmode=require';
    const run = await fx.run(
      { 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1', 'niks3-db': db },
      { secrets: [db] },
    );
    expect(run.code).toBe(0);
    const app = fx.fly.app(APP);
    expect(app?.secrets.get('NIKS3_DB')?.value).toBe(db);
    const writes = fx.fly.requests.slice(before).filter((r) => r.method !== 'GET');
    expect(writes.map((r) => r.route)).toEqual([
      'POST /v1/apps/:app/secrets',
      'POST /v1/apps/:app/machines/:id/lease',
      'POST /v1/apps/:app/machines/:id',
      'DELETE /v1/apps/:app/machines/:id/lease',
    ]);
    expect(writes[2]?.body).toMatchObject({ min_secrets_version: app?.secretsVersion });
    expect(onlyMachine(fx).id).toBe(machine.id);
    expect(machine.current.boot?.env['NIKS3_DB']).toBe(db);
    expect(machine.current.boot?.secretsVersion).toBe(app?.secretsVersion);
    expect(machine.activeLease()).toBeUndefined();

    // And again: nothing to do.
    const again = fx.fly.requests.length;
    const rerun = await fx.run(
      { 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1', 'niks3-db': db },
      { secrets: [db] },
    );
    expect(rerun.outputs['changed']).toBe('false');
    expect(fx.fly.requests.slice(again).filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('a secret changed outside nix-cache is noticed and set again', async () => {
    const app = fx.fly.app(APP);
    app?.writeSecrets({ NIKS3_S3_SECRET_KEY: 'changed-by-hand-with-flyctl' }, fx.fly.clock.now());
    const db = 'postgresql://niks3:An0ther-secret-pass@db2.example.com/niks3?sslmode=require';
    const run = await fx.run(
      { 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1', 'niks3-db': db },
      { secrets: [db] },
    );
    expect(run.code).toBe(0);
    expect(run.outputs['changed']).toBe('true');
    expect(app?.secrets.get('NIKS3_S3_SECRET_KEY')?.value).toBe(fx.secrets['niks3-s3-secret-key']);
    expect(run.stdout).toContain('changed outside nix-cache');
  });

  it('an autostopped machine is left alone when nothing changed', async () => {
    fx.fly.idle(APP);
    expect(onlyMachine(fx).state).toBe('stopped');
    const before = fx.fly.requests.length;
    const db = 'postgresql://niks3:An0ther-secret-pass@db2.example.com/niks3?sslmode=require';
    const run = await fx.run(
      { 'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1', 'niks3-db': db },
      { secrets: [db] },
    );
    expect(run.outputs['changed']).toBe('false');
    expect(fx.fly.requests.slice(before).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(run.summary).toContain('stopped (idle; starts on the next request)');
  });

  it('without subject patterns and owner ids there is no OIDC config at all', async () => {
    const app = 'niks3-no-oidc';
    const run = await fx.run(
      { 'fly-app-name': app, 'oidc-github-subject-patterns': undefined, 'oidc-github-owner-ids': undefined },
      { env: { GITHUB_REPOSITORY_OWNER_ID: undefined } },
    );
    expect(run.code).toBe(0);
    const machine = onlyMachine(fx, app);
    const env = machine.current.config['env'] as Record<string, string>;
    expect(env['NIKS3_OIDC_CONFIG']).toBeUndefined();
    expect(withoutMetadata(machine.current.config)).toEqual(
      expectedConfig({
        env: { NIKS3_OIDC_CONFIG: undefined },
        files: [{ guest_path: '/run/secrets/niks3-signing-key', secret_name: 'NIKS3_SIGNING_KEY_FILE_B64' }],
      }),
    );
    expect(fx.fly.app(app)?.secrets.has('NIKS3_OIDC_CONFIG_B64')).toBe(false);
    expect(machine.current.boot?.files['/run/secrets/niks3-oidc-config']).toBeUndefined();
    expect(run.summary).toContain('none (GitHub OIDC pushes disabled');
  });

  it('dropping the OIDC policy later unsets its secret and removes the env', async () => {
    const run = await fx.run(
      {
        'niks3-image': 'ghcr.io/mic92/niks3:v1.7.1',
        'niks3-db': 'postgresql://niks3:An0ther-secret-pass@db2.example.com/niks3?sslmode=require',
        'oidc-github-subject-patterns': undefined,
        'oidc-github-owner-ids': undefined,
      },
      {
        env: { GITHUB_REPOSITORY_OWNER_ID: undefined },
        secrets: ['postgresql://niks3:An0ther-secret-pass@db2.example.com/niks3?sslmode=require'],
      },
    );
    expect(run.code).toBe(0);
    const machine = onlyMachine(fx);
    expect((machine.current.config['env'] as Record<string, string>)['NIKS3_OIDC_CONFIG']).toBeUndefined();
    expect(fx.fly.app(APP)?.secrets.has('NIKS3_OIDC_CONFIG_B64')).toBe(false);
    expect(machine.state).toBe('started');
  });
});
