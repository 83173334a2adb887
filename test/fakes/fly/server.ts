/**
 * The HTTP face of the fake: the Machines API under `/v1/…` and GraphQL at `POST /graphql`, on one
 * port (spec fly.md §1, §4, §8). Every request is logged (without its Authorization header); fault
 * rules (`faults.ts`) are applied per route; unknown routes answer 404 "not implemented in fake".
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeApp, ipJson, secretJson } from './apps.js';
import { FlyFakeError, badRequest, forbidden, notFound, unauthorized } from './fake-error.js';
import type { FlyFaultAction, FlyFaultLabel, FlyFaults } from './faults.js';
import { jsonText } from './json-text.js';
import { FakeMachine, normaliseConfig, ulid, type MachineVersion } from './machines.js';
import { TokenRegistry, type RegisteredToken } from './tokens.js';
import type { FlyWorld } from './world.js';

/** One logged request. */
export interface RequestLogEntry {
  readonly seq: number;
  /** Virtual time of arrival. */
  readonly at: number;
  readonly method: string;
  readonly path: string;
  /** The route template, e.g. `POST /v1/apps/:app/machines` (what faults are keyed by). */
  readonly route: string;
  readonly query: Record<string, string[]>;
  /** Request headers, lower-case, without `authorization`. */
  readonly headers: Record<string, string>;
  readonly body: unknown;
  /** Id of the token that made the request, when it was recognised. */
  readonly tokenId: string | undefined;
  status: number;
  /** The fault applied, if any (`after-commit` for one applied after handling). */
  fault: FlyFaultLabel | undefined;
}

interface Ctx {
  readonly method: string;
  readonly url: URL;
  readonly params: Record<string, string>;
  readonly body: unknown;
  readonly headers: IncomingMessage['headers'];
  readonly token: RegisteredToken;
  readonly signal: AbortSignal;
}

interface Reply {
  readonly status: number;
  readonly body?: unknown;
  /** Sent as is instead of `body` as JSON (an injected body). */
  readonly raw?: string;
  readonly headers?: Record<string, string>;
}

type Handler = (world: FlyWorld, ctx: Ctx) => Reply | Promise<Reply>;

interface Route {
  readonly method: string;
  readonly template: string;
  readonly regex: RegExp;
  readonly names: string[];
  readonly handler: Handler;
}

const routes: Route[] = [];
function route(method: string, template: string, handler: Handler): void {
  const names: string[] = [];
  const regex = new RegExp(
    `^${template.replace(/:([a-z_]+)/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    })}$`,
  );
  routes.push({ method, template, regex, names, handler });
}

const json = (status: number, body: unknown, headers?: Record<string, string>): Reply => ({
  status,
  body,
  ...(headers ? { headers } : {}),
});
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
const isWrite = (method: string): boolean => method !== 'GET' && method !== 'HEAD';

function bodyObject(ctx: Ctx): Record<string, unknown> {
  if (ctx.body === undefined || ctx.body === null) return {};
  if (typeof ctx.body !== 'object' || Array.isArray(ctx.body))
    throw badRequest('request body must be a JSON object');
  return ctx.body as Record<string, unknown>;
}

function nonceOf(ctx: Ctx): string | undefined {
  const value = ctx.headers['fly-machine-lease-nonce'];
  return typeof value === 'string' && value ? value : undefined;
}

// --- tokens and organisations -------------------------------------------------------------

route('GET', '/v1/tokens/current', (world, ctx) => {
  const t = ctx.token;
  if (t.kind === 'user') {
    if (world.settings.userTokenIntrospection === 'unauthorized') throw unauthorized();
    return json(200, {
      tokens: [
        {
          token_id: t.id,
          org_slug: '',
          organization: '',
          apps: [],
          user: 'user@example.com',
          restricted_to_machine: '',
          source_machine_id: '',
        },
      ],
    });
  }
  const org = t.org ? world.orgs.get(t.org) : undefined;
  return json(200, {
    tokens: [
      {
        token_id: t.id,
        org_slug: t.org ?? '',
        organization: org?.id ?? '',
        apps:
          t.kind === 'deploy'
            ? [...(t.apps ?? [])]
            : world.settings.orgTokenApps === 'org-apps'
              ? [...world.apps.values()].filter((a) => a.org === t.org).map((a) => a.name)
              : [],
        user: '',
        restricted_to_machine: '',
        source_machine_id: '',
      },
    ],
  });
});

