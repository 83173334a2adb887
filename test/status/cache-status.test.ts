/**
 * The status core: the cost model, and the R2 checks that need states the action test does not
 * set up (a custom domain still pending, an Infrequent Access bucket), through the real clients.
 */
import { CloudflareCalls } from '../../src/core/cloudflare/cloudflare-calls.js';
import { createCloudflareClient } from '../../src/core/cloudflare/cloudflare-client.js';
import { R2Api } from '../../src/core/cloudflare/r2-api.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { Niks3Client } from '../../src/core/niks3/niks3-client.js';
import { readCacheStatus } from '../../src/core/status/cache-status.js';
import { DEFAULT_PRICES, estimateMonthlyCost } from '../../src/core/status/cost-estimate.js';
import { publicCacheReader } from '../../src/core/status/public-cache.js';
import { startFakeCloudflare, type FakeCloudflare } from '../fakes/cloudflare/index.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';

describe('monthly cost estimate', () => {
  const cost = (bytes: number | undefined) =>
    estimateMonthlyCost({ storageBytes: bytes, storageSource: 'test', prices: DEFAULT_PRICES }).total;

  it('follows the original stack: under $10 a month until about 500 GB', () => {
    expect(cost(0)).toBe(1.94);
    expect(cost(10e9)).toBe(1.94);
    expect(cost(10e9 + 1)).toBe(1.96); // billed per started GB-month
    expect(cost(500e9)).toBe(9.29); // (500 - 10) * 0.015 + 1.94
    expect(cost(undefined)).toBe(1.94);
  });

  it('notes a non-Standard storage class', () => {
    const estimate = estimateMonthlyCost({
      storageBytes: 1,
      storageSource: 't',
      prices: DEFAULT_PRICES,
      storageClass: 'InfrequentAccess',
    });
    expect(estimate.notes.join(' ')).toMatch(/InfrequentAccess: it has no free tier/);
  });
});

describe('R2 checks', () => {
  let niks3: FakeNiks3;
  let cloudflare: FakeCloudflare;

  beforeAll(async () => {
    niks3 = await startFakeNiks3();
    cloudflare = await startFakeCloudflare();
  });
  afterAll(async () => {
    await niks3.close();
    await cloudflare.close();
  });

  it('warns while the custom domain is pending, and reports the storage class', async () => {
    const account = cloudflare.state.addAccount();
    const token = cloudflare.state.addToken();
    const zone = cloudflare.state.addZone({ name: 'example.dev', accountId: account.id });
    const bucket = cloudflare.state.addBucket({
      accountId: account.id,
      name: 'ia-bucket',
      storageClass: 'InfrequentAccess',
    });
    cloudflare.state.addCustomDomain({ bucket, domain: '127.0.0.1', zoneId: zone.id, activation: 'stuck' });
    const logger = new MemoryLogger();
    const status = await readCacheStatus({
      niks3: new Niks3Client({ serverUrl: niks3.url, logger }),
      publicCache: publicCacheReader({ logger, timeoutMs: 5_000 }),
      logger,
      cacheUrl: undefined,
      expectedPublicKey: undefined,
      timeoutMs: 5_000,
      r2: {
        api: new R2Api(
          createCloudflareClient({ apiToken: token.value, baseUrl: cloudflare.url, logger }),
          new CloudflareCalls({ logger }),
          account.id,
        ),
        bucket: 'ia-bucket',
        jurisdiction: 'default',
      },
      prices: DEFAULT_PRICES,
    });
    const byName = new Map(status.checks.map((check) => [check.name, check]));
    expect(byName.get('R2 custom domain')?.status).toBe('warn');
    expect(byName.get('R2 custom domain')?.detail).toMatch(/ownership pending/);
    expect(byName.get('public key')?.detail).toMatch(/no expected-public-key given/);
    expect(status.storageClass).toBe('InfrequentAccess');
    expect(status.healthy).toBe(true);
    expect(status.cost.notes.join(' ')).toMatch(/InfrequentAccess/);
    expect(logger.lines.some((line) => line.startsWith('warning: R2 custom domain'))).toBe(true);
  });
});
