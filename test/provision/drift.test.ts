/**
 * Drift, through the dist bundle: mutable drift is fixed (storage class, min TLS, enabled, zone),
 * immutable drift is reported (location: a warning; jurisdiction or a host held by another bucket:
 * an error that says what to do, before any write).
 */
import {
  BUCKET,
  HOST,
  expectExit,
  startProvisionFixture,
  type ProvisionFixture,
} from './provision-fixture.js';

let f: ProvisionFixture;

beforeEach(async () => {
  f = await startProvisionFixture();
});

afterEach(async () => {
  await f.close();
});

function seedBucket(
  options: {
    location?: string;
    storageClass?: 'Standard' | 'InfrequentAccess';
    jurisdiction?: 'default' | 'eu';
  } = {},
) {
  return f.cf.state.addBucket({ accountId: f.account.id, name: BUCKET, ...options });
}

describe('mutable drift', () => {
  it('fixes the storage class with one PATCH', async () => {
    seedBucket({ storageClass: 'InfrequentAccess' });
    const run = await f.run();
    expectExit(run, 0, f.cf);
    const patches = f.cf.log.writes().filter((w) => w.method === 'PATCH');
    expect(patches).toHaveLength(1);
    expect(patches[0]?.headers['cf-r2-storage-class']).toBe('Standard');
    expect(patches[0]?.headers['cf-r2-jurisdiction']).toBe('default');
    expect(f.cf.state.bucket(f.account.id, 'default', BUCKET)?.storageClass).toBe('Standard');
    expect(JSON.parse(run.outputs['plan'] ?? '')).toContainEqual({
      action: 'update',
      resource: 'r2-bucket',
      name: BUCKET,
      before: { storageClass: 'InfrequentAccess' },
      after: { storageClass: 'Standard' },
    });
  });

  it('fixes min TLS and enabled on the custom domain with one PUT', async () => {
    const bucket = seedBucket();
    f.cf.state.addCustomDomain({ bucket, domain: HOST, zoneId: f.zone.id, enabled: false, minTLS: '1.0' });
    const run = await f.run();
    expectExit(run, 0, f.cf);
    const writes = f.cf.log.writes();
    expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual([
      `PUT /accounts/${f.account.id}/r2/buckets/${BUCKET}/domains/custom/${HOST}`,
    ]);
    expect(writes[0]?.body).toEqual({ enabled: true, minTLS: '1.2' });
    expect(f.cf.state.domains.get(HOST)).toMatchObject({ enabled: true, minTLS: '1.2' });
    expect(run.summary).toContain(
      'update custom domain cache.example.dev: enabled false → true, minTLS 1.0 → 1.2',
    );
  });

  it('re-attaches a domain whose zone differs (a domain holds no data)', async () => {
    const bucket = seedBucket();
    const stale = '0123456789abcdef0123456789abcdef';
    f.cf.state.addCustomDomain({ bucket, domain: HOST, zoneId: stale, minTLS: '1.2' });
    const run = await f.run();
    expectExit(run, 0, f.cf);
    expect(f.cf.log.writes().map((w) => w.method)).toEqual(['DELETE', 'POST']);
    expect(f.cf.state.domains.get(HOST)?.zoneId).toBe(f.zone.id);
  });

  it('does not "fix" anything from a degraded domain answer', async () => {
    const bucket = seedBucket();
    f.cf.state.addCustomDomain({
      bucket,
      domain: HOST,
      zoneId: f.zone.id,
      minTLS: '1.0',
      activation: 'degraded',
    });
    const run = await f.run({ 'domain-wait': '0' });
    expectExit(run, 0, f.cf);
    expect(f.cf.log.writes()).toEqual([]);
    expect(run.outputs['custom-domain-status']).toBe('unknown');
    expect(run.summary).toContain('degraded status');
  });
});

describe('immutable drift', () => {
  it('warns when the location differs and changes nothing', async () => {
    seedBucket({ location: 'wnam' });
    const bucket = f.cf.state.bucket(f.account.id, 'default', BUCKET)!;
    f.cf.state.addCustomDomain({ bucket, domain: HOST, zoneId: f.zone.id, minTLS: '1.2' });
    const run = await f.run({ 'r2-location': 'enam' });
    expectExit(run, 0, f.cf);
    expect(f.cf.log.writes()).toEqual([]);
    expect(run.outputs['changed']).toBe('false');
    expect(run.warnings.join('\n')).toMatch(
      /R2 bucket "my-cache-niks3" is in location wnam, not enam \(r2-location\).*cannot change/s,
    );
    expect(run.summary).toContain('### Warnings');
  });

  it('fails before any write when the bucket lives in another jurisdiction', async () => {
    seedBucket({ jurisdiction: 'eu' });
    const run = await f.run({ 'r2-jurisdiction': 'default' });
    expectExit(run, 1, f.cf);
    expect(f.cf.log.writes()).toEqual([]);
    expect(run.errors.join('\n')).toMatch(
      /exists in jurisdiction "eu", not in "default".*set r2-jurisdiction: eu/s,
    );
    expect(run.summary).toContain('### Blocked');
  });

  it('fails before any write when the host is attached to another bucket, saying what to do', async () => {
    const other = f.cf.state.addBucket({ accountId: f.account.id, name: 'someone-elses-bucket' });
    f.cf.state.addCustomDomain({ bucket: other, domain: HOST, zoneId: f.zone.id });
    for (const mode of ['apply', 'plan']) {
      f.cf.log.clear();
      const run = await f.run({ mode });
      expectExit(run, 1, f.cf);
      expect(f.cf.log.writes()).toEqual([]);
      expect(run.errors.join('\n')).toMatch(
        /The cache host cache\.example\.dev is attached to R2 bucket "someone-elses-bucket".*Detach it there first.*or choose another cache-subdomain/s,
      );
    }
    expect(f.cf.state.bucket(f.account.id, 'default', BUCKET)).toBeUndefined();
  });

  it('when the create answers 409 for a host held where the scan cannot see, fails saying so', async () => {
    // Held by a bucket in another jurisdiction: the read-only scan only covers ours.
    const other = f.cf.state.addBucket({ accountId: f.account.id, name: 'eu-bucket', jurisdiction: 'eu' });
    f.cf.state.addCustomDomain({ bucket: other, domain: HOST, zoneId: f.zone.id });
    const run = await f.run();
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /already attached to another R2 bucket or Cloudflare resource.*choose another cache-subdomain/s,
    );
    const domainCreates = f.cf.log.writes().filter((w) => w.path.endsWith('/domains/custom'));
    expect(domainCreates).toHaveLength(1);
  });
});
