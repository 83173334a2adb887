/**
 * Contract tests of the fake Fly (spec fly.md §8): what the deploy tests and the demo rely on,
 * checked with plain fetch, plus the Fly client's lease and timeout handling against it.
 */
import { FlyClient } from '../../src/core/fly/fly-client.js';
import { LeaseKeeper } from '../../src/core/fly/lease-keeper.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { MemoryStepIO } from '../../src/core/step/memory-io.js';
import { defaultDeps, run } from '../../src/actions/deploy/main.js';
import { generateSecretKey } from '../../src/core/nix/signing-key.js';
import type {
  FlyApp,
  FlyOrganization,
  Lease,
  Machine,
  SetSecretsResult,
} from '../../src/core/fly/fly-api-types.js';
import { LOCAL_ORG_SLUG, LOCAL_ORG_TOKEN, startFakeFly, type FakeFly } from '../fakes/fly/index.js';

const MAC = 'fm2_local-org-token-for-the-fake-fly-api';

/** The body of an error answer (and of the few answers that only carry a status). */
interface ErrorBody {
  readonly error?: string;
  readonly status?: string;
}

/** A GraphQL answer to the organizations query. */
interface OrganizationsAnswer {
  readonly data?: { readonly organizations: { readonly nodes: readonly FlyOrganization[] } };
  readonly errors?: readonly { readonly message: string }[];
}

