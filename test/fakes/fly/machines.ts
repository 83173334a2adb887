/**
 * Machines of the fake (spec fly.md §4.7, §8.5): versions, states that move on the fake clock,
 * health checks per configured check, events, leases, and what each version booted with (env and
 * the decoded files), so tests can assert on what niks3 would have seen.
 */
import { randomBytes } from 'node:crypto';
import type { FakeClock } from './clock.js';
import { FlyFakeError } from './fake-error.js';
import { jsonText } from './json-text.js';

/** How a machine running an image behaves. */
export type ImageBehaviour =
  /** Starts after the boot delay; checks pass after their grace period. */
  | 'healthy'
  /** Starts; checks turn `critical` after their grace period. */
  | 'unhealthy'
  /** Starts ten times slower than the boot delay. */
  | 'slowboot'
  /** The launch fails: the machine ends `failed`. */
  | 'failing';

export interface MachineEventJson {
  readonly id: string;
  readonly type: string;
  readonly status: string;
  readonly source: string;
  readonly timestamp: number;
}

export interface BootRecord {
  /** The guest environment: config env plus every app secret (as Fly injects them). */
  readonly env: Record<string, string>;
  /** Files written into the guest, decoded (guest path -> content). */
  readonly files: Record<string, string>;
  /** Secrets version the machine booted with. */
  readonly secretsVersion: number;
}

export interface MachineVersion {
  readonly instanceId: string;
  /** The digest the image reference pointed at when this version was made (what Fly pulled). */
  readonly imageDigest: string;
  /** The config exactly as the client sent it. */
  readonly requested: Record<string, unknown>;
  /** The config as the API stores and echoes it (normalised). */
  readonly config: Record<string, unknown>;
  readonly createdAt: number;
  boot: BootRecord | undefined;
  /** The file problem that fails this version's boot, if any. */
  readonly bootProblem: string | undefined;
}

export interface FakeLease {
  readonly nonce: string;
  expiresAt: number;
  readonly owner: string;
  readonly description: string;
  readonly version: string;
}

export interface CheckResult {
  readonly name: string;
  readonly status: 'passing' | 'critical' | 'warning';
  readonly output: string;
  readonly updated_at: string;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A 26-character ULID-like id (time prefix, random rest). */
export function ulid(now: number): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = [...randomBytes(16)].map((b) => CROCKFORD[b % 32]).join('');
  return time + random;
}

const WORDS_A = ['falling', 'quiet', 'bold', 'ancient', 'misty', 'little', 'proud', 'silent'];
const WORDS_B = ['sun', 'river', 'leaf', 'sky', 'stone', 'wave', 'field', 'moon'];

export class FakeMachine {
  readonly id = randomBytes(7).toString('hex');
  readonly name: string;
  readonly app: string;
  readonly region: string;
  readonly createdAt: number;
  updatedAt: number;
  state: string;
  /** Virtual time at which a starting machine reaches `started` (or fails). */
  startAt: number | undefined;
  /** Virtual time the current version reached `started`. */
  startedAt: number | undefined;
  readonly versions: MachineVersion[] = [];
  readonly events: MachineEventJson[] = [];
  lease: FakeLease | undefined;
  behaviour: ImageBehaviour;
  /** How many list calls this machine is still missing from ("list lag"). */
  hiddenFromLists: number;
  /**
   * `ok`, or the state of an unhealthy host: then the API answers no `config` (and no checks),
   * only `incomplete_config` (fly-go's Machine).
   */
  hostStatus: 'ok' | 'unreachable' | 'unknown' = 'ok';
  private readonly clock: FakeClock;

  constructor(options: {
    app: string;
    region: string;
    clock: FakeClock;
    behaviour: ImageBehaviour;
    hiddenFromLists: number;
  }) {
    this.app = options.app;
    this.region = options.region;
    this.clock = options.clock;
    this.createdAt = this.clock.now();
    this.updatedAt = this.createdAt;
    this.state = 'created';
    this.behaviour = options.behaviour;
    this.hiddenFromLists = options.hiddenFromLists;
    const [a, b] = randomBytes(3);
    this.name = `${WORDS_A[(a ?? 0) % WORDS_A.length]}-${WORDS_B[(b ?? 0) % WORDS_B.length]}-${1000 + (randomBytes(2).readUInt16BE() % 9000)}`;
    this.startAt = undefined;
    this.startedAt = undefined;
  }

