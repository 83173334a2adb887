/**
 * Drift of a live machine config from the desired one. `fly deploy`, `fly scale` and `fly secrets
 * set` keep a machine's metadata, so our stored config hash alone cannot see a machine changed by
 * hand. Instead the parts we set (guest, env, services, checks, files, init) are normalised the way
 * the Machines API stores them (autostop `"stop"` -> true, durations as milliseconds, fields the
 * server adds dropped) and hashed, on both sides, so equal settings always give equal digests.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './desired-state.js';
import type { MachineConfig } from './machine-config.js';

/** The config fields whose drift is noticed. */
export const DRIFT_FIELDS = ['guest', 'env', 'services', 'checks', 'files', 'init'] as const;
export type DriftField = (typeof DRIFT_FIELDS)[number];

type Loose = Record<string, unknown>;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration string (`"15s"`, `"1m0s"`) or integer nanoseconds, as milliseconds. */
function durationMs(value: unknown): unknown {
  if (typeof value === 'number') return value / 1e6;
  if (typeof value !== 'string') return value;
  let total = 0;
  let matched = '';
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
    matched += m[0];
  }
  return matched === value && value !== '' ? total : value;
}

function record(value: unknown): Loose {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Loose) : {};
}

function list(value: unknown): Loose[] {
  return Array.isArray(value) ? value.map(record) : [];
}

function check(value: Loose): Loose {
  return {
    type: value['type'],
    interval: durationMs(value['interval']),
    timeout: durationMs(value['timeout']),
    grace_period: durationMs(value['grace_period']),
    method: value['method'],
    path: value['path'],
    port: value['port'],
  };
}

function autostop(value: unknown): unknown {
  if (value === 'stop') return true;
  if (value === 'off' || value === undefined) return false;
  return value;
}

/** One field of a config in its normalised form. */
export function normalisedField(config: Partial<MachineConfig> | undefined, field: DriftField): unknown {
  const c = (config ?? {}) as Loose;
  switch (field) {
    case 'guest': {
      const g = record(c['guest']);
      return { cpu_kind: g['cpu_kind'], cpus: g['cpus'], memory_mb: g['memory_mb'] };
    }
    case 'env':
      return record(c['env']);
    case 'services':
      return list(c['services']).map((s) => {
        const concurrency = record(s['concurrency']);
        return {
          protocol: s['protocol'],
          internal_port: s['internal_port'],
          autostop: autostop(s['autostop']),
          autostart: s['autostart'] === true,
          min_machines_running: s['min_machines_running'] ?? 0,
          ports: list(s['ports']).map((p) => ({
            port: p['port'],
            handlers: p['handlers'] ?? [],
            force_https: p['force_https'] === true,
          })),
          concurrency: s['concurrency']
            ? {
                type: concurrency['type'],
                soft_limit: concurrency['soft_limit'],
                hard_limit: concurrency['hard_limit'],
              }
            : undefined,
          checks: list(s['checks']).map(check),
        };
      });
    case 'checks':
      return Object.fromEntries(Object.entries(record(c['checks'])).map(([k, v]) => [k, check(record(v))]));
    case 'files':
      return list(c['files'])
        .map((f) => ({
          guest_path: f['guest_path'],
          secret_name: f['secret_name'],
          raw_value: f['raw_value'],
        }))
        .sort((a, b) => (String(a.guest_path) < String(b.guest_path) ? -1 : 1));
    case 'init':
      return { swap_size_mb: record(c['init'])['swap_size_mb'] ?? 0 };
  }
}

/** sha256 of the normalised drift fields of a config. */
export function driftDigest(config: Partial<MachineConfig> | undefined): string {
  const normalised = Object.fromEntries(DRIFT_FIELDS.map((f) => [f, normalisedField(config, f)]));
  return `sha256:${createHash('sha256').update(canonicalJson(normalised)).digest('hex')}`;
}

/** The drift fields in which the live config differs from the desired one (empty: no drift). */
export function driftedFields(
  live: Partial<MachineConfig> | undefined,
  desired: MachineConfig,
): DriftField[] {
  if (driftDigest(live) === driftDigest(desired)) return [];
  return DRIFT_FIELDS.filter(
    (f) => canonicalJson(normalisedField(live, f)) !== canonicalJson(normalisedField(desired, f)),
  );
}
