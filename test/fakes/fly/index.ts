/**
 * A local stand-in for Fly.io's Machines API and the GraphQL query the deploy needs, following
 * `shared/spec/fly.md` (§8 "What a faithful fake must do"). One HTTP server on 127.0.0.1 serves
 * both: point the Machines API base URL at `fake.apiUrl` and the GraphQL URL at `fake.graphqlUrl`.
 *
 * - State you can seed and read: `fake.world` (orgs, tokens, apps with IPs, versioned secrets and
 *   machines with versions, leases, checks and what each version booted with).
 * - A request log: `fake.requests` (Authorization headers are never recorded).
 * - Fault injection per route, in the language of every fake (`../faults.ts`):
 *   `fake.faults.add({ route: 'POST /v1/apps/:app/machines', times: 1, action: { status: 503 } })`,
 *   with statuses (429 + Retry-After, 5xx, 408), delays, hangs, resets and `afterHandling` (the work
 *   is done, the answer is lost or a 408: an ambiguous create).
 * - Time: machines boot, checks pass, leases lapse and deleted apps vanish on a virtual clock
 *   (`speed` times real time; `fake.clock.advance(ms)` jumps).
 * - Platform behaviour hooks: `idle(app)` (autostop) and `request(app)` (autostart).
 *
 * Used by the deploy tests and by the demo/CLI local mode:
 *
 *   const fly = await startFakeFly({ speed: 20 });
 *   // FLY_API_TOKEN = LOCAL_ORG_TOKEN, fly-api-url = fly.apiUrl, fly-graphql-url = fly.graphqlUrl
 *   ...
 *   await fly.close();
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FakeApp } from './apps.js';
import { FakeClock } from './clock.js';
import { FlyFaults } from './faults.js';
import { normaliseConfig, ulid } from './machines.js';
import { handleRequest, type RequestLogEntry } from './server.js';
import type { FakeTokenSpec } from './tokens.js';
import { DEFAULT_SETTINGS, FlyWorld, type FakeFlySettings, type FakeOrg } from './world.js';

export { FlyFaults, type FlyFaultAction, type FlyFaultRule } from './faults.js';
export type { RequestLogEntry } from './server.js';
export type { FakeTokenSpec } from './tokens.js';
export type { FakeFlySettings, FakeOrg } from './world.js';
export type { ImageBehaviour, BootRecord } from './machines.js';
export { FlyWorld } from './world.js';
export { FakeApp } from './apps.js';
export { FakeMachine } from './machines.js';

/** The org and token a fake starts with when none are given (the demo's local mode uses them). */
export const LOCAL_ORG_SLUG = 'personal-local';
export const LOCAL_ORG_TOKEN = 'FlyV1 fm2_local-org-token-for-the-fake-fly-api';

export interface FakeFlyOptions extends Partial<FakeFlySettings> {
  /** Organisations; default one personal org `personal-local`. */
  readonly orgs?: ReadonlyArray<Partial<FakeOrg> & { slug: string }>;
  /** Token text -> what it may do; default `LOCAL_ORG_TOKEN`, an org token of the first org. */
  readonly tokens?: Readonly<Record<string, FakeTokenSpec>>;
  /** App names owned by an organisation nobody here can see. */
  readonly takenAppNames?: readonly string[];
  /** Virtual ms per real ms (default 1). */
  readonly speed?: number;
  /** Port on 127.0.0.1 (default: ephemeral). */
  readonly port?: number;
}

export interface FakeFly {
  /** Machines API base URL (`http://127.0.0.1:PORT`). */
  readonly apiUrl: string;
  /** GraphQL endpoint (`http://127.0.0.1:PORT/graphql`). */
  readonly graphqlUrl: string;
  readonly world: FlyWorld;
  readonly clock: FakeClock;
  readonly requests: RequestLogEntry[];
  /** Requests that could change state (anything but GET/HEAD). */
  writes(): RequestLogEntry[];
  /** Fault rules (`faults.add({ route, times, action })`, `faults.clear()`). */
  readonly faults: FlyFaults;
  /** The app by name, or undefined (after deletion completed). */
  app(name: string): FakeApp | undefined;
  /** Platform autostop: started machines with autostop and no lease stop. */
  idle(app: string): void;
  /** A request through the proxy: stopped machines with autostart start. */
  request(app: string): void;
  /**
   * What `fly scale`, `fly deploy` or a dashboard edit does: a new version of the machine with
   * `patch` merged into its config and its metadata kept (so our stored hashes still match).
   */
  editByHand(app: string, machineId: string, patch: Record<string, unknown>): void;
  /** The machine's host becomes unhealthy: the API then answers `incomplete_config`, no `config`. */
  hostUnhealthy(app: string, machineId: string): void;
  close(): Promise<void>;
}