  get current(): MachineVersion {
    const version = this.versions[this.versions.length - 1];
    if (!version) throw new Error('fake fly: machine without a version');
    return version;
  }

  /** Adds a version; `launch` starts it after `bootDelayMs` (virtual). */
  addVersion(version: MachineVersion, launch: boolean, bootDelayMs: number, type: 'launch' | 'update'): void {
    this.versions.push(version);
    this.updatedAt = this.clock.now();
    this.event(type, type === 'launch' ? 'created' : 'replacing', 'user');
    this.startedAt = undefined;
    if (launch) this.launch(bootDelayMs);
  }

  launch(bootDelayMs: number): void {
    const delay = this.behaviour === 'slowboot' ? bootDelayMs * 10 : bootDelayMs;
    this.state =
      this.versions.length > 1 && this.state !== 'created' && this.state !== 'stopped'
        ? 'replacing'
        : 'starting';
    this.startAt = this.clock.now() + delay;
    this.startedAt = undefined;
  }

  stop(): void {
    this.state = 'stopped';
    this.startAt = undefined;
    this.startedAt = undefined;
    this.event('exit', 'stopped', 'flyd');
  }

  /** Moves the machine along the clock (called before every read). */
  tick(boot: () => BootRecord | undefined): void {
    const now = this.clock.now();
    if (this.lease && this.lease.expiresAt <= now) this.lease = undefined;
    if (
      (this.state === 'starting' || this.state === 'replacing') &&
      this.startAt !== undefined &&
      now >= this.startAt
    ) {
      const version = this.current;
      if (this.behaviour === 'failing' || version.bootProblem) {
        this.state = 'failed';
        this.event('exit', 'failed', 'flyd');
      } else {
        version.boot = boot();
        this.state = 'started';
        this.startedAt = this.startAt;
        this.event('start', 'started', 'flyd');
      }
      this.startAt = undefined;
      this.updatedAt = now;
    }
  }

  event(type: string, status: string, source: string): void {
    this.events.unshift({ id: ulid(this.clock.now()), type, status, source, timestamp: this.clock.now() });
  }

  /** The lease if it is still valid. */
  activeLease(): FakeLease | undefined {
    return this.lease && this.lease.expiresAt > this.clock.now() ? this.lease : undefined;
  }

  /** Refuses a write unless the machine is not leased or the nonce is the lease's (fly.md §4.8). */
  requireNonce(nonce: string | undefined): void {
    const lease = this.activeLease();
    if (lease && lease.nonce !== nonce) {
      throw new FlyFakeError(
        409,
        `aborted: machine ID ${this.id} lease currently held by ${lease.owner}, expires at ${new Date(lease.expiresAt).toISOString().replace(/\.\d+Z$/, 'Z')}`,
      );
    }
  }

  /** Check results per configured check: none until the grace period after start, then per behaviour. */
  checks(): CheckResult[] {
    if (this.state !== 'started' || this.startedAt === undefined) return [];
    const now = this.clock.now();
    const config = this.current.config as {
      services?: Array<{ internal_port?: number; checks?: Array<Record<string, unknown>> }>;
      checks?: Record<string, Record<string, unknown>>;
    };
    const results: CheckResult[] = [];
    const add = (name: string, check: Record<string, unknown>): void => {
      const grace = durationMs(check['grace_period']) ?? 0;
      if (now < (this.startedAt ?? now) + grace) return;
      const interval = Math.max(1000, durationMs(check['interval']) ?? 15_000);
      const ran =
        (this.startedAt ?? now) +
        grace +
        Math.floor((now - (this.startedAt ?? now) - grace) / interval) * interval;
      const passing = this.behaviour !== 'unhealthy';
      results.push({
        name,
        status: passing ? 'passing' : 'critical',
        output: passing
          ? 'Success'
          : `${jsonText(check['method'], 'GET')} ${jsonText(check['path'], '/')}: 503 Service Unavailable`,
        updated_at: new Date(ran).toISOString(),
      });
    };
    (config.services ?? []).forEach((service, s) => {
      (service.checks ?? []).forEach((check) =>
        add(
          `servicecheck-${String(s).padStart(2, '0')}-${jsonText(check['type'], 'http')}-${service.internal_port ?? 0}`,
          check,
        ),
      );
    });
    for (const [name, check] of Object.entries(config.checks ?? {})) add(name, check);
    return results;
  }