// --- apps ----------------------------------------------------------------------------------

function appJson(world: FlyWorld, app: FakeApp): Record<string, unknown> {
  const org = world.orgs.get(app.org);
  return {
    id: app.id,
    name: app.name,
    status: app.status,
    organization: { name: org?.name ?? app.org, slug: app.org, internal_numeric_id: 1000 },
    internal_numeric_id: 2000,
    network: 'default',
    machine_count: app.liveMachines().length,
    volume_count: 0,
  };
}

route('GET', '/v1/apps', (world, ctx) => {
  world.purge();
  const slug = ctx.url.searchParams.get('org_slug') ?? '';
  const org = world.orgFor(ctx.token, slug || 'personal');
  const apps = [...world.apps.values()].filter((a) => a.org === org.slug);
  return json(200, {
    total_apps: apps.length,
    apps: apps.map((a) => ({
      id: a.id,
      name: a.name,
      machine_count: a.liveMachines().length,
      volume_count: 0,
      network: 'default',
    })),
  });
});

route('POST', '/v1/apps', (world, ctx) => {
  world.purge();
  const body = bodyObject(ctx);
  const name = jsonText(body['name'] ?? body['app_name']);
  const orgSlug = jsonText(body['org_slug']);
  if (ctx.token.kind === 'deploy' || ctx.token.kind === 'readonly')
    throw forbidden('unauthorized: this token cannot create apps');
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw badRequest(`invalid app name "${name}"`);
  const org = world.orgFor(ctx.token, orgSlug);
  const key =
    typeof body['idempotency_key'] === 'string' && world.settings.appCreateIdempotencyKey === 'honoured'
      ? body['idempotency_key']
      : '';
  if (key && world.idempotencyKeys.has(key)) {
    const earlier = world.idempotencyKeys.get(key);
    const app = earlier ? world.apps.get(earlier) : undefined;
    if (earlier !== name || !app) throw new FlyFakeError(422, 'idempotency key reused with a different name');
    return json(201, { id: app.id, created_at: app.createdAt });
  }
  if (world.apps.has(name))
    throw new FlyFakeError(422, 'Validation failed: Name has already been taken', { status: 'name_taken' });
  const app = new FakeApp({
    name,
    org: org.slug,
    now: world.clock.now(),
    visibilityLag: world.settings.appVisibilityLag,
  });
  world.apps.set(name, app);
  if (key) world.idempotencyKeys.set(key, name);
  return json(
    201,
    { id: app.id, created_at: app.createdAt },
    { 'set-cookie': `fly-affinity=${app.affinity}; Path=/v1/apps/${name}; HttpOnly` },
  );
});

route('GET', '/v1/apps/:app', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  if (app.visibilityLag > 0) {
    app.visibilityLag -= 1;
    if (world.settings.appVisibilityLagStatus === 401) throw unauthorized();
    throw notFound('Could not find App');
  }
  return json(200, appJson(world, app));
});

route('DELETE', '/v1/apps/:app', (world, ctx) => {
  if (ctx.token.kind === 'deploy' && !world.settings.deployTokenCanDeleteApp) {
    world.appFor(ctx.token, ctx.params['app'] ?? '', true); // 404 for a foreign app first
    throw forbidden('unauthorized: a deploy token cannot delete its app');
  }
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  if (app.deleteAt === undefined) {
    app.deleteAt = world.clock.now() + world.settings.appDeleteDelayMs;
    app.status = 'suspended';
    for (const machine of app.machines.values()) {
      if (machine.state !== 'destroyed') {
        machine.state = 'destroying';
        machine.lease = undefined;
      }
    }
  }
  return { status: 202 };
});

// --- IP assignments --------------------------------------------------------------------------

route('GET', '/v1/apps/:app/ip_assignments', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  return json(200, { ips: app.ips.map(ipJson) });
});

route('POST', '/v1/apps/:app/ip_assignments', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  const type = jsonText(bodyObject(ctx)['type']);
  if (type !== 'v4' && type !== 'v6' && type !== 'shared_v4' && type !== 'private_v6')
    throw badRequest(`invalid ip type "${type}"`);
  if (type === 'shared_v4') {
    const existing = app.ips.find((ip) => ip.type === 'shared_v4');
    if (existing) {
      if (world.settings.sharedV4Repeat === 'error')
        throw new FlyFakeError(422, 'app already has a shared IPv4 address');
      return json(200, ipJson(existing));
    }
  }
  const ip = {
    ip: world.nextIp(type, app),
    type,
    region: 'global',
    shared: type === 'shared_v4',
    createdAt: world.clock.now(),
  } as const;
  app.ips.push(ip);
  return json(200, ipJson(ip));
});

