/**
 * provision through the dist bundle against the Cloudflare stand-in: apply on an empty account,
 * a second apply that writes nothing, plan, and the jurisdiction header on every bucket call.
 */
import {
  BUCKET,
  HOST,
  isBucketCall,
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

describe('provision apply', () => {
  it('creates exactly the bucket and the custom domain on an empty account, then a second apply writes nothing', async () => {
    f.cf.settings.domainActivation = { afterGets: 2 };
    const run = await f.run({ 'r2-location': 'weur', 'r2-storage-class': 'InfrequentAccess' });
    expect(run.code).toBe(0);

    // State: exactly one bucket and one domain, with every setting as given.
    expect([...f.cf.state.buckets.values()].map((b) => b.name)).toEqual([BUCKET]);
    const bucket = f.cf.state.bucket(f.account.id, 'default', BUCKET)!;
    expect(bucket.location).toBe('WEUR');
    expect(bucket.storageClass).toBe('InfrequentAccess');
    expect(bucket.jurisdiction).toBe('default');
    expect([...f.cf.state.domains.keys()]).toEqual([HOST]);
    const domain = f.cf.state.domains.get(HOST)!;
    expect(domain).toMatchObject({
      bucket: BUCKET,
      zoneId: f.zone.id,
      enabled: true,
      minTLS: '1.2',
      jurisdiction: 'default',
    });

    // Request log: exactly two writes, with camelCase bodies, and the jurisdiction header on every bucket call.
    const writes = f.cf.log.writes();
    expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual([
      `POST /accounts/${f.account.id}/r2/buckets`,
      `POST /accounts/${f.account.id}/r2/buckets/${BUCKET}/domains/custom`,
    ]);
    expect(writes[0]?.body).toEqual({ name: BUCKET, locationHint: 'weur', storageClass: 'InfrequentAccess' });
    expect(writes[1]?.body).toEqual({ domain: HOST, zoneId: f.zone.id, enabled: true, minTLS: '1.2' });
    const bucketCalls = f.cf.log.api().filter(isBucketCall);
    expect(bucketCalls.length).toBeGreaterThan(2);
    for (const call of bucketCalls)
      expect(call.headers['cf-r2-jurisdiction']).toMatch(/^(default|eu|us|fedramp)$/);
    // Only the check "does this name live in another jurisdiction?" asks elsewhere; everything else is default.
    const elsewhere = bucketCalls.filter((c) => c.headers['cf-r2-jurisdiction'] !== 'default');
    expect(elsewhere.map((c) => `${c.method} ${c.path} ${c.headers['cf-r2-jurisdiction']}`).sort()).toEqual([
      `GET /accounts/${f.account.id}/r2/buckets/${BUCKET} eu`,
      `GET /accounts/${f.account.id}/r2/buckets/${BUCKET} fedramp`,
      `GET /accounts/${f.account.id}/r2/buckets/${BUCKET} us`,
    ]);
    // Creates are sent once, with no SDK retry.
    for (const w of writes) expect(w.headers['x-stainless-retry-count']).toBe('0');
    // Our user agent, no legacy credentials.
    for (const call of f.cf.log.api()) {
      expect(call.headers['user-agent']).toMatch(/^nix-cache\/\S+ Cloudflare\/JS 7\.3\.0$/);
      expect(call.headers['x-auth-key']).toBeUndefined();
    }

    expect(run.outputs).toEqual({
      'bucket-name': BUCKET,
      'cache-url': `https://${HOST}`,
      's3-endpoint': `${f.account.id}.r2.cloudflarestorage.com`,
      'zone-id': f.zone.id,
      'custom-domain-status': 'active',
      changed: 'true',
      plan: expect.any(String) as unknown,
    });
    const plan = JSON.parse(run.outputs['plan'] ?? '') as Array<{
      action: string;
      resource: string;
      name: string;
    }>;
    expect(plan.map((c) => `${c.action} ${c.resource} ${c.name}`)).toEqual([
      `create r2-bucket ${BUCKET}`,
      `create r2-custom-domain ${HOST}`,
    ]);
    expect(run.summary).toMatch(/\| resource \| name \| before \| after \| changed \|/);
    expect(run.summary).toMatch(/R2 bucket \| my-cache-niks3 \| absent \|/);
    expect(run.summary).toContain('create R2 bucket my-cache-niks3');
    // It waited for the domain: pending first, then active.
    expect(run.stdout).toContain(
      `Custom domain ${HOST}: ownership pending, ssl initializing; checking again in 1 s`,
    );

    // Second apply: reads only, changed=false.
    f.cf.log.clear();
    const again = await f.run({ 'r2-location': 'weur', 'r2-storage-class': 'InfrequentAccess' });
    expect(again.code).toBe(0);
    expect(f.cf.log.writes()).toEqual([]);
    expect(again.outputs['changed']).toBe('false');
    expect(again.outputs['plan']).toBe('[]');
    expect(again.outputs['custom-domain-status']).toBe('active');
    expect(again.summary).toContain('No changes');
  });

  it('uses the eu jurisdiction header on every bucket call and the eu S3 endpoint', async () => {
    const run = await f.run({ 'r2-jurisdiction': 'eu', 'cache-subdomain': 'nix' });
    expect(run.code).toBe(0);
    expect(f.cf.state.bucket(f.account.id, 'eu', BUCKET)).toBeDefined();
    expect(f.cf.state.bucket(f.account.id, 'default', BUCKET)).toBeUndefined();
    const calls = f.cf.log.api().filter(isBucketCall);
    // The reader looks for the name in the other jurisdictions too; every other call is eu.
    const writes = calls.filter((c) => c.method !== 'GET');
    for (const w of writes) expect(w.headers['cf-r2-jurisdiction']).toBe('eu');
    for (const call of calls) expect(call.headers['cf-r2-jurisdiction']).toMatch(/^(default|eu|us|fedramp)$/);
    expect(run.outputs['s3-endpoint']).toBe(`${f.account.id}.eu.r2.cloudflarestorage.com`);
    expect(run.outputs['cache-url']).toBe('https://nix.example.dev');
  });
});

describe('custom domain status', () => {
  it('reports pending after a bounded wait when the domain does not become active', async () => {
    f.cf.settings.domainActivation = 'stuck';
    const run = await f.run({ 'domain-wait': '2' });
    expect(run.code).toBe(0);
    expect(run.outputs['custom-domain-status']).toBe('pending');
    expect(run.warnings.join('\n')).toMatch(
      /Custom domain cache\.example\.dev is not active yet \(pending\/pending\) after 2 s/,
    );
    const polls = f.cf.log.matching('GET', new RegExp(`/domains/custom/${HOST.replace(/\./g, '\\.')}$`));
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.length).toBeLessThanOrEqual(4);
  });

  it('fails, after writing outputs and the summary, when the domain ends in error', async () => {
    f.cf.settings.domainActivation = 'error';
    const run = await f.run();
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /Custom domain cache\.example\.dev failed to activate \(ownership error, ssl error\)/,
    );
    expect(run.outputs['custom-domain-status']).toBe('error');
    expect(run.outputs['changed']).toBe('true');
    expect(run.summary).toContain('**Failed:**');
  });

  it('does not wait with domain-wait: 0', async () => {
    f.cf.settings.domainActivation = 'stuck';
    const run = await f.run({ 'domain-wait': '0' });
    expect(run.code).toBe(0);
    expect(run.outputs['custom-domain-status']).toBe('pending');
    // No polling: the domain is read at most twice (the plan's read and the one after the create).
    const domainReads = f.cf.log
      .api()
      .filter((e) => e.method === 'GET' && /\/domains\/custom\/[^/]+$/.test(e.path));
    expect(domainReads.length).toBeLessThanOrEqual(2);
  });
});