  /** The machine object of the API. */
  toJson(
    options: { summary?: boolean; incomplete?: 'with-metadata' | 'empty' } = {},
  ): Record<string, unknown> {
    const version = this.current;
    const image = jsonText((version.config as { image?: unknown }).image);
    const [repoPart, tag] = splitImage(image);
    const registry =
      repoPart.includes('/') && /[.:]/.test(repoPart.split('/')[0] ?? '')
        ? (repoPart.split('/')[0] ?? '')
        : 'docker.io';
    const base: Record<string, unknown> = {
      id: this.id,
      name: this.name,
      state: this.state,
      region: this.region,
      instance_id: version.instanceId,
      private_ip: `fdaa:0:1:a7b:1a3:${this.id.slice(0, 4)}:${this.id.slice(4, 8)}:2`,
      created_at: new Date(this.createdAt).toISOString(),
      updated_at: new Date(this.updatedAt).toISOString(),
      image_ref: {
        registry,
        repository: repoPart.slice(registry === 'docker.io' ? 0 : registry.length + 1),
        tag,
        digest: version.imageDigest,
        labels: {},
      },
      host_status: this.hostStatus,
      cordoned: false,
    };
    if (options.summary) return base;
    if (this.hostStatus !== 'ok') {
      const metadata = (version.config as { metadata?: unknown }).metadata;
      return {
        ...base,
        incomplete_config: options.incomplete === 'empty' ? {} : { metadata },
        events: this.events.slice(0, 20),
      };
    }
    return { ...base, config: version.config, events: this.events.slice(0, 20), checks: this.checks() };
  }
}

function splitImage(image: string): [string, string] {
  const at = image.indexOf('@');
  const withoutDigest = at === -1 ? image : image.slice(0, at);
  const colon = withoutDigest.lastIndexOf(':');
  if (colon > withoutDigest.lastIndexOf('/'))
    return [withoutDigest.slice(0, colon), withoutDigest.slice(colon + 1)];
  return [withoutDigest, 'latest'];
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration string (`"15s"`, `"1m30s"`) or integer nanoseconds, in ms. */
export function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return value / 1e6;
  if (typeof value !== 'string') return undefined;
  let total = 0;
  let matched = '';
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
    matched += m[0];
  }
  return matched === value && value !== '' ? total : undefined;
}

/** Integer nanoseconds as a Go duration string (what the API echoes). */
export function goDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h0m0s`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m0s`;
  return `${ms / 1000}s`;
}

/**
 * The config as the API stores it: autostop `"stop"` -> true and `"off"` -> false, integer
 * durations -> strings, an empty `init` and a default restart policy when absent (fly.md §5.1, §8.5).
 */
export function normaliseConfig(config: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(config);
  const services = copy['services'];
  if (Array.isArray(services)) {
    for (const service of services as Array<Record<string, unknown>>) {
      if (service['autostop'] === 'stop') service['autostop'] = true;
      else if (service['autostop'] === 'off') service['autostop'] = false;
      const checks = service['checks'];
      if (Array.isArray(checks))
        for (const check of checks as Array<Record<string, unknown>>) normaliseDurations(check);
    }
  }
  const topChecks = copy['checks'];
  if (topChecks && typeof topChecks === 'object')
    for (const check of Object.values(topChecks as Record<string, Record<string, unknown>>))
      normaliseDurations(check);
  const stop = copy['stop_config'];
  if (stop && typeof stop === 'object') normaliseDurations(stop as Record<string, unknown>);
  copy['init'] ??= {};
  copy['restart'] ??= { policy: '' };
  return copy;
}

function normaliseDurations(record: Record<string, unknown>): void {
  for (const key of ['interval', 'timeout', 'grace_period']) {
    const value = record[key];
    if (typeof value === 'number') record[key] = goDuration(value / 1e6);
  }
}