route('DELETE', '/v1/apps/:app/ip_assignments/:ip', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  const at = app.ips.findIndex((ip) => ip.ip === decodeURIComponent(ctx.params['ip'] ?? ''));
  if (at === -1) throw notFound('ip assignment not found');
  app.ips.splice(at, 1);
  return { status: 204 };
});

// --- secrets -------------------------------------------------------------------------------

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

route('POST', '/v1/apps/:app/secrets', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  const values = bodyObject(ctx)['values'];
  if (!values || typeof values !== 'object' || Array.isArray(values))
    throw badRequest('values must be an object');
  for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
    if (!SECRET_NAME.test(name)) throw badRequest(`invalid secret name "${name}"`);
    if (value !== null && typeof value !== 'string') throw badRequest(`invalid value for secret "${name}"`);
  }
  const version = app.writeSecrets(
    values as Record<string, string | null>,
    world.clock.now(),
    world.settings.secretsStaleReads,
  );
  return json(200, {
    secrets: [...app.secrets.values()].map((s) => secretJson(s, false)),
    version,
    Version: version,
  });
});

route('GET', '/v1/apps/:app/secrets', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  const show = ctx.url.searchParams.get('show_secrets') === 'true';
  const min = Number(ctx.url.searchParams.get(world.settings.secretsMinVersionParam) ?? NaN);
  const secrets = app.listSecrets(Number.isInteger(min) ? min : undefined);
  return json(200, { secrets: secrets.map((s) => secretJson(s, show)) });
});

route('GET', '/v1/apps/:app/secrets/:name', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  const secret = app.secrets.get(ctx.params['name'] ?? '');
  if (!secret) throw notFound('secret not found');
  return json(200, secretJson(secret, ctx.url.searchParams.get('show_secrets') === 'true'));
});

route('POST', '/v1/apps/:app/secrets/:name', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  const name = ctx.params['name'] ?? '';
  const value = bodyObject(ctx)['value'];
  if (!SECRET_NAME.test(name)) throw badRequest(`invalid secret name "${name}"`);
  if (typeof value !== 'string') throw badRequest('value must be a string');
  const version = app.writeSecrets({ [name]: value }, world.clock.now());
  const secret = app.secrets.get(name);
  return json(201, { ...(secret ? secretJson(secret, false) : {}), version });
});

route('DELETE', '/v1/apps/:app/secrets/:name', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  const version = app.writeSecrets({ [ctx.params['name'] ?? '']: null }, world.clock.now());
  return json(200, { version });
});

// --- machines ------------------------------------------------------------------------------

const isBase64 = (text: string): boolean => /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0;

/** Validates a machine config as the API does (fly.md §8.5); returns the boot problem, if any. */
function validateMachine(
  world: FlyWorld,
  app: FakeApp,
  body: Record<string, unknown>,
  config: Record<string, unknown>,
): string | undefined {
  if (typeof config['image'] !== 'string' || !config['image']) throw badRequest('config.image is required');
  const guest = (config['guest'] ?? { cpu_kind: 'shared', cpus: 1, memory_mb: 256 }) as Record<
    string,
    unknown
  >;
  const kind = guest['cpu_kind'] ?? 'shared';
  const cpus = Number(guest['cpus'] ?? 1);
  const memory = Number(guest['memory_mb'] ?? 256);
  if (kind !== 'shared' && kind !== 'performance') throw badRequest(`invalid cpu_kind "${jsonText(kind)}"`);
  if (!Number.isInteger(cpus) || cpus < 1) throw badRequest('invalid cpus');
  if (!Number.isInteger(memory) || memory % 256 !== 0)
    throw new FlyFakeError(422, `invalid memory size ${memory}: must be a multiple of 256`);
  const min = kind === 'shared' ? 256 * cpus : 2048 * cpus;
  if (memory < min)
    throw new FlyFakeError(
      422,
      `invalid memory size ${memory}: ${cpus} ${String(kind)} cpu(s) need at least ${min} MB`,
    );
  const minSecrets = body['min_secrets_version'];
  if (
    typeof minSecrets === 'number' &&
    minSecrets > app.secretsVersion &&
    world.settings.minSecretsVersionAhead === 'reject'
  ) {
    throw badRequest(
      `min_secrets_version ${minSecrets} is not available yet (current ${app.secretsVersion})`,
    );
  }
  let problem: string | undefined;
  for (const file of (config['files'] ?? []) as Array<Record<string, unknown>>) {
    const path = file['guest_path'];
    if (typeof path !== 'string' || !path.startsWith('/'))
      throw badRequest('files[].guest_path must be an absolute path');
    if (typeof file['secret_name'] === 'string') {
      const secret = app.secrets.get(file['secret_name']);
      if (!secret) problem = `secret ${file['secret_name']} for ${path} does not exist`;
      else if (!isBase64(secret.value)) problem = `secret ${file['secret_name']} for ${path} is not base64`;
    } else if (typeof file['raw_value'] === 'string') {
      if (!isBase64(file['raw_value'])) throw badRequest(`files[].raw_value for ${path} is not base64`);
    } else {
      throw badRequest(`files[] entry ${path} needs raw_value or secret_name`);
    }
  }
  if (problem && world.settings.badFileSecret === 'reject') throw badRequest(problem);
  return problem;
}

