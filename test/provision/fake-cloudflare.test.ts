/**
 * The Cloudflare stand-in itself, driven by the real SDK (and raw fetch where the SDK hides the
 * wire): envelope, auth, zones paging, buckets per jurisdiction, custom-domain status, the S3 side's
 * signature checks, and fault injection.
 */
import aws4 from 'aws4';
import {
  createCloudflareClient,
  type CloudflareClient,
} from '../../src/core/cloudflare/cloudflare-client.js';
import { MemoryLogger } from '../../src/core/logger.js';
import {
  PERMISSIONS,
  startFakeCloudflare,
  type FakeAccount,
  type FakeCloudflare,
  type FakeToken,
} from '../fakes/cloudflare/index.js';

let cf: FakeCloudflare;
let account: FakeAccount;
let token: FakeToken;
let client: CloudflareClient;

beforeEach(async () => {
  cf = await startFakeCloudflare();
  account = cf.state.addAccount();
  token = cf.state.addToken();
  client = createCloudflareClient({
    apiToken: token.value,
    baseUrl: cf.url,
    logger: new MemoryLogger(),
    timeoutMs: 2000,
  });
});

afterEach(async () => {
  await cf.close();
});

async function raw(
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${cf.url}${path}`, init);
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    headers: response.headers,
  };
}

const auth = (): Record<string, string> => ({ authorization: `Bearer ${token.value}` });

describe('fake Cloudflare API', () => {
  it('answers with the v4 envelope, and errors with success:false and codes', async () => {
    const ok = await raw(`/accounts/${account.id}/tokens/verify`, { headers: auth() });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^application\/json/);
    expect(ok.body).toEqual({
      success: true,
      errors: [],
      messages: [{ code: 10000, message: 'This API Token is valid and active', type: null }],
      result: { id: token.id, status: 'active' },
    });
    const missing = await raw(`/accounts/${account.id}/r2/buckets/nope`, { headers: auth() });
    expect(missing).toMatchObject({
      status: 404,
      body: {
        success: false,
        result: null,
        errors: [{ code: 10006, message: 'The specified bucket does not exist.' }],
      },
    });
    // Both with and without the prefix.
    const bare = await fetch(`${cf.origin}/accounts/${account.id}/tokens/verify`, { headers: auth() });
    expect(bare.status).toBe(200);
  });

  it('checks the Authorization header', async () => {
    expect((await raw('/zones')).body['errors']).toEqual([{ code: 10000, message: 'Authentication error' }]);
    const malformed = await raw('/zones', { headers: { authorization: 'Token abc' } });
    expect(malformed.status).toBe(400);
    expect(malformed.body['errors']).toEqual([
      {
        code: 6003,
        message: 'Invalid request headers',
        error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }],
      },
    ]);
    expect(
      (await raw('/zones', { headers: { authorization: 'Bearer unknown-token-value-000' } })).status,
    ).toBe(401);
    expect((await raw('/zones', { headers: { ...auth(), 'x-auth-key': 'k' } })).status).toBe(400);
    expect((await raw('/user/tokens/verify', { headers: auth() })).status).toBe(403); // an account token
    const other = cf.state.addAccount();
    // A token sees the accounts that existed when it was made (or those it lists).
    expect((await raw(`/accounts/${other.id}/r2/buckets`, { headers: auth() })).status).toBe(403);
    const wide = cf.state.addToken();
    expect(
      (await raw(`/accounts/${other.id}/r2/buckets`, { headers: { authorization: `Bearer ${wide.value}` } }))
        .status,
    ).toBe(200);
    const narrow = cf.state.addToken({ accounts: [account.id] });
    expect(
      (
        await raw(`/accounts/${other.id}/r2/buckets`, {
          headers: { authorization: `Bearer ${narrow.value}` },
        })
      ).status,
    ).toBe(403);
  });

  it('pages zones and returns an empty page past the end (the SDK stops there)', async () => {
    for (let i = 0; i < 12; i++)
      cf.state.addZone({ name: `z${String(i).padStart(2, '0')}.dev`, accountId: account.id });
    const names: string[] = [];
    for await (const zone of client.zones.list({ account: { id: account.id }, per_page: 5 }))
      names.push(zone.name);
    expect(names).toHaveLength(12);
    const pages = cf.log.matching('GET', '/zones').map((e) => e.query['page'] ?? '1');
    expect(pages).toEqual(['1', '2', '3', '4']);
    const exact = await client.zones.list({ name: 'Z03.DEV', account: { id: account.id } });
    expect(exact.result.map((z) => z.name)).toEqual(['z03.dev']);
  });

  it('keeps buckets per jurisdiction, refuses bad names, unknown fields and duplicates', async () => {
    const A = account.id;
    // A jurisdiction and a hint together: refused (setting jurisdictionWithLocationHint: reject) ...
    await expect(
      client.r2.buckets.create({
        account_id: A,
        name: 'b-one',
        locationHint: 'weur',
        'cf-r2-jurisdiction': 'eu',
      }),
    ).rejects.toMatchObject({ status: 400, errors: [{ code: 10040 }] });
    // ... or the hint is ignored (ignore); either way the bucket lives where the jurisdiction keeps data.
    cf.settings.jurisdictionWithLocationHint = 'ignore';
    await client.r2.buckets.create({
      account_id: A,
      name: 'b-one',
      locationHint: 'wnam',
      'cf-r2-jurisdiction': 'eu',
    });
    cf.settings.jurisdictionWithLocationHint = 'reject';
    await expect(client.r2.buckets.get('b-one', { account_id: A })).rejects.toMatchObject({ status: 404 });
    expect(await client.r2.buckets.get('b-one', { account_id: A, 'cf-r2-jurisdiction': 'eu' })).toMatchObject(
      {
        name: 'b-one',
        location: 'WEUR',
        storage_class: 'Standard',
        jurisdiction: 'eu',
      },
    );
    await expect(
      client.r2.buckets.create(
        { account_id: A, name: 'b-one', 'cf-r2-jurisdiction': 'eu' },
        { maxRetries: 0 },
      ),
    ).rejects.toMatchObject({
      status: 409,
      errors: [{ code: 10004, message: 'The bucket you tried to create already exists, and you own it.' }],
    });
    await expect(client.r2.buckets.create({ account_id: A, name: 'Bad_Name' })).rejects.toMatchObject({
      status: 400,
      errors: [{ code: 10005 }],
    });
    const unknownField = await raw(`/accounts/${A}/r2/buckets`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'b-two', location_hint: 'weur' }),
    });
    expect(unknownField).toMatchObject({ status: 400, body: { errors: [{ code: 10040 }] } });
    const edited = await client.r2.buckets.edit('b-one', {
      account_id: A,
      storage_class: 'InfrequentAccess',
      'cf-r2-jurisdiction': 'eu',
    });
    expect(edited.storage_class).toBe('InfrequentAccess');
    cf.state.putObject(cf.state.bucket(A, 'eu', 'b-one')!, 'k', 'v');
    await expect(
      client.r2.buckets.delete('b-one', { account_id: A, 'cf-r2-jurisdiction': 'eu' }, { maxRetries: 0 }),
    ).rejects.toMatchObject({
      status: 409,
      errors: [{ code: 10008 }],
    });
  });

  it('advances a custom domain from pending to active, by reads or by time, and models stuck/error', async () => {
    let now = 1_000_000;
    await cf.close();
    cf = await startFakeCloudflare({
      now: () => now,
      settings: { domainActivation: { afterGets: 3, afterMs: 60_000 } },
    });
    account = cf.state.addAccount();
    token = cf.state.addToken();
    client = createCloudflareClient({ apiToken: token.value, baseUrl: cf.url, logger: new MemoryLogger() });
    const zone = cf.state.addZone({ name: 'example.dev', accountId: account.id });
    const A = account.id;
    await client.r2.buckets.create({ account_id: A, name: 'bkt' });
    const created = await client.r2.buckets.domains.custom.create('bkt', {
      account_id: A,
      domain: 'cache.example.dev',
      zoneId: zone.id,
      enabled: true,
    });
    expect(created).toEqual({ domain: 'cache.example.dev', enabled: true, zoneId: zone.id, minTLS: '1.0' });
    const get = () =>
      client.r2.buckets.domains.custom.get('cache.example.dev', { account_id: A, bucket_name: 'bkt' });
    expect((await get()).status).toEqual({ ownership: 'pending', ssl: 'initializing' });
    now += 60_000;
    expect(await get()).toMatchObject({
      status: { ownership: 'active', ssl: 'active' },
      zoneName: 'example.dev',
      minTLS: '1.0',
    });
    cf.state.domains.get('cache.example.dev')!.activation = 'error';
    expect((await get()).status).toEqual({ ownership: 'error', ssl: 'error' });
    cf.state.domains.get('cache.example.dev')!.activation = 'degraded';
    const degraded = await get();
    expect(degraded.status).toEqual({ ownership: 'unknown', ssl: 'unknown' });
    expect(degraded.minTLS).toBeUndefined();
    // A host outside the zone, or already attached, is refused.
    await expect(
      client.r2.buckets.domains.custom.create(
        'bkt',
        { account_id: A, domain: 'cache.other.dev', zoneId: zone.id, enabled: true },
        { maxRetries: 0 },
      ),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      client.r2.buckets.domains.custom.create(
        'bkt',
        { account_id: A, domain: 'cache.example.dev', zoneId: zone.id, enabled: true },
        { maxRetries: 0 },
      ),
    ).rejects.toMatchObject({ status: 409 });
    // The zone cannot be changed by update.
    const put = await raw(`/accounts/${A}/r2/buckets/bkt/domains/custom/cache.example.dev`, {
      method: 'PUT',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ zoneId: zone.id }),
    });
    expect(put.status).toBe(400);
    expect(
      await client.r2.buckets.domains.custom.delete('cache.example.dev', {
        account_id: A,
        bucket_name: 'bkt',
      }),
    ).toEqual({ domain: 'cache.example.dev' });
  });

  it('injects faults: status with retry-after, HTML bodies, the global rate limit, after-handling answers', async () => {
    cf.faults.add({
      path: '/tokens/verify',
      times: 1,
      action: { status: 429, headers: { 'retry-after': '7' } },
    });
    const limited = await raw(`/accounts/${account.id}/tokens/verify`, { headers: auth() });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect((await raw(`/accounts/${account.id}/tokens/verify`, { headers: auth() })).status).toBe(200);

    cf.faults.rateLimit({ limit: 2, windowMs: 60_000 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await raw(`/accounts/${account.id}/tokens/verify`, { headers: auth() })).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(cf.faults.rateLimited).toBe(2);
    cf.faults.clear();

    cf.faults.add({
      path: '/r2/buckets',
      method: 'POST',
      times: 1,
      afterHandling: true,
      action: { status: 500 },
    });
    await expect(
      client.r2.buckets.create({ account_id: account.id, name: 'lost-answer' }, { maxRetries: 0 }),
    ).rejects.toMatchObject({ status: 500 });
    expect(cf.state.bucket(account.id, 'default', 'lost-answer')).toBeDefined();
  });
});

describe('fake R2 S3 endpoint', () => {
  function signed(
    method: string,
    path: string,
    credentials: { accessKeyId: string; secretAccessKey: string },
    body?: string,
  ) {
    const url = new URL(`${cf.s3Url()}${path}`);
    const request = aws4.sign(
      {
        host: url.host,
        path: url.pathname + url.search,
        method,
        service: 's3',
        region: 'auto',
        ...(body !== undefined ? { body } : {}),
      },
      credentials,
    );
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers ?? {}))
      if (!['host', 'content-length'].includes(k.toLowerCase())) headers[k] = String(v);
    return fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  }

  it('verifies SigV4 header signatures and serves put/get/list/delete', async () => {
    cf.state.addBucket({ accountId: account.id, name: 'b' });
    const writer = cf.state.addToken({ permissions: [PERMISSIONS.r2ItemWrite] });
    const creds = cf.state.s3Credentials(writer);
    expect((await signed('PUT', '/b/dir/a.txt', creds, 'hello')).status).toBe(200);
    const get = await signed('GET', '/b/dir/a.txt', creds);
    expect(await get.text()).toBe('hello');
    const list = await signed('GET', '/b?list-type=2&prefix=dir%2F', creds);
    expect(await list.text()).toContain('<Key>dir/a.txt</Key>');

    const wrong = await signed('GET', '/b/dir/a.txt', { ...creds, secretAccessKey: 'x'.repeat(64) });
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    // A body that differs from the signed payload hash.
    const url = new URL(`${cf.s3Url()}/b/dir/a.txt`);
    const request = aws4.sign(
      { host: url.host, path: url.pathname, method: 'PUT', service: 's3', region: 'auto', body: 'hello' },
      creds,
    );
    const tampered = await fetch(url, {
      method: 'PUT',
      headers: Object.fromEntries(
        Object.entries(request.headers ?? {})
          .filter(([k]) => !['host', 'content-length'].includes(k.toLowerCase()))
          .map(([k, v]) => [k, String(v)]),
      ),
      body: 'HELLO',
    });
    expect(tampered.status).toBe(400);
    expect(await tampered.text()).toContain('XAmzContentSHA256Mismatch');
    expect((await fetch(`${cf.s3Url()}/b/dir/a.txt`)).status).toBe(403); // unsigned

    const reader = cf.state.s3Credentials(cf.state.addToken({ permissions: [PERMISSIONS.r2ItemRead] }));
    expect((await signed('DELETE', '/b/dir/a.txt', reader)).status).toBe(403);
    expect((await signed('DELETE', '/b/dir/a.txt', creds)).status).toBe(204);
    expect(cf.state.bucket(account.id, 'default', 'b')?.objects.size).toBe(0);
    expect((await signed('GET', '/missing/x', creds)).status).toBe(404);
  });
});