export async function startFakeFly(options: FakeFlyOptions = {}): Promise<FakeFly> {
  const clock = new FakeClock(options.speed ?? 1);
  const settings: FakeFlySettings = { ...DEFAULT_SETTINGS };
  for (const key of Object.keys(DEFAULT_SETTINGS) as Array<keyof FakeFlySettings>) {
    if (options[key] !== undefined) (settings as unknown as Record<string, unknown>)[key] = options[key];
  }
  const world = new FlyWorld(clock, settings);
  const orgs = options.orgs ?? [{ slug: LOCAL_ORG_SLUG, name: 'Local', type: 'PERSONAL' as const }];
  for (const org of orgs) world.addOrg(org);
  const tokens = options.tokens ?? {
    [LOCAL_ORG_TOKEN]: { kind: 'org', org: orgs[0]?.slug ?? LOCAL_ORG_SLUG },
  };
  for (const [text, spec] of Object.entries(tokens)) world.addToken(text, spec);
  for (const name of options.takenAppNames ?? []) world.seedTakenName(name);

  const faults = new FlyFaults();
  const requests: RequestLogEntry[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () =>
      handleRequest({ world, faults, log: requests }, req, res, Buffer.concat(chunks).toString('utf8')),
    );
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;

  const autostop = (value: unknown): boolean => value === true || value === 'stop' || value === 'suspend';
  return {
    apiUrl: base,
    graphqlUrl: `${base}/graphql`,
    world,
    clock,
    requests,
    writes: () => requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD'),
    faults,
    app: (name) => {
      world.purge();
      return world.apps.get(name);
    },
    idle: (name) => {
      const app = world.apps.get(name);
      app?.tick();
      for (const machine of app?.machines.values() ?? []) {
        const services = (machine.current.config['services'] ?? []) as Array<Record<string, unknown>>;
        if (
          machine.state === 'started' &&
          !machine.activeLease() &&
          services.some((s) => autostop(s['autostop']))
        )
          machine.stop();
      }
    },
    request: (name) => {
      const app = world.apps.get(name);
      app?.tick();
      for (const machine of app?.machines.values() ?? []) {
        const services = (machine.current.config['services'] ?? []) as Array<Record<string, unknown>>;
        if (machine.state === 'stopped' && services.some((s) => s['autostart'] === true))
          machine.launch(settings.bootDelayMs);
      }
    },
    editByHand: (name, machineId, patch) => {
      const app = world.apps.get(name);
      const machine = app?.machines.get(machineId);
      if (!app || !machine) throw new Error(`fake fly: no machine ${machineId} in ${name}`);
      app.tick();
      const config = { ...structuredClone(machine.current.requested), ...structuredClone(patch) };
      machine.addVersion(
        {
          instanceId: ulid(world.clock.now()),
          imageDigest: world.digestOf(String(config['image'])),
          requested: config,
          config: normaliseConfig(config),
          createdAt: world.clock.now(),
          boot: undefined,
          bootProblem: undefined,
        },
        machine.state === 'started',
        settings.bootDelayMs,
        'update',
      );
    },
    hostUnhealthy: (name, machineId) => {
      const machine = world.apps.get(name)?.machines.get(machineId);
      if (!machine) throw new Error(`fake fly: no machine ${machineId} in ${name}`);
      machine.hostStatus = 'unreachable';
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Seeds an app with one small niks3 machine through the fake's own API (as an org token would). */
export async function seedAppWithMachine(fly: FakeFly, name: string): Promise<void> {
  const call = async (path: string, body: unknown): Promise<void> => {
    const response = await fetch(`${fly.apiUrl}${path}`, {
      method: 'POST',
      headers: { authorization: LOCAL_ORG_TOKEN, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status >= 300) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  };
  await call('/v1/apps', { app_name: name, name, org_slug: 'personal-local' });
  await call(`/v1/apps/${name}/machines`, {
    region: 'iad',
    config: { image: 'ghcr.io/mic92/niks3:v1.7.0', guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 } },
  });
}