function newVersion(
  world: FlyWorld,
  config: Record<string, unknown>,
  problem: string | undefined,
): MachineVersion {
  return {
    instanceId: ulid(world.clock.now()),
    imageDigest: world.digestOf(jsonText(config['image'])),
    requested: structuredClone(config),
    config: normaliseConfig(config),
    createdAt: world.clock.now(),
    boot: undefined,
    bootProblem: problem,
  };
}

function grantLease(
  world: FlyWorld,
  machine: FakeMachine,
  token: RegisteredToken,
  ttlSeconds: number,
  description: string,
): void {
  machine.lease = {
    nonce: randomBytes(6).toString('hex'),
    expiresAt: world.clock.now() + ttlSeconds * 1000,
    owner: `${token.id}@tokens.fly.io`,
    description,
    version: machine.current.instanceId,
  };
}

function leaseJson(machine: FakeMachine): Record<string, unknown> {
  const lease = machine.activeLease();
  if (!lease) return {};
  return {
    nonce: lease.nonce,
    expires_at: Math.floor(lease.expiresAt / 1000),
    owner: lease.owner,
    description: lease.description,
    version: lease.version,
  };
}

route('GET', '/v1/apps/:app/machines', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  app.tick();
  const q = ctx.url.searchParams;
  const states = q
    .getAll('state')
    .flatMap((s) => s.split(','))
    .filter(Boolean);
  const includeDeleted = q.get('include_deleted') === 'true';
  const metadata = [...q.entries()]
    .filter(([k]) => k.startsWith('metadata.'))
    .map(([k, v]) => [k.slice('metadata.'.length), v] as const);
  const list: unknown[] = [];
  for (const machine of app.machines.values()) {
    if (machine.hiddenFromLists > 0) {
      machine.hiddenFromLists -= 1;
      continue;
    }
    if (!includeDeleted && (machine.state === 'destroyed' || machine.state === 'destroying')) continue;
    if (states.length > 0 && !states.includes(machine.state)) continue;
    if (q.get('region') && machine.region !== q.get('region')) continue;
    const meta = (machine.current.config['metadata'] ?? {}) as Record<string, string>;
    if (!metadata.every(([k, v]) => meta[k] === v)) continue;
    list.push(
      machine.toJson({ summary: q.get('summary') === 'true', incomplete: world.settings.incompleteConfig }),
    );
  }
  return json(200, list);
});

route('POST', '/v1/apps/:app/machines', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  const body = bodyObject(ctx);
  const config = body['config'];
  if (!config || typeof config !== 'object') throw badRequest('config is required');
  const region = jsonText(body['region'], world.settings.regions[0]);
  if (!world.settings.regions.includes(region)) throw badRequest(`invalid region "${region}"`);
  const problem = validateMachine(world, app, body, config as Record<string, unknown>);
  const image = String((config as Record<string, unknown>)['image']);
  const machine = new FakeMachine({
    app: app.name,
    region,
    clock: world.clock,
    behaviour: world.behaviourOf(image),
    hiddenFromLists: world.settings.listLag,
  });
  machine.addVersion(
    newVersion(world, config as Record<string, unknown>, problem),
    body['skip_launch'] !== true,
    world.settings.bootDelayMs,
    'launch',
  );
  app.machines.set(machine.id, machine);
  app.status = 'deployed';
  const ttl = Number(body['lease_ttl'] ?? 0);
  if (ttl > 0) grantLease(world, machine, ctx.token, ttl, 'lease from machine create');
  return json(200, { ...machine.toJson(), ...(ttl > 0 ? { nonce: machine.lease?.nonce } : {}) });
});

