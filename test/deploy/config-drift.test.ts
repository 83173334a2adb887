/**
 * The live-config drift check: equal settings in the forms the Machines API answers (booleans for
 * autostop, durations as nanoseconds, fields the server adds) are no drift; a change by hand in
 * any of guest, env, services, checks, files or init is, and names the field.
 */
import { driftDigest, driftedFields } from '../../src/core/fly/config-drift.js';
import { niks3MachineConfig, type MachineConfig } from '../../src/core/fly/machine-config.js';

const desired = niks3MachineConfig({
  region: 'iad',
  image: 'ghcr.io/mic92/niks3:v1.7.0',
  cpuKind: 'shared',
  cpus: 1,
  memoryMb: 256,
  swapMb: 512,
  cacheUrl: 'https://cache.example.dev',
  bucket: 'b',
  s3Endpoint: 'x.r2.cloudflarestorage.com',
  s3Region: 'auto',
  s3Concurrency: 20,
  readProxy: false,
  oidc: true,
});

/** The desired config as a server might echo it: normalised, with defaults and extra fields. */
function echoed(): MachineConfig {
  const json = structuredClone(desired) as unknown as Record<string, unknown>;
  const service = (json['services'] as Array<Record<string, unknown>>)[0] ?? {};
  service['autostop'] = true;
  service['force_instance_key'] = null;
  const ports = service['ports'] as Array<Record<string, unknown>>;
  if (ports[1]) ports[1]['force_https'] = false;
  const check = (service['checks'] as Array<Record<string, unknown>>)[0] ?? {};
  check['interval'] = 15_000_000_000;
  check['headers'] = [];
  json['guest'] = { ...(json['guest'] as object), kernel_args: [] };
  json['init'] = { swap_size_mb: 512, exec: null, entrypoint: null };
  json['files'] = [...(json['files'] as unknown[])].reverse();
  json['metadata'] = { other: 'metadata never counts' };
  return json as unknown as MachineConfig;
}

describe('live config drift', () => {
  it('sees no drift in the normalised answer of the API', () => {
    expect(driftedFields(echoed(), desired)).toEqual([]);
    expect(driftDigest(echoed())).toBe(driftDigest(desired));
  });

  type Edit = (c: Record<string, unknown>) => void;
  const edits: ReadonlyArray<readonly [string, Edit]> = [
    [
      'guest',
      (c) => {
        c['guest'] = { cpu_kind: 'shared', cpus: 2, memory_mb: 512 };
      },
    ],
    [
      'env',
      (c) => {
        c['env'] = { ...(c['env'] as object), EXTRA: '1' };
      },
    ],
    [
      'services',
      (c) => {
        const service = (c['services'] as Array<Record<string, unknown>>)[0];
        if (service) service['autostop'] = false;
      },
    ],
    [
      'checks',
      (c) => {
        c['checks'] = { alive: { type: 'tcp', port: 5751 } };
      },
    ],
    [
      'files',
      (c) => {
        c['files'] = [];
      },
    ],
    [
      'init',
      (c) => {
        c['init'] = {};
      },
    ],
  ];
  it.each(edits)('names %s when it was changed by hand', (field, change) => {
    const live = echoed() as unknown as Record<string, unknown>;
    change(live);
    expect(driftedFields(live as unknown as MachineConfig, desired)).toEqual([field]);
  });

  it('counts a machine without a readable config as drifted', () => {
    expect(driftedFields(undefined, desired).length).toBeGreaterThan(0);
  });
});