describe('fake Fly', () => {
  let fly: FakeFly;
  beforeEach(async () => {
    fly = await startFakeFly({ speed: 50, takenAppNames: ['taken'] });
  });
  afterEach(async () => {
    await fly.close();
  });

  /** One API call; `T` is the shape the test expects the JSON answer to have. */
  const call = async <T = ErrorBody>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; json: T; headers: Headers }> => {
    const res = await fetch(`${fly.apiUrl}${path}`, {
      method,
      headers: {
        authorization: LOCAL_ORG_TOKEN,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
  };

  it('accepts every documented spelling of the token and refuses others with 401', async () => {
    for (const header of [`FlyV1 ${MAC}`, `Bearer ${MAC}`, `Bearer FlyV1 ${MAC}`]) {
      expect((await call('GET', '/v1/tokens/current', undefined, { authorization: header })).status).toBe(
        200,
      );
    }
    const bad = await call('GET', '/v1/tokens/current', undefined, { authorization: 'FlyV1 fm2_nope' });
    expect(bad.status).toBe(401);
    expect(bad.json).toEqual({ error: 'Authenticate: token validation error' });
    expect(bad.headers.get('fly-request-id')).toBeTruthy();
    expect(fly.requests.every((r) => r.headers['authorization'] === undefined)).toBe(true);
  });

  it('keeps one global app name space and ignores idempotency keys, as the real API is taken to', async () => {
    expect(
      (await call('POST', '/v1/apps', { name: 'mine', org_slug: 'personal', idempotency_key: 'k1' })).status,
    ).toBe(201);
    const again = await call('POST', '/v1/apps', {
      name: 'mine',
      org_slug: 'personal',
      idempotency_key: 'k1',
    });
    expect(again.status).toBe(422);
    expect(again.json.status).toBe('name_taken');
  });

  it('honours idempotency keys when set to (appCreateIdempotencyKey: honoured)', async () => {
    await fly.close();
    fly = await startFakeFly({ speed: 50, takenAppNames: ['taken'], appCreateIdempotencyKey: 'honoured' });
    expect((await call('GET', '/v1/apps/taken')).status).toBe(403);
    const taken = await call('POST', '/v1/apps', { name: 'taken', org_slug: LOCAL_ORG_SLUG });
    expect(taken.status).toBe(422);
    expect(taken.json.status).toBe('name_taken');
    const first = await call<FlyApp>('POST', '/v1/apps', {
      app_name: 'mine',
      org_slug: 'personal',
      idempotency_key: 'k1',
    });
    expect(first.status).toBe(201);
    expect(first.headers.get('set-cookie')).toMatch(/^fly-affinity=\w+; Path=\/v1\/apps\/mine/);
    expect(
      (await call<FlyApp>('POST', '/v1/apps', { name: 'mine', org_slug: 'personal', idempotency_key: 'k1' }))
        .json.id,
    ).toBe(first.json.id);
    expect(
      (await call('POST', '/v1/apps', { name: 'other', org_slug: 'personal', idempotency_key: 'k1' })).status,
    ).toBe(422);
    expect((await call<FlyApp>('GET', '/v1/apps/mine')).json.organization?.slug).toBe(LOCAL_ORG_SLUG);
  });

  it('versions secrets, keeps values out of lists, and deletes apps after a delay', async () => {
    await call('POST', '/v1/apps', { name: 'app1', org_slug: LOCAL_ORG_SLUG });
    const set = await call<SetSecretsResult & { readonly Version: number }>('POST', '/v1/apps/app1/secrets', {
      values: { A: 'one', B: 'two' },
    });
    expect(set.json.version).toBe(1);
    expect(set.json.Version).toBe(1);
    expect(JSON.stringify(set.json)).not.toContain('one');
    expect(
      (
        await call<SetSecretsResult>('POST', '/v1/apps/app1/secrets', {
          values: { A: 'one', B: null, C: null },
        })
      ).json.version,
    ).toBe(2);
    // Eventually consistent: the first plain list still answers the state before the write ...
    expect(
      (await call<SetSecretsResult>('GET', '/v1/apps/app1/secrets')).json.secrets.map((s) => s.name),
    ).toEqual(['A', 'B']);
    expect(
      (await call<SetSecretsResult>('GET', '/v1/apps/app1/secrets')).json.secrets.map((s) => s.name),
    ).toEqual(['A']);
    // ... and a list with min_version is at least that new.
    await call('POST', '/v1/apps/app1/secrets', { values: { D: 'four' } });
    expect(
      (await call<SetSecretsResult>('GET', '/v1/apps/app1/secrets?min_version=3')).json.secrets.map(
        (s) => s.name,
      ),
    ).toEqual(['A', 'D']);
    expect((await call('POST', '/v1/apps/app1/secrets', { values: { 'bad-name': 'x' } })).status).toBe(400);
    expect((await call('DELETE', '/v1/apps/app1')).status).toBe(202);
    expect((await call('GET', '/v1/apps/app1')).status).toBe(200);
    fly.clock.advance(5_000);
    expect((await call('GET', '/v1/apps/app1')).status).toBe(404);
    expect((await call('DELETE', '/v1/apps/app1')).status).toBe(404);
  });

  it('runs machines through their states on the clock, with checks, leases and waits', async () => {
    await call('POST', '/v1/apps', { name: 'app2', org_slug: LOCAL_ORG_SLUG });
    const config = {
      image: 'img:1',
      guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 },
      services: [
        {
          protocol: 'tcp',
          internal_port: 5751,
          autostop: 'stop',
          autostart: true,
          checks: [
            { type: 'http', interval: 15_000_000_000, timeout: '5s', grace_period: '20s', path: '/health' },
          ],
        },
      ],
      metadata: { fly_process_group: 'app', niks3_launch_id: 'L1' },
    };
    expect((await call('POST', '/v1/apps/app2/machines', { region: 'nowhere', config })).status).toBe(400);
    expect(
      (
        await call('POST', '/v1/apps/app2/machines', {
          region: 'iad',
          config: { ...config, guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 300 } },
        })
      ).status,
    ).toBe(422);
    const created = await call<Machine>('POST', '/v1/apps/app2/machines', {
      region: 'iad',
      config,
      lease_ttl: 60,
    });
    expect(created.status).toBe(200);
    expect(created.json.id).toMatch(/^[0-9a-f]{14}$/);
    expect(created.json.instance_id).toHaveLength(26);
    expect(created.json.nonce).toMatch(/^[0-9a-f]{12}$/);
    expect(created.json.config?.services[0]?.autostop).toBe(true);
    expect(created.json.config?.services[0]?.checks?.[0]?.interval).toBe('15s');
    const id = created.json.id;
    expect((await call('GET', `/v1/apps/app2/machines/${id}/wait?state=started&timeout=61`)).status).toBe(
      400,
    );
    expect(
      (await call('GET', `/v1/apps/app2/machines/${id}/wait?state=started&timeout=10`)).json,
    ).toMatchObject({ ok: true, state: 'started' });
    expect((await call<Machine>('GET', `/v1/apps/app2/machines/${id}`)).json.checks).toEqual([]);
    fly.clock.advance(21_000);
    expect((await call<Machine>('GET', `/v1/apps/app2/machines/${id}`)).json.checks).toMatchObject([
      { name: 'servicecheck-00-http-5751', status: 'passing' },
    ]);
    expect(
      (await call<Machine[]>('GET', `/v1/apps/app2/machines?metadata.niks3_launch_id=L1`)).json,
    ).toHaveLength(1);
    expect(
      (await call<Machine[]>('GET', `/v1/apps/app2/machines?metadata.niks3_launch_id=L2`)).json,
    ).toHaveLength(0);

    // The create lease guards writes; the nonce opens them; release frees the machine.
    const nonce = created.json.nonce as string;
    const refused = await call('POST', `/v1/apps/app2/machines/${id}`, { config });
    expect(refused.status).toBe(409);
    expect(refused.json.error).toMatch(/lease currently held by tok_\w+@tokens\.fly\.io/);
    expect((await call('POST', `/v1/apps/app2/machines/${id}/lease`, { ttl: 30 })).status).toBe(409);
    const updated = await call<Machine>(
      'POST',
      `/v1/apps/app2/machines/${id}`,
      { config: { ...config, image: 'img:2' } },
      { 'fly-machine-lease-nonce': nonce },
    );
    expect(updated.status).toBe(200);
    expect(updated.json.instance_id).not.toBe(created.json.instance_id);
    const old = await call(
      'GET',
      `/v1/apps/app2/machines/${id}/wait?state=started&timeout=5&version=${created.json.instance_id}`,
    );
    expect(old.status).toBe(400);
    expect(old.json.error).toMatch(/currently replaced/);
    expect(
      (
        await call('DELETE', `/v1/apps/app2/machines/${id}/lease`, undefined, {
          'fly-machine-lease-nonce': 'wrong',
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await call('DELETE', `/v1/apps/app2/machines/${id}/lease`, undefined, {
          'fly-machine-lease-nonce': nonce,
        })
      ).json,
    ).toEqual({ status: 'success', data: { ok: true } });
    const lease = await call<{ readonly status: string; readonly data: Lease }>(
      'POST',
      `/v1/apps/app2/machines/${id}/lease?ttl=10`,
    );
    expect(lease.status).toBe(201);
    expect(lease.json.status).toBe('success');
    fly.clock.advance(11_000);
    expect((await call('GET', `/v1/apps/app2/machines/${id}/lease`)).status).toBe(404);

    // A wait that cannot be satisfied answers 408 when the virtual timeout passes.
    expect((await call('GET', `/v1/apps/app2/machines/${id}/wait?state=stopped&timeout=2`)).status).toBe(408);
    // Autostop and autostart hooks.
    fly.clock.advance(5_000);
    fly.idle('app2');
    expect(fly.app('app2')?.liveMachines()[0]?.state).toBe('stopped');
    fly.request('app2');
    fly.clock.advance(5_000);
    expect((await call<Machine>('GET', `/v1/apps/app2/machines/${id}`)).json.state).toBe('started');
    // Destroying a started machine needs force; a second destroy is 404.
    expect((await call('DELETE', `/v1/apps/app2/machines/${id}`)).status).toBe(412);
    expect((await call('DELETE', `/v1/apps/app2/machines/${id}?force=true`)).status).toBe(200);
    expect((await call('DELETE', `/v1/apps/app2/machines/${id}?force=true`)).status).toBe(404);
  });

  it('answers GraphQL organizations per token, and errors for unknown tokens', async () => {
    const gql = async (authorization: string): Promise<OrganizationsAnswer> =>
      (await (
        await fetch(fly.graphqlUrl, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json' },
          body: JSON.stringify({ query: 'query { organizations { nodes { id slug rawSlug name type } } }' }),
        })
      ).json()) as OrganizationsAnswer;
    expect((await gql(LOCAL_ORG_TOKEN)).data?.organizations.nodes).toMatchObject([
      { slug: 'personal', rawSlug: LOCAL_ORG_SLUG, type: 'PERSONAL' },
    ]);
    expect((await gql('Bearer nobody')).errors?.[0]?.message).toBe('You must be authenticated to view this.');
  });

  it('injects faults per route, including answers lost after the work was done', async () => {
    fly.faults.add({ route: 'POST /v1/apps', times: 1, afterHandling: true, action: { status: 408 } });
    expect((await call('POST', '/v1/apps', { name: 'ghost', org_slug: LOCAL_ORG_SLUG })).status).toBe(408);
    expect(fly.app('ghost')).toBeDefined();
    fly.faults.add({
      route: 'GET /v1/apps/:app',
      times: 2,
      action: { status: 429, headers: { 'retry-after': '2' } },
    });
    const limited = await call('GET', '/v1/apps/ghost');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect((await call('GET', '/v1/apps/ghost')).status).toBe(429);
    expect((await call('GET', '/v1/apps/ghost')).status).toBe(200);
    fly.faults.add({ times: 1, action: { kind: 'reset' } });
    await expect(call('GET', '/v1/apps/ghost')).rejects.toThrow();
    expect(fly.requests.map((r) => r.fault).filter(Boolean)).toEqual([
      'after-commit',
      'status',
      'status',
      'reset',
    ]);
  });

  it('speaks the shared fault language: delays, raw bodies, paths, and no delay after handling', async () => {
    await call('POST', '/v1/apps', { name: 'slow', org_slug: LOCAL_ORG_SLUG });
    fly.faults.add({ path: /^\/v1\/apps\/slow$/, times: 1, action: { kind: 'delay', ms: 150 } });
    const started = performance.now();
    expect((await call('GET', '/v1/apps/slow')).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    fly.faults.add({ route: 'GET /v1/apps/:app', times: 1, action: { status: 503, body: '{"error":"x"}' } });
    expect(await call('GET', '/v1/apps/slow')).toMatchObject({ status: 503, json: { error: 'x' } });
    expect(fly.requests.slice(-2).map((r) => r.fault)).toEqual(['delay', 'status']);
    expect(() => fly.faults.add({ afterHandling: true, action: { kind: 'delay', ms: 1 } })).toThrow(
      /no "delay" after handling/,
    );
  });

  it('the client waits for a contended lease, then fails clearly', async () => {
    await call('POST', '/v1/apps', { name: 'app3', org_slug: LOCAL_ORG_SLUG });
    const m = await call<Machine>('POST', '/v1/apps/app3/machines', {
      region: 'iad',
      config: { image: 'img:1' },
      lease_ttl: 600,
    });
    const logger = new MemoryLogger();
    const client = new FlyClient({
      token: LOCAL_ORG_TOKEN,
      apiUrl: fly.apiUrl,
      graphqlUrl: fly.graphqlUrl,
      logger,
    });
    const keeper = new LeaseKeeper({
      client,
      logger,
      sleep: () => Promise.resolve(),
      description: 'test',
      contendedForMs: 50,
    });
    await expect(keeper.acquire('app3', m.json.id)).rejects.toThrow(
      /lease currently held by .*Another deploy/s,
    );
  });

  it('a machine create that really times out (no answer at all) is found by its launch id', async () => {
    fly.faults.add({
      route: 'POST /v1/apps/:app/machines',
      times: 1,
      afterHandling: true,
      action: { kind: 'hang' },
    });
    const { secretKeyText } = generateSecretKey('k-1');
    const io = new MemoryStepIO({
      inputs: {
        'fly-api-token': LOCAL_ORG_TOKEN,
        'fly-app-name': 'timeouts',
        'fly-api-url': fly.apiUrl,
        'fly-graphql-url': fly.graphqlUrl,
        'cache-url': 'https://cache.example.dev',
        'bucket-name': 'bucket',
        's3-endpoint': 'x.r2.cloudflarestorage.com',
        'niks3-api-token': 'x'.repeat(40),
        'niks3-db': 'postgresql://u:p@h/db',
        'niks3-s3-access-key': 'ak',
        'niks3-s3-secret-key': 'sk',
        'niks3-signing-key': secretKeyText,
        'oidc-github-owner-ids': '42',
        'wait-timeout': '60',
      },
      env: {},
    });
    await run(io, {
      ...defaultDeps(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 200))),
      signals: undefined,
      exit: () => undefined,
      launchId: () => 'launch-test-1',
      httpTimeoutMs: 1_000,
      pollMs: 200,
    });
    expect(io.failure).toBeUndefined();
    expect(fly.requests.filter((r) => r.route === 'POST /v1/apps/:app/machines')).toHaveLength(1);
    const machines = fly.app('timeouts')?.liveMachines() ?? [];
    expect(machines).toHaveLength(1);
    expect(io.outputs.get('machine-id')).toBe(machines[0]?.id);
    expect(io.logger.lines.join('\n')).toMatch(/no answer within 1 s.*launch id launch-test-1/s);
  });
});