route('GET', '/v1/apps/:app/machines/:id', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  return json(200, {
    ...machine.toJson({ incomplete: world.settings.incompleteConfig }),
    ...(ctx.url.searchParams.get('include_leases') === 'true' ? { leases: [leaseJson(machine)] } : {}),
  });
});

route('POST', '/v1/apps/:app/machines/:id', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  machine.requireNonce(nonceOf(ctx));
  const body = bodyObject(ctx);
  const config = body['config'];
  if (!config || typeof config !== 'object') throw badRequest('config is required (no partial updates)');
  if (body['region'] !== undefined && body['region'] !== machine.region)
    throw badRequest('region cannot be changed');
  if (typeof body['current_version'] === 'string' && body['current_version'] !== machine.current.instanceId) {
    throw new FlyFakeError(
      412,
      `current version ${body['current_version']} does not match ${machine.current.instanceId}`,
    );
  }
  const problem = validateMachine(world, app, body, config as Record<string, unknown>);
  const stopped = machine.state === 'stopped' || machine.state === 'created' || machine.state === 'suspended';
  const launch = !(body['skip_launch'] === true && stopped);
  machine.behaviour = world.behaviourOf(String((config as Record<string, unknown>)['image']));
  machine.addVersion(
    newVersion(world, config as Record<string, unknown>, problem),
    launch,
    world.settings.bootDelayMs,
    'update',
  );
  return json(200, machine.toJson());
});

route('DELETE', '/v1/apps/:app/machines/:id', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  machine.requireNonce(nonceOf(ctx));
  const force = ctx.url.searchParams.get('force') === 'true' || ctx.url.searchParams.get('kill') === 'true';
  if (!force && (machine.state === 'started' || machine.state === 'starting')) {
    throw new FlyFakeError(412, 'unable to destroy machine, not currently stopped or suspended (use force)');
  }
  machine.state = 'destroyed';
  machine.lease = undefined;
  machine.event('destroy', 'destroyed', 'user');
  return json(200, { ok: true });
});

route('GET', '/v1/apps/:app/machines/:id/wait', async (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  const q = ctx.url.searchParams;
  const states = q
    .getAll('state')
    .flatMap((s) => s.split(','))
    .filter(Boolean);
  if (states.length === 0) states.push('started');
  const timeout = Number(q.get('timeout') ?? '60');
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 60)
    throw badRequest(`invalid timeout ${q.get('timeout') ?? ''}: 1 to 60 seconds`);
  const version = q.get('version') ?? q.get('instance_id') ?? undefined;
  const reached = (): boolean => {
    app.tick();
    if (version && version !== machine.current.instanceId) return true; // answered below as "replaced"
    return (
      states.includes(machine.state) ||
      (states.includes('settled') &&
        !['starting', 'replacing', 'stopping', 'creating'].includes(machine.state))
    );
  };
  const ok = await world.clock.until(reached, world.clock.now() + timeout * 1000, ctx.signal);
  if (version && version !== machine.current.instanceId) {
    throw badRequest(
      `failed to wait for VM ${machine.id} in ${states.join(',')} state: machine ${version} currently replaced`,
    );
  }
  if (!ok) throw new FlyFakeError(408, 'deadline_exceeded');
  return json(200, {
    ok: true,
    state: machine.state,
    version: machine.current.instanceId,
    event_id: machine.events[0]?.id ?? '',
  });
});

route('POST', '/v1/apps/:app/machines/:id/lease', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  const body = bodyObject(ctx);
  const ttl = Number(ctx.url.searchParams.get('ttl') ?? body['ttl'] ?? world.settings.defaultLeaseTtlSeconds);
  const description = typeof body['description'] === 'string' ? body['description'] : '';
  const nonce = nonceOf(ctx);
  const lease = machine.activeLease();
  if (lease) {
    if (nonce !== lease.nonce) {
      return json(409, {
        status: 'error',
        message: `machine ID ${machine.id} lease currently held by ${lease.owner}, expires at ${iso(lease.expiresAt)}`,
        code: 'invalid',
      });
    }
    lease.expiresAt = world.clock.now() + ttl * 1000;
    return json(200, { status: 'success', data: leaseJson(machine) });
  }
  if (nonce) throw badRequest('lease not found');
  grantLease(world, machine, ctx.token, ttl, description);
  return json(201, { status: 'success', data: leaseJson(machine) });
});

