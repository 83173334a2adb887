/**
 * The status action through its bundle (dist/status), against the fake niks3 (write and public
 * URLs), the fake Cloudflare API (R2 bucket and custom domain) and the fake Fly Machines API.
 */
import { startFakeCloudflare, type FakeCloudflare } from '../fakes/cloudflare/index.js';
import { LOCAL_ORG_TOKEN, seedAppWithMachine, startFakeFly, type FakeFly } from '../fakes/fly/index.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { runAction } from '../helpers/run-action.js';
import { seedClosure } from '../gc/seed-closures.js';

interface Check {
  name: string;
  status: string;
  detail: string;
}

function checks(outputs: Record<string, string>): Check[] {
  return JSON.parse(outputs['checks'] ?? '[]') as Check[];
}

function statusOf(outputs: Record<string, string>, name: string): string | undefined {
  return checks(outputs).find((check) => check.name === name)?.status;
}

describe('status action', () => {
  let niks3: FakeNiks3;
  let cloudflare: FakeCloudflare;
  let fly: FakeFly;
  let cfToken: string;
  let accountId: string;

  beforeAll(async () => {
    niks3 = await startFakeNiks3();
    await seedClosure(niks3, 'one');
    await seedClosure(niks3, 'two');
    cloudflare = await startFakeCloudflare();
    const account = cloudflare.state.addAccount();
    accountId = account.id;
    cfToken = cloudflare.state.addToken().value;
    const zone = cloudflare.state.addZone({ name: 'example.dev', accountId });
    const bucket = cloudflare.state.addBucket({ accountId, name: 'my-cache-niks3', location: 'enam' });
    // The fake's public URL is http://127.0.0.1:PORT: the custom domain check looks up that host.
    cloudflare.state.addCustomDomain({
      bucket,
      domain: '127.0.0.1',
      zoneId: zone.id,
      activation: { afterGets: 0 },
    });
    // The domain provision attaches (`<cache-subdomain>.<zone-name>`), for the cache-domain input.
    cloudflare.state.addCustomDomain({
      bucket,
      domain: 'cache.example.dev',
      zoneId: zone.id,
      activation: { afterGets: 0 },
    });
    fly = await startFakeFly();
    await seedAppWithMachine(fly, 'my-niks3');
  });
  afterAll(async () => {
    await niks3.close();
    await cloudflare.close();
    await fly.close();
  });

  const run = (inputs: Record<string, string> = {}) =>
    runAction('status', {
      inputs: { 'server-url': niks3.url, 'expected-public-key': niks3.publicKeys[0] ?? '', ...inputs },
      secrets: [cfToken, LOCAL_ORG_TOKEN, niks3.apiToken],
    });

  it('reports every check, with R2 and Fly, and a cost estimate', async () => {
    const flyWrites = fly.writes().length;
    const niks3Before = niks3.requests.length;
    const result = await run({
      'cloudflare-api-token': cfToken,
      'cloudflare-account-id': accountId,
      'r2-bucket-name': 'my-cache-niks3',
      'cloudflare-api-url': cloudflare.url,
      'fly-api-token': LOCAL_ORG_TOKEN,
      'fly-app-name': 'my-niks3',
      'fly-api-url': fly.apiUrl,
    });
    expect(result.errors).toEqual([]);
    expect(result.code).toBe(0);
    expect(checks(result.outputs).map((check) => [check.name, check.status])).toEqual([
      ['write URL', 'ok'],
      ['health', 'ok'],
      ['cache config', 'ok'],
      ['public key', 'ok'],
      ['public read URL', 'ok'],
      ['cache stats', 'ok'],
      ['R2 bucket', 'ok'],
      ['R2 custom domain', 'ok'],
      ['Fly app', 'ok'],
      ['Fly machine', 'ok'],
    ]);
    expect(result.outputs).toMatchObject({
      healthy: 'true',
      'public-key': niks3.publicKeys[0],
      'cache-url': niks3.publicUrl,
      objects: '4',
      bytes: '4096',
      'monthly-cost': '1.94',
    });
    expect(result.summary).toMatch(/nix-cache status: healthy/);
    expect(result.summary).toMatch(/\| Cloudflare R2 storage \|/);
    expect(result.summary).toMatch(/\*\*\$1\.94\*\*/);
    expect(result.summary).toMatch(/Prices as of 2026-03-28/);
    expect(result.summary).toMatch(/extra-trusted-public-keys = niks3-test-1:/);
    expect(checks(result.outputs).find((c) => c.name === 'Fly machine')?.detail).toMatch(
      /ghcr\.io\/mic92\/niks3:v1\.7\.0/,
    );
    expect(checks(result.outputs).find((c) => c.name === 'R2 bucket')?.detail).toMatch(
      /location ENAM, Standard/,
    );
    // Reads only.
    const writes = niks3.requests.slice(niks3Before).filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(cloudflare.log.writes()).toEqual([]);
    expect(fly.writes().length).toBe(flyWrites);
  });

  it('fails on a wrong expected public key, showing both keys', async () => {
    const wrong = 'other-cache-1:' + Buffer.alloc(32, 7).toString('base64');
    const result = await run({ 'expected-public-key': wrong });
    expect(result.code).toBe(1);
    expect(result.outputs['healthy']).toBe('false');
    const message = result.errors.join('\n');
    expect(message).toContain(`expected ${wrong}`);
    expect(message).toContain(`the server announces ${niks3.publicKeys[0]}`);
    expect(statusOf(result.outputs, 'public key')).toBe('fail');
    expect(statusOf(result.outputs, 'health')).toBe('ok');
    expect(result.summary).toContain(wrong);
  });

  it('prices are inputs: storage above the free tier is charged', async () => {
    const result = await run({
      'r2-free-gb': '0',
      'r2-price-per-gb-month': '2',
      'fly-vm-price-per-month': '3',
      'prices-date': '2027-01-01',
    });
    expect(result.code).toBe(0);
    // 4096 bytes bill as 1 GB-month when nothing is free.
    expect(result.outputs['monthly-cost']).toBe('5.00');
    expect(result.summary).toMatch(/Prices as of 2027-01-01/);
    expect(statusOf(result.outputs, 'R2 bucket')).toBe('skipped');
    expect(statusOf(result.outputs, 'Fly app')).toBe('skipped');
  });

  it('fails the public read check when the public URL does not serve the cache', async () => {
    const result = await run({ 'cache-url': `${niks3.url}/nowhere` });
    expect(result.code).toBe(1);
    expect(statusOf(result.outputs, 'public read URL')).toBe('fail');
    expect(statusOf(result.outputs, 'announced URL')).toBe('warn');
    expect(result.errors.join('\n')).toMatch(/public read URL: .*nix-cache-info answers HTTP 404/);
  });

  it('reports a server that is down, and still checks the rest', async () => {
    await niks3.down('api');
    try {
      const result = await run({ 'cache-url': niks3.publicUrl, timeout: '2' });
      expect(result.code).toBe(1);
      expect(statusOf(result.outputs, 'write URL')).toBe('fail');
      expect(statusOf(result.outputs, 'health')).toBe('skipped');
      expect(statusOf(result.outputs, 'public read URL')).toBe('ok');
      expect(result.errors.join('\n')).toMatch(/write URL: niks3: first contact failed/);
    } finally {
      await niks3.up('api');
    }
  });

  it('reports a missing bucket and app', async () => {
    const result = await run({
      'cloudflare-api-token': cfToken,
      'cloudflare-account-id': accountId,
      'r2-bucket-name': 'no-such-bucket',
      'cloudflare-api-url': cloudflare.url,
      'fly-api-token': LOCAL_ORG_TOKEN,
      'fly-app-name': 'no-such-app',
      'fly-api-url': fly.apiUrl,
    });
    expect(result.code).toBe(1);
    expect(statusOf(result.outputs, 'R2 bucket')).toBe('fail');
    expect(statusOf(result.outputs, 'R2 custom domain')).toBe('fail');
    expect(statusOf(result.outputs, 'Fly app')).toBe('fail');
  });

  describe('cache-domain', () => {
    const r2Inputs = (): Record<string, string> => ({
      'cloudflare-api-token': cfToken,
      'cloudflare-account-id': accountId,
      'r2-bucket-name': 'my-cache-niks3',
      'cloudflare-api-url': cloudflare.url,
    });
    const domainReads = (): string[] =>
      cloudflare.log.matching('GET', /\/r2\/buckets\/my-cache-niks3\/domains\/custom\//).map((r) => r.path);

    it('is the host the R2 custom domain check looks up, not the host of the public read URL', async () => {
      cloudflare.log.clear();
      const result = await run({
        ...r2Inputs(),
        'cache-url': niks3.publicUrl,
        'cache-domain': 'cache.example.dev',
      });
      expect(result.errors).toEqual([]);
      expect(result.code).toBe(0);
      expect(checks(result.outputs).find((c) => c.name === 'R2 custom domain')).toEqual({
        name: 'R2 custom domain',
        status: 'ok',
        detail: 'cache.example.dev active (ownership and TLS)',
      });
      // Public reads still go to cache-url.
      expect(statusOf(result.outputs, 'public read URL')).toBe('ok');
      expect(result.outputs['cache-url']).toBe(niks3.publicUrl);
      expect(domainReads()).toEqual([
        `/accounts/${accountId}/r2/buckets/my-cache-niks3/domains/custom/cache.example.dev`,
      ]);
      expect(cloudflare.log.writes()).toEqual([]);
    });

    it('defaults to the host of the URL the server announces', async () => {
      cloudflare.log.clear();
      const result = await run(r2Inputs());
      expect(result.code).toBe(0);
      expect(checks(result.outputs).find((c) => c.name === 'R2 custom domain')?.detail).toBe(
        '127.0.0.1 active (ownership and TLS)',
      );
      expect(domainReads()).toEqual([
        `/accounts/${accountId}/r2/buckets/my-cache-niks3/domains/custom/127.0.0.1`,
      ]);
    });

    it('fails the check when that host is not attached to the bucket', async () => {
      const result = await run({ ...r2Inputs(), 'cache-domain': 'other.example.dev' });
      expect(result.code).toBe(1);
      expect(statusOf(result.outputs, 'R2 custom domain')).toBe('fail');
      expect(statusOf(result.outputs, 'public read URL')).toBe('ok');
      expect(result.errors.join('\n')).toMatch(
        /R2 custom domain: other\.example\.dev is not attached to bucket my-cache-niks3/,
      );
    });

    it('refuses a URL instead of a host name, before any request', async () => {
      const before = niks3.requests.length;
      cloudflare.log.clear();
      const result = await run({ ...r2Inputs(), 'cache-domain': 'https://cache.example.dev' });
      expect(result.code).toBe(1);
      expect(result.errors.join('\n')).toMatch(/Input 'cache-domain' has an invalid value/);
      expect(niks3.requests.length).toBe(before);
      expect(cloudflare.log.api()).toEqual([]);
    });
  });

  it('refuses a token without what it reports on, before any request', async () => {
    const before = niks3.requests.length;
    const result = await run({ 'cloudflare-api-token': cfToken });
    expect(result.code).toBe(1);
    expect(result.errors.join('\n')).toMatch(
      /R2 report also needs 'cloudflare-account-id' and 'r2-bucket-name'/,
    );
    const fly = await run({ 'fly-api-token': LOCAL_ORG_TOKEN });
    expect(fly.errors.join('\n')).toMatch(/'fly-app-name'/);
    const key = await run({ 'expected-public-key': 'not a key' });
    expect(key.errors.join('\n')).toMatch(/Input 'expected-public-key' has an invalid value/);
    expect(niks3.requests.length).toBe(before);
  });
});