describe('provision plan', () => {
  it('reads only and lists the changes apply would make', async () => {
    const run = await f.run({ mode: 'plan' });
    expect(run.code).toBe(0);
    expect(f.cf.log.writes()).toEqual([]);
    expect(f.cf.state.buckets.size).toBe(0);
    expect(run.outputs['changed']).toBe('true');
    const plan = JSON.parse(run.outputs['plan'] ?? '') as Array<Record<string, unknown>>;
    expect(plan).toEqual([
      {
        action: 'create',
        resource: 'r2-bucket',
        name: BUCKET,
        after: { jurisdiction: 'default', location: 'enam', storageClass: 'Standard' },
      },
      {
        action: 'create',
        resource: 'r2-custom-domain',
        name: HOST,
        after: { bucket: BUCKET, zoneId: f.zone.id, enabled: true, minTLS: '1.2' },
      },
    ]);
    expect(run.outputs['custom-domain-status']).toBe('absent');
    expect(run.summary).toContain('would change');
    expect(run.summary).toContain(`create custom domain ${HOST}`);
  }, 60_000);

  it('after apply, plan reports no changes', async () => {
    expect((await f.run()).code).toBe(0);
    f.cf.log.clear();
    const run = await f.run({ mode: 'plan' });
    expect(run.code).toBe(0);
    expect(f.cf.log.writes()).toEqual([]);
    expect(run.outputs['changed']).toBe('false');
    expect(run.outputs['plan']).toBe('[]');
    expect(run.summary).toContain('No changes: apply would write nothing.');
  });
});