route('GET', '/v1/apps/:app/machines/:id/lease', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', false);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  if (!machine.activeLease()) throw notFound('lease not found');
  return json(200, { status: 'success', data: leaseJson(machine) });
});

route('DELETE', '/v1/apps/:app/machines/:id/lease', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  const lease = machine.activeLease();
  if (!lease || lease.nonce !== nonceOf(ctx)) throw notFound('lease not found');
  machine.lease = undefined;
  return json(200, { status: 'success', data: { ok: true } });
});

route('POST', '/v1/apps/:app/machines/:id/start', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  machine.requireNonce(nonceOf(ctx));
  const previous = machine.state;
  if (previous === 'stopped' || previous === 'created' || previous === 'suspended' || previous === 'failed')
    machine.launch(world.settings.bootDelayMs);
  return json(200, { previous_state: previous, migrated: false, new_host: '' });
});

route('POST', '/v1/apps/:app/machines/:id/stop', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  machine.requireNonce(nonceOf(ctx));
  if (machine.state !== 'stopped') machine.stop();
  return json(200, { ok: true });
});

route('POST', '/v1/apps/:app/machines/:id/restart', (world, ctx) => {
  const app = world.appFor(ctx.token, ctx.params['app'] ?? '', true);
  app.tick();
  const machine = world.machineOf(app, ctx.params['id'] ?? '');
  machine.requireNonce(nonceOf(ctx));
  machine.launch(world.settings.bootDelayMs);
  return json(200, { ok: true });
});

// --- GraphQL -------------------------------------------------------------------------------

function graphql(world: FlyWorld, token: RegisteredToken | undefined, body: unknown): Reply {
  const query =
    typeof body === 'object' && body !== null ? jsonText((body as Record<string, unknown>)['query']) : '';
  if (!token) {
    return json(world.settings.graphqlUnauthenticatedStatus, {
      data: null,
      errors: [
        {
          message: 'You must be authenticated to view this.',
          path: ['organizations'],
          extensions: { code: 'UNAUTHORIZED' },
        },
      ],
    });
  }
  if (/\borganizations\b/.test(query)) {
    const nodes = TokenRegistry.orgsOf(token)
      .map((slug) => world.orgs.get(slug))
      .filter((o) => o !== undefined)
      .map((o) => ({
        id: o.id,
        slug: o.type === 'PERSONAL' ? 'personal' : o.slug,
        rawSlug: o.slug,
        name: o.name,
        type: o.type,
      }));
    return json(200, { data: { organizations: { nodes } } });
  }
  return json(200, {
    data: null,
    errors: [{ message: 'not implemented in fake', extensions: { code: 'NOT_IMPLEMENTED' } }],
  });
}

// --- the request handler -------------------------------------------------------------------

export interface ServerParts {
  readonly world: FlyWorld;
  readonly faults: FlyFaults;
  readonly log: RequestLogEntry[];
}

const limiterWindows = new WeakMap<FlyWorld, Map<string, number[]>>();

/** The documented limits (fly.md §3.3): 1 req/s burst 3 per action and machine; GET machine 5/10. */
function rateLimited(world: FlyWorld, template: string, params: Record<string, string>): boolean {
  if (!world.settings.rateLimit) return false;
  let windows = limiterWindows.get(world);
  if (!windows) {
    windows = new Map();
    limiterWindows.set(world, windows);
  }
  const key = `${template} ${params['id'] ?? params['app'] ?? ''}`;
  const now = performance.now();
  const recent = (windows.get(key) ?? []).filter((t) => now - t < 1000);
  const burst = template === 'GET /v1/apps/:app/machines/:id' ? 10 : template.startsWith('GET') ? 20 : 3;
  recent.push(now);
  windows.set(key, recent);
  return recent.length > burst;
}

export function handleRequest(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  rawBody: string,
): void {
  void handle(parts, req, res, rawBody).catch((error: unknown) => {
    if (!res.headersSent)
      send(res, {
        status: 500,
        body: { error: `fake fly crashed: ${error instanceof Error ? error.message : String(error)}` },
      });
  });
}

