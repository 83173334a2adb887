/** Apps of the fake with their IP assignments and versioned secrets (spec fly.md §4.2–§4.6, §8.2–§8.4). */
import { createHash, randomBytes } from 'node:crypto';
import type { BootRecord, FakeMachine } from './machines.js';

export interface FakeSecret {
  readonly name: string;
  readonly value: string;
  readonly digest: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface FakeIp {
  readonly ip: string;
  readonly type: 'v4' | 'v6' | 'shared_v4' | 'private_v6';
  readonly region: string;
  readonly shared: boolean;
  readonly createdAt: number;
}

export class FakeApp {
  readonly id = randomBytes(8).toString('hex');
  readonly name: string;
  readonly org: string;
  readonly createdAt: number;
  status: 'pending' | 'deployed' | 'suspended' = 'pending';
  readonly ips: FakeIp[] = [];
  readonly secrets = new Map<string, FakeSecret>();
  /** Incremented on every secrets write, even of identical values. */
  secretsVersion = 0;
  /** The secrets as a lagging replica still answers them (eventual consistency), and for how many lists. */
  staleSecrets: Map<string, FakeSecret> | undefined;
  staleReads = 0;
  readonly machines = new Map<string, FakeMachine>();
  /** Virtual time after which a deleted app is gone. */
  deleteAt: number | undefined;
  /** GETs left that still answer "not visible yet" after the create. */
  visibilityLag: number;
  /** The cookie that routes later requests "to the node that created the app". */
  readonly affinity = randomBytes(6).toString('hex');

  constructor(options: { name: string; org: string; now: number; visibilityLag?: number }) {
    this.name = options.name;
    this.org = options.org;
    this.createdAt = options.now;
    this.visibilityLag = options.visibilityLag ?? 0;
  }

  /** Sets (string) and removes (null) secrets; one version bump per call. */
  writeSecrets(values: Record<string, string | null>, now: number, staleReads = 0): number {
    this.staleSecrets = staleReads > 0 ? new Map(this.secrets) : undefined;
    this.staleReads = staleReads;
    for (const [name, value] of Object.entries(values)) {
      if (value === null) {
        this.secrets.delete(name);
        continue;
      }
      const old = this.secrets.get(name);
      this.secrets.set(name, {
        name,
        value,
        digest: secretDigest(value),
        createdAt: old?.createdAt ?? now,
        updatedAt: now,
      });
    }
    this.secretsVersion += 1;
    return this.secretsVersion;
  }

  /**
   * The secrets a list answers: stale (as before the last write) for `staleReads` lists, unless
   * the list asks for at least the current version, which catches the replica up.
   */
  listSecrets(minVersion: number | undefined): FakeSecret[] {
    if (minVersion !== undefined && minVersion >= this.secretsVersion) {
      this.staleReads = 0;
      this.staleSecrets = undefined;
    }
    if (this.staleReads > 0 && this.staleSecrets) {
      this.staleReads -= 1;
      return [...this.staleSecrets.values()];
    }
    return [...this.secrets.values()];
  }

  /** Whether `<app>.fly.dev` would resolve: shared or dedicated v4, and a public v6. */
  resolves(): boolean {
    return (
      this.ips.some((ip) => ip.type === 'shared_v4' || ip.type === 'v4') &&
      this.ips.some((ip) => ip.type === 'v6')
    );
  }

  /** What a machine version boots with: config env plus every app secret, and its files decoded. */
  bootRecord(config: Record<string, unknown>): BootRecord {
    const env: Record<string, string> = { ...((config['env'] ?? {}) as Record<string, string>) };
    for (const secret of this.secrets.values()) env[secret.name] = secret.value;
    const files: Record<string, string> = {};
    for (const file of (config['files'] ?? []) as Array<Record<string, unknown>>) {
      const path = String(file['guest_path']);
      const encoded =
        typeof file['secret_name'] === 'string'
          ? this.secrets.get(file['secret_name'])?.value
          : (file['raw_value'] as string | undefined);
      if (encoded !== undefined) files[path] = Buffer.from(encoded, 'base64').toString('utf8');
    }
    return { env, files, secretsVersion: this.secretsVersion };
  }

  /** Moves every machine along the clock. */
  tick(): void {
    for (const machine of this.machines.values()) machine.tick(() => this.bootRecord(machine.current.config));
  }

  /** Machines that are not destroyed. */
  liveMachines(): FakeMachine[] {
    return [...this.machines.values()].filter((m) => m.state !== 'destroyed');
  }
}

/** The fake's secret digest: deterministic per value; clients must treat it as opaque. */
export function secretDigest(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 32);
}

export function secretJson(secret: FakeSecret, withValue: boolean): Record<string, unknown> {
  return {
    name: secret.name,
    digest: secret.digest,
    created_at: new Date(secret.createdAt).toISOString(),
    updated_at: new Date(secret.updatedAt).toISOString(),
    ...(withValue ? { value: secret.value } : {}),
  };
}

export function ipJson(ip: FakeIp): Record<string, unknown> {
  return {
    ip: ip.ip,
    region: ip.region,
    shared: ip.shared,
    service_name: '',
    created_at: new Date(ip.createdAt).toISOString(),
    ...(ip.type === 'private_v6' ? { network: { name: 'default' } } : {}),
  };
}