async function handle(
  parts: ServerParts,
  req: IncomingMessage,
  res: ServerResponse,
  rawBody: string,
): Promise<void> {
  const { world, faults, log } = parts;
  const method = req.method ?? 'GET';
  const url = new URL(req.url ?? '/', 'http://fake.fly');
  let body: unknown;
  try {
    body = rawBody ? (JSON.parse(rawBody) as unknown) : undefined;
  } catch {
    body = rawBody;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name !== 'authorization' && value !== undefined)
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const query: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) (query[k] ??= []).push(v);

  let matched: Route | undefined;
  let params: Record<string, string> = {};
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const isGraphql = method === 'POST' && path === '/graphql';
  for (const r of routes) {
    if (r.method !== method) continue;
    const m = r.regex.exec(path);
    if (!m) continue;
    matched = r;
    params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1] ?? '')]));
    break;
  }
  const template = isGraphql
    ? 'POST /graphql'
    : matched
      ? `${method} ${matched.template}`
      : `${method} ${path}`;
  const token = world.tokens.match(req.headers.authorization);
  const entry: RequestLogEntry = {
    seq: log.length + 1,
    at: world.clock.now(),
    method,
    path,
    route: template,
    query,
    headers,
    body,
    tokenId: token?.id,
    status: 0,
    fault: undefined,
  };
  log.push(entry);

  const fault = faults.pick({ method, path, query: url.search.slice(1), route: template });
  if (fault && !fault.afterHandling) {
    const action = fault.action;
    if (!('status' in action) && action.kind === 'delay') {
      entry.fault = 'delay';
      await new Promise((resolve) => setTimeout(resolve, action.ms));
    } else {
      entry.fault = 'status' in action ? 'status' : action.kind;
      applyFault(res, action, entry);
      return;
    }
  }
  if (rateLimited(world, template, params)) {
    entry.status = 429;
    send(res, { status: 429, body: { error: 'rate limit exceeded' } });
    return;
  }

  const abort = new AbortController();
  res.on('close', () => abort.abort());
  let reply: Reply;
  try {
    if (isGraphql) reply = graphql(world, token, body);
    else if (!matched) reply = json(404, { error: 'not implemented in fake' });
    else if (!token) throw unauthorized();
    else {
      if (isWrite(method) && token.kind === 'readonly') throw forbidden('read-only token');
      reply = await matched.handler(world, {
        method,
        url,
        params,
        body,
        headers: req.headers,
        token,
        signal: abort.signal,
      });
    }
  } catch (error) {
    if (!(error instanceof FlyFakeError)) throw error;
    reply = { status: error.httpStatus, body: error.body };
  }
  // (A delay after handling is refused when the rule is added.)
  if (fault?.afterHandling && ('status' in fault.action || fault.action.kind !== 'delay')) {
    entry.fault = 'after-commit';
    applyFault(res, fault.action, entry);
    return;
  }
  entry.status = reply.status;
  send(res, reply);
}

function applyFault(
  res: ServerResponse,
  fault: Exclude<FlyFaultAction, { kind: 'delay' }>,
  entry: RequestLogEntry,
): void {
  if ('status' in fault) {
    entry.status = fault.status;
    send(res, {
      status: fault.status,
      ...(fault.body !== undefined
        ? { raw: fault.body }
        : {
            body: {
              error:
                fault.status === 429
                  ? 'rate limit exceeded'
                  : fault.status === 408
                    ? 'request timed out'
                    : 'internal error (injected)',
            },
          }),
      ...(fault.headers !== undefined ? { headers: { ...fault.headers } } : {}),
    });
    return;
  }
  switch (fault.kind) {
    case 'reset':
      entry.status = -1;
      res.socket?.destroy();
      return;
    case 'hang':
      entry.status = -1;
      if (fault.ms !== undefined) setTimeout(() => res.socket?.destroy(), fault.ms).unref();
      return;
  }
}

function send(res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = {
    'fly-request-id': ulid(Date.now()).toLowerCase(),
    'fly-trace-id': randomBytes(8).toString('hex'),
    ...reply.headers,
  };
  if (reply.body === undefined && reply.raw === undefined) {
    res.writeHead(reply.status, headers).end();
    return;
  }
  const text = reply.raw ?? JSON.stringify(reply.body);
  res
    .writeHead(reply.status, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    })
    .end(text);
}
