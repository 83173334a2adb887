/**
 * The fake niks3 server, exercised over HTTP: auth, a whole push session (single PUT and
 * multipart), signing against the spec's test vector, expiry of presigned URLs, faults,
 * GC and pins with a moved clock, version differences, routing, the read proxy, and a
 * real `nix copy` from the fake's public URL with signature checking on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { buildDerivations, copyFromCache, nixStoreDump } from '../helpers/nix-fixtures.js';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { startFakeNiks3, type FakeNiks3, type FakeNiks3Options } from './niks3/index.js';

// ---- spec vectors (shared/spec/niks3.md §1.3, §4.3) ----
const TEST_SECRET =
  'niks3-test-1:0knWkx/F+6IJmI4dkvNs14SCaewg9ZWSAQUNg9juRxh/8x+rzUJx9SWdyGOVl21IbJlQemUKG40qW2TTyrE++w==';
const TEST_PUBLIC = 'niks3-test-1:f/Mfq81CcfUlnchjlZdtSGyZUHplChuNKltk08qxPvs=';
const VECTOR_SIG =
  'niks3-test-1:IQ8SoNkz8N42fU8aQDsiPD77WM540b+yYYwDmRPz5jwk2IMz1rr1hQu8Ny2cH1HPS0b4mHkP79F7VlzOypa8Bw==';
const HELLO = '26xbg1ndr7hbcncrlf9nhx5is2b25d13';
const HELLO_PATH = `/nix/store/${HELLO}-hello-2.12.1`;
const HELLO_NAR_HASH = 'sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh';
const HELLO_NAR = 'nar/1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh.nar.zst';
const GLIBC_PATH = '/nix/store/sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36';

const MiB = 1024 * 1024;
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** Nix's base-32 encoding (spec §4.1). */
function nix32(bytes: Buffer): string {
  const len = Math.floor((bytes.length * 8 - 1) / 5) + 1;
  let out = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    const c = ((bytes[i]! >> j) | (i + 1 < bytes.length ? bytes[i + 1]! << (8 - j) : 0)) & 0x1f;
    out += NIX32[c];
  }
  return out;
}

let counter = 0;
/** A fresh, valid 32-char store path hash (deterministic per call). */
function hash32(): string {
  return nix32(createHash('sha256').update(`h32-${counter++}`).digest()).slice(0, 32);
}
function narKeyFor(content: string | Buffer): string {
  return `nar/${nix32(createHash('sha256').update(content).digest())}.nar.zst`;
}

type Json = Record<string, unknown>;
interface Created {
  id: string;
  started_at: string;
  pending_objects: Record<
    string,
    { type: string; presigned_url?: string; multipart_info?: { upload_id: string; part_urls: string[] } }
  >;
}

const fakes: FakeNiks3[] = [];
async function fake(opts: FakeNiks3Options = {}): Promise<FakeNiks3> {
  const f = await startFakeNiks3({ tombstoneWait: { pollMs: 5, maxAgeMs: 20 }, gcPhaseDelayMs: 0, ...opts });
  fakes.push(f);
  return f;
}
afterAll(async () => {
  for (const f of fakes) await f.close();
});

async function api(
  f: FakeNiks3,
  method: string,
  path: string,
  body?: unknown,
  token: string | null = f.apiToken,
): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  return fetch(f.url + path, {
    method,
    headers,
    redirect: 'manual',
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

async function expectText(res: Response, status: number, text: string): Promise<void> {
  expect({ status: res.status, body: await res.text() }).toEqual({ status, body: text + '\n' });
  expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
}

async function json<T = Json>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(text.endsWith('\n')).toBe(true);
  expect(res.headers.get('content-type')).toBe('application/json');
  return JSON.parse(text) as T;
}

async function put(
  url: string,
  body: Buffer | string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, { method: 'PUT', body, headers });
}

/** A synthetic store path with its narinfo, NAR and listing objects. */
function syntheticPath(refs: string[] = [], narContent = `nar-${counter++}`) {
  const h = hash32();
  const narKey = narKeyFor(narContent);
  return {
    h,
    storePath: `/nix/store/${h}-p${counter}`,
    narinfoKey: `${h}.narinfo`,
    narKey,
    lsKey: `${h}.ls`,
    narContent,
    objects: [
      { key: `${h}.narinfo`, type: 'narinfo', refs: [...refs.map((r) => `${r}.narinfo`), narKey, `${h}.ls`] },
      { key: narKey, type: 'nar', refs: [], nar_size: Buffer.byteLength(narContent) },
      { key: `${h}.ls`, type: 'listing', refs: [] },
    ],
  };
}

/** Pushes paths as one closure (top = last path): create, PUT everything, complete. */
async function push(f: FakeNiks3, paths: Array<ReturnType<typeof syntheticPath>>): Promise<Created> {
  const top = paths[paths.length - 1]!;
  const created = await json<Created>(
    await api(f, 'POST', '/api/pending_closures', {
      closure: top.narinfoKey,
      objects: paths.flatMap((p) => p.objects),
    }),
  );
  for (const [key, po] of Object.entries(created.pending_objects)) {
    const p = paths.find((x) => x.narKey === key);
    const res = await put(po.presigned_url!, p?.narContent ?? `body of ${key}`);
    expect(res.status).toBe(200);
  }
  expect((await api(f, 'POST', `/api/pending_closures/${created.id}/complete`)).status).toBe(204);
  return created;
}

// ------------------------------------------------------------------------------------------

describe('startup validation', () => {
  it('refuses a short API token and bad OIDC configs, as the real server does at startup', async () => {
    await expect(startFakeNiks3({ apiToken: 'short' })).rejects.toThrow(/at least 36/);
    await expect(startFakeNiks3({ oidc: [] })).rejects.toThrow(/no providers configured/);
    await expect(
      startFakeNiks3({ oidcConfig: { providers: { a: { issuer: 'http://127.0.0.1:1', audience: 'x' } } } }),
    ).rejects.toThrow(/must use HTTPS/);
    await expect(
      startFakeNiks3({
        oidc: [
          { issuer: 'https://a.example', audience: 'x', jwksUrl: 'https://a.example/jwks' },
          { issuer: 'https://a.example', audience: 'y', jwksUrl: 'https://a.example/jwks' },
        ],
      }),
    ).rejects.toThrow(/duplicate issuer/);
  });
});

describe('auth (spec §2, §10.A)', () => {
  let issuer: OidcIssuer;
  let f: FakeNiks3;
  const AUD = 'https://niks3.test';

  beforeAll(async () => {
    issuer = await startOidcIssuer();
    f = await fake({
      oidc: [
        {
          issuer: issuer.issuer,
          audience: AUD,
          boundSubject: ['repo:octo-org/*:*'],
          boundClaims: { repository_owner: ['octo-org'], ref: ['refs/heads/main', 'refs/tags/*'] },
        },
      ],
    });
  });
  afterAll(async () => {
    await issuer.close();
  });

  it('answers 401 Unauthorized for missing, non-Bearer and wrong credentials', async () => {
    await expectText(await api(f, 'GET', '/api/pins', undefined, null), 401, 'Unauthorized');
    const lower = await fetch(`${f.url}/api/pins`, { headers: { authorization: `bearer ${f.apiToken}` } });
    await expectText(lower, 401, 'Unauthorized');
    await expectText(await api(f, 'GET', '/api/pins', undefined, 'x'.repeat(48)), 401, 'Unauthorized');
    await expectText(await api(f, 'GET', '/api/pins', undefined, f.apiToken.slice(1)), 401, 'Unauthorized');
    await expectText(await api(f, 'GET', '/api/pins', undefined, ''), 401, 'Unauthorized');
    expect((await api(f, 'GET', '/api/pins')).status).toBe(200);
  });

  it('leaves health, cache-config and cache-stats open', async () => {
    const h = await fetch(`${f.url}/health`);
    expect([h.status, await h.text()]).toEqual([200, 'OK']);
    const cfg = await json(
      await fetch(`${f.url}/api/cache-config?issuer=${encodeURIComponent(issuer.issuer)}`),
    );
    expect(cfg).toEqual({ substituter_url: f.publicUrl, public_keys: f.publicKeys, oidc_audience: AUD });
    const noAud = await json(await fetch(`${f.url}/api/cache-config?issuer=https://other`));
    expect(noAud).not.toHaveProperty('oidc_audience');
    const stats = await fetch(`${f.url}/api/cache-stats`);
    expect(stats.headers.get('access-control-allow-origin')).toBe('*');
    expect(await json(stats)).toEqual({ objects: 0, logical_bytes: 0 });
  });

  it('accepts a valid OIDC token on every protected route, GC and pins included', async () => {
    const token = issuer.mint(AUD);
    expect((await api(f, 'GET', '/api/pins', undefined, token)).status).toBe(200);
    const gc = await api(f, 'DELETE', '/api/closures?older-than=720h', undefined, token);
    expect(gc.status).toBe(202);
    await f.waitForGc();
    const entry = f.requests.filter((r) => r.path === '/api/closures').pop()!;
    expect(entry.auth).toBe(`oidc:provider1:repo:octo-org/octo-repo:ref:refs/heads/main`);
  });

  it('refuses every invalid OIDC token with the same 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = issuer.mint(AUD);
    const [h, p] = good.split('.');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forged = `${h}.${p}.${cryptoSign('RSA-SHA256', Buffer.from(`${h}.${p}`), other).toString('base64url')}`;
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    const bad = [
      issuer.mint('https://wrong-audience'),
      issuer.mint(AUD, { exp: now - 1 }),
      issuer.mint(AUD, { exp: undefined }),
      issuer.mint(AUD, { nbf: now + 6 * 60 }),
      issuer.mint(AUD, { iss: 'https://unknown-issuer' }),
      issuer.mint(AUD, { sub: 'repo:evil-org/x:ref:refs/heads/main' }),
      issuer.mint(AUD, { repository_owner: 'evil-org' }),
      issuer.mint(AUD, { ref: 'refs/heads/feature' }),
      forged,
      none,
      'not-a-jwt',
      `${h}.!!!.sig`,
    ];
    for (const token of bad)
      await expectText(await api(f, 'GET', '/api/pins', undefined, token), 401, 'Unauthorized');
    // nbf within the 5 min leeway and a tag ref matching a glob are fine.
    expect((await api(f, 'GET', '/api/pins', undefined, issuer.mint(AUD, { nbf: now + 60 }))).status).toBe(
      200,
    );
    expect(
      (await api(f, 'GET', '/api/pins', undefined, issuer.mint(AUD, { ref: 'refs/tags/v1.2' }))).status,
    ).toBe(200);
  });

  it('judges OIDC expiry by the fake clock', async () => {
    const token = issuer.mint(AUD); // valid for 5 min
    expect((await api(f, 'GET', '/api/pins', undefined, token)).status).toBe(200);
    f.advance(10 * 60 * 1000);
    try {
      expect((await api(f, 'GET', '/api/pins', undefined, token)).status).toBe(401);
    } finally {
      f.advance(-10 * 60 * 1000);
    }
  });
});

describe('a whole push session (spec §3.1–§3.6, §10.B–D)', () => {
  let f: FakeNiks3;
  beforeAll(async () => {
    f = await fake({ signingKeys: [TEST_SECRET] });
  });

  it('creates a session, uploads by single PUT and multipart, signs, and commits', async () => {
    const small = syntheticPath();
    const bigHash = hash32();
    const bigNar = narKeyFor('big');
    const part1 = Buffer.alloc(5 * MiB, 1);
    const part2 = Buffer.from('tail of the big nar');
    const objects = [
      ...small.objects,
      { key: `${bigHash}.narinfo`, type: 'narinfo', refs: [small.narinfoKey, bigNar], junk: true },
      { key: bigNar, type: 'nar', refs: [], nar_size: 100 * MiB },
      // duplicate key: the last entry wins
      { key: `${bigHash}.narinfo`, Type: 'narinfo', REFS: [`${small.h}.narinfo`, bigNar, 'unknown-ref'] },
    ];
    const created = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { Closure: `${bigHash}.narinfo`, objects, unknown: 1 }),
    );
    expect(created.id).toMatch(/^\d+$/);
    expect(created.started_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Object.keys(created.pending_objects).sort()).toEqual(
      [small.narinfoKey, small.narKey, small.lsKey, `${bigHash}.narinfo`, bigNar].sort(),
    );
    expect(created.pending_objects[small.narKey]).toEqual({ type: 'nar', presigned_url: expect.any(String) });
    const mp = created.pending_objects[bigNar]!.multipart_info!;
    expect(mp.part_urls).toHaveLength(12); // 100 MiB → 10 + 2
    expect(created.pending_objects[bigNar]).not.toHaveProperty('presigned_url');

    // single PUTs (overwrites allowed)
    for (const key of [small.narKey, small.lsKey, small.lsKey]) {
      const res = await put(created.pending_objects[key]!.presigned_url!, `content of ${key}`, {
        'content-type': 'application/octet-stream',
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    }

    // multipart: parts, more part URLs, complete with unsorted parts and unquoted ETags
    const e1 = (await put(mp.part_urls[0]!, part1)).headers.get('etag')!;
    const more = await json<{ part_urls: string[]; start_part_number: number }>(
      await api(f, 'POST', '/api/multipart/request-parts', {
        object_key: bigNar,
        upload_id: mp.upload_id,
        start_part_number: 13,
        num_parts: 3,
      }),
    );
    expect(more.start_part_number).toBe(13);
    expect(more.part_urls).toHaveLength(3);
    expect(more.part_urls[0]).toContain('partNumber=13');
    const e2 = (await put(mp.part_urls[1]!, part2)).headers.get('etag')!;
    const completeBody = {
      object_key: bigNar,
      upload_id: mp.upload_id,
      parts: [
        { part_number: 2, etag: e2.replace(/"/g, '') },
        { part_number: 1, etag: e1 },
      ],
    };
    expect((await api(f, 'POST', '/api/multipart/complete', completeBody)).status).toBe(204);
    await expectText(
      await api(f, 'POST', '/api/multipart/complete', completeBody),
      404,
      'multipart upload not found',
    );
    // Buffer.equals: jest's deep equality on megabytes is very slow
    expect((await f.getObject(bigNar))!.equals(Buffer.concat([part1, part2]))).toBe(true);
    expect(f.store.head(bigNar)!.etag).toMatch(/^"[0-9a-f]{32}-2"$/);
    // parts of a completed upload are refused by S3
    const late = await put(mp.part_urls[2]!, 'late');
    expect(late.status).toBe(404);
    expect(await late.text()).toContain('<Code>NoSuchUpload</Code>');

    // HEAD /api/objects
    expect((await api(f, 'HEAD', `/api/objects/${bigNar}`)).status).toBe(204);
    expect((await api(f, 'HEAD', `/api/objects/nar%2Fmissing.nar.zst`)).status).toBe(404);

    // sign: unknown keys are 403, empty map is 200 even for an unknown id
    await expectText(
      await api(f, 'POST', `/api/pending_closures/${created.id}/sign`, {
        narinfos: { [`${hash32()}.narinfo`]: {} },
      }),
      403,
      'invalid narinfo key: not part of this pending closure',
    );
    expect(await json(await api(f, 'POST', '/api/pending_closures/999999/sign', {}))).toEqual({
      signatures: {},
    });
    await expectText(
      await api(f, 'POST', `/api/pending_closures/${created.id}/sign`, {
        narinfos: {
          [small.narinfoKey]: { store_path: small.storePath, nar_hash: 'sha256:short', nar_size: 1 },
        },
      }),
      500,
      'failed to sign narinfo: NAR hash has invalid length: expected 59, got 12',
    );
    const signed = await json<{ signatures: Record<string, string[]> }>(
      await api(f, 'POST', `/api/pending_closures/${created.id}/sign`, {
        narinfos: {
          [small.narinfoKey]: {
            store_path: small.storePath,
            nar_hash: HELLO_NAR_HASH,
            nar_size: 5,
            references: [],
          },
          [`${bigHash}.narinfo`]: {
            store_path: `/nix/store/${bigHash}-big`,
            nar_hash: HELLO_NAR_HASH,
            nar_size: 9,
            url: 'ignored',
          },
        },
      }),
    );
    expect(Object.keys(signed.signatures).sort()).toEqual([small.narinfoKey, `${bigHash}.narinfo`].sort());
    for (const sigs of Object.values(signed.signatures))
      expect(sigs).toEqual([expect.stringMatching(/^niks3-test-1:.{86}==$/)]);

    // narinfo PUTs (zstd, as the client does), then complete
    for (const key of [small.narinfoKey, `${bigHash}.narinfo`]) {
      const res = await put(
        created.pending_objects[key]!.presigned_url!,
        zstdCompressSync(Buffer.from(`StorePath: x\n`)),
        {
          'content-type': 'text/x-nix-narinfo',
          'content-encoding': 'zstd',
        },
      );
      expect(res.status).toBe(200);
    }
    expect(f.store.head(small.narinfoKey)).toMatchObject({
      contentType: 'text/x-nix-narinfo',
      contentEncoding: 'zstd',
    });
    expect((await api(f, 'POST', `/api/pending_closures/${created.id}/complete`)).status).toBe(204);
    await expectText(
      await api(f, 'POST', `/api/pending_closures/${created.id}/complete`),
      404,
      'pending closure not found',
    );

    // committed state: closure row, refs as given (unknown refs kept), sizes
    expect(f.state.closures.has(`${bigHash}.narinfo`)).toBe(true);
    expect([...f.state.objects.get(`${bigHash}.narinfo`)!.refs]).toEqual([
      `${small.h}.narinfo`,
      bigNar,
      'unknown-ref',
    ]);
    expect(f.state.objects.get(bigNar)!.size).toBe(100 * MiB);
    const closure = await json<{ id: string; objects: string[] }>(
      await api(f, 'GET', `/api/closures/${bigHash}.narinfo`),
    );
    expect(closure.objects.sort()).toEqual(
      [bigNar, `${bigHash}.narinfo`, small.narinfoKey, small.narKey, small.lsKey].sort(),
    );
    expect(await json(await fetch(`${f.url}/api/cache-stats`))).toEqual({
      objects: 5,
      logical_bytes: 100 * MiB + Buffer.byteLength(small.narContent),
    });

    // a second push of the same closure has nothing to upload, but still refreshes the GC age
    const again = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: `${bigHash}.narinfo`, objects }),
    );
    expect(again.pending_objects).toEqual({});
    const before = f.state.closures.get(`${bigHash}.narinfo`)!.updatedAt;
    f.advance(1000);
    expect((await api(f, 'POST', `/api/pending_closures/${again.id}/complete`)).status).toBe(204);
    expect(f.state.closures.get(`${bigHash}.narinfo`)!.updatedAt).toBeGreaterThan(before);
  });

  it('validates create requests in the documented order', async () => {
    const nar = { key: HELLO_NAR, type: 'nar', nar_size: 1 };
    const cases: Array<[unknown, string]> = [
      ['', 'failed to decode request: EOF'],
      ['{"closure":', 'failed to decode request: unexpected EOF'],
      ['{"closure":}', "failed to decode request: invalid character '}' looking for beginning of value"],
      [
        { closure: 'a.narinfo', objects: [{ ...nar, nar_size: -1 }] },
        'failed to decode request: json: cannot unmarshal number -1 into Go struct field objectWithRefs.objects.nar_size of type uint64',
      ],
      [{ objects: [nar] }, 'missing closure key'],
      [{ closure: null, objects: [nar] }, 'missing closure key'],
      [{ closure: 'a.ls', objects: [nar] }, 'closure key must end with .narinfo'],
      [{ closure: 'a.narinfo', objects: [] }, 'missing objects key'],
      [{ closure: 'a.narinfo' }, 'missing objects key'],
      [
        { closure: 'a.narinfo', objects: [nar, { key: 'nix-cache-info', type: 'narinfo' }] },
        'invalid object key "nix-cache-info" for type "narinfo"',
      ],
      [
        { closure: 'a.narinfo', objects: [{ key: 'pins/x', type: 'pin' }] },
        'invalid object key "pins/x" for type "pin"',
      ],
      [
        { closure: 'a.narinfo', objects: [{ key: 'log/../x.drv', type: 'build_log' }] },
        'invalid object key "log/../x.drv" for type "build_log"',
      ],
      [
        { closure: 'a.narinfo', objects: [{ key: HELLO_NAR, type: 'listing' }] },
        `invalid object key "${HELLO_NAR}" for type "listing"`,
      ],
    ];
    for (const [body, message] of cases) {
      await expectText(await api(f, 'POST', '/api/pending_closures', body), 400, message);
    }
    // accepted: a closure key that is not among the objects, trailing bytes, build logs with + ? =
    const ok = await api(
      f,
      'POST',
      '/api/pending_closures',
      JSON.stringify({
        closure: 'anything.narinfo',
        objects: [
          { key: 'log/abc-hm_..zlogout+x?y=z.drv', type: 'build_log' },
          { key: `realisations/sha256:${'a'.repeat(64)}!out.doi`, type: 'realisation', nar_size: 7 },
        ],
      }) + ' trailing garbage',
    );
    const created = await json<Created>(ok);
    expect(Object.values(created.pending_objects).every((p) => p.presigned_url !== undefined)).toBe(true);
    // the presigned URL of a key with ? and = works
    const logUrl = created.pending_objects['log/abc-hm_..zlogout+x?y=z.drv']!.presigned_url!;
    expect((await put(logUrl, 'log text')).status).toBe(200);
    expect(await f.getObject('log/abc-hm_..zlogout+x?y=z.drv')).toEqual(Buffer.from('log text'));
  });

  it('answers 413 above the body limits', async () => {
    const small = await fake({ bodyLimits: { pendingClosure: 64, multipart: 64 } });
    await expectText(
      await api(small, 'POST', '/api/pending_closures', {
        closure: 'a.narinfo',
        objects: [],
        pad: 'x'.repeat(100),
      }),
      413,
      'request body exceeds 64 bytes',
    );
    await expectText(
      await api(small, 'POST', '/api/multipart/complete', { pad: 'x'.repeat(100) }),
      413,
      'request body exceeds 64 bytes',
    );
  });

  it('validates sign/complete ids and multipart requests', async () => {
    await expectText(
      await api(f, 'POST', '/api/pending_closures/abc/complete'),
      400,
      'invalid id: strconv.ParseInt: parsing "abc": invalid syntax',
    );
    await expectText(
      await api(f, 'POST', '/api/pending_closures/2147483648/sign', {}),
      400,
      'invalid id: strconv.ParseInt: parsing "2147483648": value out of range',
    );
    const rp = (b: Json): Promise<Response> => api(f, 'POST', '/api/multipart/request-parts', b);
    const base = { object_key: HELLO_NAR, upload_id: 'u', start_part_number: 1, num_parts: 1 };
    await expectText(await rp({ ...base, object_key: '' }), 400, 'missing object_key');
    await expectText(await rp({ ...base, object_key: 'x.narinfo' }), 400, 'invalid object key "x.narinfo"');
    await expectText(await rp({ ...base, upload_id: '' }), 400, 'missing upload_id');
    await expectText(await rp({ ...base, start_part_number: 0 }), 400, 'start_part_number must be positive');
    await expectText(await rp({ ...base, num_parts: 1001 }), 400, 'num_parts must be between 1 and 1000');
    await expectText(
      await rp({ ...base, start_part_number: 9901, num_parts: 101 }),
      400,
      'requested parts exceed S3 maximum of 10000',
    );
    await expectText(await rp(base), 404, 'multipart upload not found');
    const mc = (b: Json): Promise<Response> => api(f, 'POST', '/api/multipart/complete', b);
    await expectText(await mc({ object_key: HELLO_NAR, upload_id: 'u' }), 400, 'missing parts');
    await expectText(
      await mc({ object_key: HELLO_NAR, upload_id: 'u', parts: [{ part_number: 1, etag: 'x' }] }),
      404,
      'multipart upload not found',
    );
  });

  it('fails a multipart complete with a wrong ETag or a small non-last part (500)', async () => {
    const nar = narKeyFor('mp-bad');
    const created = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', {
        closure: 'x.narinfo',
        objects: [{ key: nar, type: 'nar' }],
      }),
    );
    const mp = created.pending_objects[nar]!.multipart_info!;
    expect(mp.part_urls).toHaveLength(10); // unknown size
    const e1 = (await put(mp.part_urls[0]!, 'too small')).headers.get('etag')!;
    const e2 = (await put(mp.part_urls[1]!, 'last')).headers.get('etag')!;
    const complete = (parts: Json[]): Promise<Response> =>
      api(f, 'POST', '/api/multipart/complete', { object_key: nar, upload_id: mp.upload_id, parts });
    const wrong = await complete([{ part_number: 1, etag: '"0000"' }]);
    expect(wrong.status).toBe(500);
    expect(await wrong.text()).toMatch(
      /^failed to complete multipart upload: One or more of the specified parts could not be found/,
    );
    const tooSmall = await complete([
      { part_number: 1, etag: e1 },
      { part_number: 2, etag: e2 },
    ]);
    expect(tooSmall.status).toBe(500);
    expect(await tooSmall.text()).toContain('smaller than the minimum allowed object size');
    // still registered: a good single-part complete works
    expect((await complete([{ part_number: 2, etag: e2 }])).status).toBe(204);
  });

  it('counts a failed multipart complete as done when the object exists [post-1.7.0]', async () => {
    const nar = narKeyFor('exists-anyway');
    const created = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', {
        closure: 'x.narinfo',
        objects: [{ key: nar, type: 'nar' }],
      }),
    );
    const mp = created.pending_objects[nar]!.multipart_info!;
    await f.putObject(nar, 'finished by someone else');
    const body = { object_key: nar, upload_id: mp.upload_id, parts: [{ part_number: 1, etag: 'nonsense' }] };
    expect((await api(f, 'POST', '/api/multipart/complete', body)).status).toBe(204);
    await expectText(
      await api(f, 'POST', '/api/multipart/complete', body),
      404,
      'multipart upload not found',
    );
  });

  it('re-offers committed objects missing from storage only with verify_s3', async () => {
    const p = syntheticPath();
    await push(f, [p]);
    await f.store.delete(p.narKey);
    const plain = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: p.narinfoKey, objects: p.objects }),
    );
    expect(plain.pending_objects).toEqual({});
    const verified = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', {
        closure: p.narinfoKey,
        objects: p.objects,
        verify_s3: true,
      }),
    );
    expect(Object.keys(verified.pending_objects)).toEqual([p.narKey]);
  });

  it('aborts redundant multipart uploads of the same key [post-1.7.0]', async () => {
    const nar = narKeyFor('shared-nar');
    const objects = [{ key: nar, type: 'nar', nar_size: 20 * MiB }];
    const a = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: 'a.narinfo', objects }),
    );
    const b = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: 'b.narinfo', objects }),
    );
    const ma = a.pending_objects[nar]!.multipart_info!;
    const mb = b.pending_objects[nar]!.multipart_info!;
    expect(ma.upload_id).not.toBe(mb.upload_id);
    const etag = (await put(ma.part_urls[0]!, 'whole nar')).headers.get('etag')!;
    const done = await api(f, 'POST', '/api/multipart/complete', {
      object_key: nar,
      upload_id: ma.upload_id,
      parts: [{ part_number: 1, etag }],
    });
    expect(done.status).toBe(204);
    expect((await put(mb.part_urls[0]!, 'whole nar')).status).toBe(404);
    await expectText(
      await api(f, 'POST', '/api/multipart/request-parts', {
        object_key: nar,
        upload_id: mb.upload_id,
        start_part_number: 1,
        num_parts: 1,
      }),
      404,
      'multipart upload not found',
    );
  });
});

describe('signatures (spec §1.3, §4.3)', () => {
  it('signs the spec test vector exactly and announces the spec public key', async () => {
    const f = await fake({ signingKeys: [`  ${TEST_SECRET}  `] });
    expect(f.publicKeys).toEqual([TEST_PUBLIC]);
    expect(await json(await fetch(`${f.url}/api/cache-config`))).toMatchObject({
      public_keys: [TEST_PUBLIC],
    });
    const created = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', {
        closure: `${HELLO}.narinfo`,
        objects: [{ key: `${HELLO}.narinfo`, type: 'narinfo', refs: [] }],
      }),
    );
    const res = await json<{ signatures: Record<string, string[]> }>(
      await api(f, 'POST', `/api/pending_closures/${created.id}/sign`, {
        narinfos: {
          [`${HELLO}.narinfo`]: {
            store_path: HELLO_PATH,
            url: HELLO_NAR,
            compression: 'zstd',
            nar_hash: HELLO_NAR_HASH,
            nar_size: 226560,
            references: [GLIBC_PATH],
            deriver: '/nix/store/bbbb-hello-2.12.1.drv',
            ca: null,
          },
        },
      }),
    );
    expect(res.signatures).toEqual({ [`${HELLO}.narinfo`]: [VECTOR_SIG] });
  });

  it('gives one signature per key, in key order, and [] without keys', async () => {
    const second = 'other-1:' + Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '');
    const f = await fake({ signingKeys: [TEST_SECRET, second] });
    const nokeys = await fake({ signingKeys: [] });
    for (const [srv, expected] of [
      [f, [VECTOR_SIG, expect.stringMatching(/^other-1:/)]],
      [nokeys, []],
    ] as const) {
      const created = await json<Created>(
        await api(srv, 'POST', '/api/pending_closures', {
          closure: `${HELLO}.narinfo`,
          objects: [{ key: `${HELLO}.narinfo`, type: 'narinfo' }],
        }),
      );
      const res = await json<{ signatures: Record<string, unknown[]> }>(
        await api(srv, 'POST', `/api/pending_closures/${created.id}/sign`, {
          narinfos: {
            [`${HELLO}.narinfo`]: {
              store_path: HELLO_PATH,
              nar_hash: HELLO_NAR_HASH,
              nar_size: 226560,
              references: [GLIBC_PATH],
            },
          },
        }),
      );
      expect(res.signatures[`${HELLO}.narinfo`]).toEqual(expected);
    }
  });
});

describe('the S3 side of presigned URLs (spec §10.E)', () => {
  it('refuses expired URLs with 403, missing Content-Length with 411, and tampering with 403', async () => {
    const f = await fake();
    const p = syntheticPath();
    const created = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: p.narinfoKey, objects: p.objects }),
    );
    const url = created.pending_objects[p.narKey]!.presigned_url!;
    expect(url).toMatch(/X-Amz-Expires=18000/);

    const chunked = await fetch(url, {
      method: 'PUT',
      body: Readable.toWeb(Readable.from([Buffer.from('a'), Buffer.from('b')])),
      duplex: 'half',
    });
    expect(chunked.status).toBe(411);
    expect(await chunked.text()).toContain('<Code>MissingContentLength</Code>');

    const tampered = await put(
      url.replace(/X-Amz-Signature=[0-9a-f]+/, `X-Amz-Signature=${'0'.repeat(64)}`),
      'x',
    );
    expect(tampered.status).toBe(403);
    expect(await tampered.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    const otherKey = await put(url.replace(p.narKey, narKeyFor('other')), 'x');
    expect(otherKey.status).toBe(403);
    const asGet = await fetch(url);
    expect(asGet.status).toBe(403);

    f.advance(5 * HOUR + 1000);
    const expired = await put(url, 'late');
    expect(expired.status).toBe(403);
    expect(expired.headers.get('content-type')).toBe('application/xml');
    expect(await expired.text()).toMatch(/<Code>AccessDenied<\/Code><Message>Request has expired<\/Message>/);
    expect(f.objectKeys()).not.toContain(p.narKey);
  });
});

describe('fault injection', () => {
  afterEach(() => {
    for (const f of fakes) f.faults.clear();
  });

  it('fails a seeded share of API calls, the same way every run', async () => {
    const run = async (): Promise<number[]> => {
      const f = await fake({ faultSeed: 42 });
      f.faults.add({
        target: 'api',
        path: /^\/health$/,
        probability: 0.2,
        action: { status: 503 },
        name: 'flaky',
      });
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++) statuses.push((await fetch(`${f.url}/health`)).status);
      expect(f.faults.count({ name: 'flaky' })).toBe(statuses.filter((s) => s === 503).length);
      return statuses;
    };
    const a = await run();
    const b = await run();
    expect(a).toEqual(b);
    const failures = a.filter((s) => s === 503).length;
    expect(failures).toBeGreaterThan(3);
    expect(failures).toBeLessThan(25);
  });

  it('answers 429 with Retry-After, limits rules by times, and logs the fault', async () => {
    const f = await fake();
    const rule = f.faults.add({
      target: 'api',
      method: 'POST',
      path: /pending_closures$/,
      times: 2,
      action: { status: 429 },
    });
    const p = syntheticPath();
    for (let i = 0; i < 2; i++) {
      const res = await api(f, 'POST', '/api/pending_closures', {
        closure: p.narinfoKey,
        objects: p.objects,
      });
      expect(res.headers.get('retry-after')).toBe('2');
      await expectText(res, 429, 'S3 rate limit exceeded, please retry');
    }
    expect(
      (await api(f, 'POST', '/api/pending_closures', { closure: p.narinfoKey, objects: p.objects })).status,
    ).toBe(200);
    expect(rule.hits()).toBe(2);
    expect(f.requests.filter((r) => r.fault === 'status:429')).toHaveLength(2);
  });

  it('drops uploads mid-body without leaving a partial object', async () => {
    const f = await fake();
    const p = syntheticPath([], 'x'.repeat(256 * 1024));
    const created = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: p.narinfoKey, objects: p.objects }),
    );
    f.faults.add({ target: 's3', method: 'PUT', times: 1, action: { kind: 'reset-mid-body' } });
    const url = created.pending_objects[p.narKey]!.presigned_url!;
    await expect(put(url, Buffer.alloc(2 * MiB, 3))).rejects.toThrow();
    expect(f.objectKeys()).not.toContain(p.narKey);
    expect(await readdir(join(f.dataDir, 'tmp'))).toEqual([]);
    expect((await put(url, Buffer.alloc(2 * MiB, 3))).status).toBe(200);
    expect(f.store.head(p.narKey)!.size).toBe(2 * MiB);
    expect(f.faults.count({ target: 's3', action: 'reset-mid-body' })).toBe(1);
  });

  it('cuts public downloads mid-body, resets, delays and hangs', async () => {
    const f = await fake();
    await f.putObject('nar/cut.nar', Buffer.alloc(MiB, 9));
    f.faults.add({ target: 'public', times: 1, action: { kind: 'reset-mid-body' } });
    await expect(fetch(`${f.publicUrl}/nar/cut.nar`).then((r) => r.arrayBuffer())).rejects.toThrow();
    expect((await (await fetch(`${f.publicUrl}/nar/cut.nar`)).arrayBuffer()).byteLength).toBe(MiB);

    f.faults.add({ target: 'api', times: 1, action: { kind: 'reset' } });
    await expect(fetch(`${f.url}/health`)).rejects.toThrow();
    f.faults.add({ target: 'api', times: 1, action: { kind: 'delay', ms: 150 } });
    expect((await fetch(`${f.url}/health`)).status).toBe(200);
    expect(f.faults.count({ target: 'api', action: 'delay' })).toBe(1);
    f.faults.add({ target: 'api', times: 1, action: { kind: 'hang' } });
    await expect(fetch(`${f.url}/health`, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
  });

  it('takes the whole server down and up again, keeping state', async () => {
    const f = await fake();
    await f.putObject('nar/kept.nar', 'kept');
    await f.down();
    await expect(fetch(`${f.url}/health`)).rejects.toThrow();
    await expect(fetch(`${f.publicUrl}/nar/kept.nar`)).rejects.toThrow();
    await f.faults.up();
    expect((await fetch(`${f.url}/health`)).status).toBe(200);
    expect(await (await fetch(`${f.publicUrl}/nar/kept.nar`)).text()).toBe('kept');
  });
});

describe('GC and pins with a moved clock (spec §3.9–§3.11, §6, §10.F–G)', () => {
  it('drops old closures, keeps pinned and fresh ones, sweeps after the grace period', async () => {
    const f = await fake();
    await expectText(await api(f, 'GET', '/api/gc/status'), 404, 'no garbage collection has run yet');
    const shared = syntheticPath();
    const pinned = syntheticPath([shared.h]);
    const old = syntheticPath([shared.h]);
    await push(f, [shared, pinned]);
    await push(f, [shared, old]);
    const log = `log/${hash32()}-x.drv`;
    const withLog = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', {
        closure: old.narinfoKey,
        objects: [{ key: log, type: 'build_log' }],
      }),
    );
    await put(withLog.pending_objects[log]!.presigned_url!, 'log');
    expect((await api(f, 'POST', `/api/pending_closures/${withLog.id}/complete`)).status).toBe(204);

    // pins
    await expectText(
      await api(f, 'POST', '/api/pins/bad name', { store_path: pinned.storePath }),
      400,
      'invalid pin name: must contain only alphanumeric characters, dashes, underscores, and dots',
    );
    await expectText(
      await api(f, 'POST', `/api/pins/${'a'.repeat(257)}`, { store_path: pinned.storePath }),
      400,
      'pin name too long: maximum 256 characters',
    );
    await expectText(await api(f, 'POST', '/api/pins/prod', {}), 400, 'missing store_path');
    await expectText(
      await api(f, 'POST', '/api/pins/prod', { store_path: '/nix/store/nodash' }),
      400,
      'invalid store path: invalid store path format: /nix/store/nodash',
    );
    await expectText(
      await api(f, 'POST', '/api/pins/prod', { store_path: `/nix/store/${shared.h}-dep` }),
      404,
      'closure not found: store path must be pushed before pinning',
    );
    expect((await api(f, 'POST', '/api/pins/prod', { store_path: pinned.storePath })).status).toBe(204);
    expect((await api(f, 'POST', '/api/pins/a.b_c-1', { store_path: old.storePath })).status).toBe(204);
    expect(await (await fetch(`${f.publicUrl}/pins/prod`)).text()).toBe(pinned.storePath);
    const pins = await json<Array<Json>>(await api(f, 'GET', '/api/pins'));
    expect(pins.map((p) => p['name'])).toEqual(['a.b_c-1', 'prod']);
    expect(pins[0]!['created_at']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect((await api(f, 'DELETE', '/api/pins/a.b_c-1')).status).toBe(204);
    await expectText(await api(f, 'DELETE', '/api/pins/a.b_c-1'), 404, 'pin not found');
    expect(f.objectKeys()).not.toContain('pins/a.b_c-1');

    // validation
    await expectText(await api(f, 'DELETE', '/api/closures'), 400, 'missing age');
    await expectText(
      await api(f, 'DELETE', '/api/closures?older-than=30d'),
      400,
      'failed to parse age: time: unknown unit "d" in duration "30d"',
    );
    await expectText(
      await api(f, 'DELETE', '/api/closures?older-than=-1h'),
      400,
      'older-than must not be negative',
    );
    await expectText(
      await api(f, 'DELETE', '/api/closures?older-than=1h&failed-uploads-older-than=x'),
      400,
      'failed to parse failed-uploads-older-than: time: invalid duration "x"',
    );

    // 31 days later: `old` is dropped, `pinned` survives; its objects are only marked (6 h grace)
    f.advance(31 * DAY);
    const started = await json<Json>(await api(f, 'DELETE', '/api/closures?older-than=720h'), 202);
    expect(started).toMatchObject({
      state: 'running',
      params: { older_than: '720h', failed_uploads_older_than: '6h', force: false },
    });
    expect(started).not.toHaveProperty('phase');
    const task1 = (await f.waitForGc())!;
    expect(task1.state).toBe('succeeded');
    // old's narinfo, NAR and listing, plus the build log (nothing references logs)
    expect(task1.stats).toMatchObject({
      old_closures_deleted: 1,
      objects_marked_for_deletion: 4,
      objects_deleted_after_grace_period: 0,
    });
    expect(f.state.closures.has(old.narinfoKey)).toBe(false);
    expect(f.state.closures.has(pinned.narinfoKey)).toBe(true);
    expect(f.state.isTombstoned(old.narKey)).toBe(true);
    expect(f.state.isLive(shared.narKey)).toBe(true); // reachable from the pinned closure
    const status = await json<Json>(await api(f, 'GET', '/api/gc/status'));
    expect(status).toMatchObject({ state: 'succeeded', finished_at: expect.any(String) });
    expect(status).not.toHaveProperty('phase');

    // after the grace period the marked objects are deleted from the store
    f.advance(7 * HOUR);
    expect((await api(f, 'DELETE', '/api/closures?older-than=720h')).status).toBe(202);
    const task2 = (await f.waitForGc())!;
    expect(task2.stats.objects_deleted_after_grace_period).toBe(4);
    for (const key of [old.narinfoKey, old.narKey, old.lsKey, log]) expect(f.objectKeys()).not.toContain(key);
    for (const key of [pinned.narinfoKey, shared.narKey]) expect(f.objectKeys()).toContain(key);
  });

  it('cleans up failed uploads, protects pending objects, and revives re-pushed objects', async () => {
    const f = await fake();
    const abandoned = syntheticPath();
    const created = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', {
        closure: abandoned.narinfoKey,
        objects: abandoned.objects,
      }),
    );
    await put(created.pending_objects[abandoned.narKey]!.presigned_url!, abandoned.narContent);
    const big = narKeyFor('abandoned-big');
    const bigSession = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', {
        closure: 'z.narinfo',
        objects: [{ key: big, type: 'nar' }],
      }),
    );
    const uploadId = bigSession.pending_objects[big]!.multipart_info!.upload_id;

    // within the failed-uploads age, nothing happens to pending sessions
    f.advance(HOUR);
    expect((await api(f, 'DELETE', '/api/closures?older-than=720h')).status).toBe(202);
    expect((await f.waitForGc())!.stats.failed_uploads_deleted).toBe(0);
    expect(f.objectKeys()).toContain(abandoned.narKey);

    f.advance(6 * HOUR);
    expect((await api(f, 'DELETE', '/api/closures?older-than=720h')).status).toBe(202);
    const task = (await f.waitForGc())!;
    expect(task.stats.failed_uploads_deleted).toBe(2);
    expect(f.objectKeys()).not.toContain(abandoned.narKey);
    expect(f.state.pending.size).toBe(0);
    expect(f.store.upload(uploadId)).toBeUndefined();
    await expectText(
      await api(f, 'POST', `/api/pending_closures/${created.id}/complete`),
      404,
      'pending closure not found',
    );

    // a closure pushed again after its objects were marked gets them back
    const p = syntheticPath();
    await push(f, [p]);
    f.advance(31 * DAY);
    expect((await api(f, 'DELETE', '/api/closures?older-than=720h')).status).toBe(202);
    await f.waitForGc();
    expect(f.state.isTombstoned(p.narKey)).toBe(true);
    const again = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: p.narinfoKey, objects: p.objects }),
    );
    expect(Object.keys(again.pending_objects)).toContain(p.narKey); // tombstoned objects need upload
    expect((await api(f, 'POST', `/api/pending_closures/${again.id}/complete`)).status).toBe(204);
    expect(f.state.isLive(p.narKey)).toBe(true);

    // DELETE /api/pending_closures: bulk cleanup, negative ages accepted
    await json(
      await api(f, 'POST', '/api/pending_closures', {
        closure: 'q.narinfo',
        objects: syntheticPath().objects,
      }),
    );
    await expectText(
      await api(f, 'DELETE', '/api/pending_closures?older-than=1x'),
      400,
      'invalid duration: time: unknown unit "x" in duration "1x"',
    );
    expect((await api(f, 'DELETE', '/api/pending_closures?older-than=-1s')).status).toBe(204);
    expect(f.state.pending.size).toBe(0);
  });

  it('reports a running GC: 202 for the same params, 409 for others, and failures', async () => {
    const f = await fake();
    const release = f.faults.holdGc();
    const first = await json<Json>(
      await api(f, 'DELETE', '/api/closures?older-than=720h&failed-uploads-older-than=6h'),
      202,
    );
    const same = await json<Json>(
      await api(f, 'DELETE', '/api/closures?older-than=720h&failed-uploads-older-than=6h'),
      202,
    );
    expect(same['started_at']).toBe(first['started_at']);
    const conflict = await json<Json>(await api(f, 'DELETE', '/api/closures?older-than=720h0m0s'), 409);
    expect(conflict).toMatchObject({
      error: 'a different garbage collection is already running',
      active_task: { state: 'running', params: { older_than: '720h' } },
    });
    // only the exact string `true` turns force on, so these are the running task's params
    const notForced = await json<Json>(
      await api(f, 'DELETE', '/api/closures?older-than=720h&force=TRUE'),
      202,
    );
    expect(notForced['started_at']).toBe(first['started_at']);
    expect((await api(f, 'DELETE', '/api/closures?older-than=720h&force=true')).status).toBe(409);
    release();
    expect((await f.waitForGc())!.state).toBe('succeeded');

    f.faults.failNextGc({
      phase: 'cleanup_orphan_objects',
      error: 'another garbage collection is already running on this database',
    });
    expect((await api(f, 'DELETE', '/api/closures?older-than=1h&pending-older-than=2h')).status).toBe(202);
    await f.waitForGc();
    expect(await json(await api(f, 'GET', '/api/gc/status'))).toMatchObject({
      state: 'failed',
      phase: 'cleanup_orphan_objects',
      error: 'another garbage collection is already running on this database',
      params: { older_than: '1h', failed_uploads_older_than: '2h' },
    });
  });
});

describe('versions and routing (spec §0.3, §9)', () => {
  it('routes like Go ServeMux: 405 with Allow, 404, HEAD on GET routes, clean-path redirects', async () => {
    const f = await fake({ cacheUrl: '' });
    const r405 = await api(f, 'PUT', '/api/pending_closures');
    expect(r405.headers.get('allow')).toBe('DELETE, GET, HEAD, POST');
    await expectText(r405, 405, 'Method Not Allowed');
    await expectText(await api(f, 'GET', '/api/pending_closures'), 404, '404 page not found');
    await expectText(await api(f, 'POST', '/nowhere'), 405, 'Method Not Allowed');
    await expectText(await api(f, 'GET', '/nix-cache-info'), 404, '404 page not found');
    const root = await fetch(`${f.url}/`);
    expect([root.status, await root.text()]).toEqual([200, 'niks3 binary cache server\n']);
    expect((await fetch(`${f.url}/health`, { method: 'HEAD' })).status).toBe(200);
    const unclean = await api(f, 'GET', '/api//pins');
    expect([unclean.status, unclean.headers.get('location')]).toEqual([301, '/api/pins']);
    const gcStatus = await api(f, 'POST', '/api/gc/status');
    expect(gcStatus.headers.get('allow')).toBe('GET, HEAD');
    // a redirect to the cache URL when one is set
    const g = await fake();
    const redirect = await fetch(`${g.url}/`, { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([301, g.publicUrl]);
  });

  it('v1.7.0 lacks HEAD /api/objects, cache-stats and metrics; HEAD has them', async () => {
    const old = await fake({ version: '1.7.0' });
    expect((await api(old, 'HEAD', `/api/objects/${HELLO_NAR}`)).status).toBe(404);
    await expectText(await api(old, 'GET', '/api/cache-stats'), 404, '404 page not found');
    expect((await fetch(`${old.url}/metrics`)).status).toBe(404);
    const head = await fake();
    const metrics = await fetch(`${head.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('niks3_cache_objects 0');
    expect((await api(head, 'HEAD', '/api/objects/')).status).toBe(400);
  });

  it('v1.7.0 reports a failed complete even when the object exists, and keeps other uploads', async () => {
    const f = await fake({ version: '1.7.0' });
    const nar = narKeyFor('v17');
    const objects = [{ key: nar, type: 'nar', nar_size: 20 * MiB }];
    const a = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: 'a.narinfo', objects }),
    );
    const b = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: 'b.narinfo', objects }),
    );
    const ma = a.pending_objects[nar]!.multipart_info!;
    const mb = b.pending_objects[nar]!.multipart_info!;
    const etag = (await put(ma.part_urls[0]!, 'nar')).headers.get('etag')!;
    const ok = { object_key: nar, upload_id: ma.upload_id, parts: [{ part_number: 1, etag }] };
    expect((await api(f, 'POST', '/api/multipart/complete', ok)).status).toBe(204);
    // b's upload is still open on 1.7.0; completing it with a bad ETag fails although the object exists
    expect((await put(mb.part_urls[0]!, 'nar')).status).toBe(200);
    const bad = await api(f, 'POST', '/api/multipart/complete', {
      object_key: nar,
      upload_id: mb.upload_id,
      parts: [{ part_number: 1, etag: 'x' }],
    });
    expect(bad.status).toBe(500);
  });
});

describe('read proxy (spec §1.7)', () => {
  it('serves allowlisted keys, decompresses narinfos, drops Content-Encoding, supports ranges', async () => {
    const f = await fake({ readProxy: true });
    const narinfo = 'StorePath: /nix/store/x-y\n';
    await f.putObject(`${HELLO}.narinfo`, zstdCompressSync(Buffer.from(narinfo)), {
      contentType: 'text/x-nix-narinfo',
      contentEncoding: 'zstd',
    });
    await f.putObject(`${HELLO}.ls`, zstdCompressSync(Buffer.from('{}')), {
      contentType: 'application/octet-stream',
      contentEncoding: 'zstd',
    });
    await f.putObject(HELLO_NAR, Buffer.from('0123456789'), { contentType: 'application/octet-stream' });
    await f.putObject('pins/prod', HELLO_PATH, { contentType: 'text/plain' });

    const ni = await fetch(`${f.url}/${HELLO}.narinfo`);
    expect([ni.status, ni.headers.get('content-type'), await ni.text()]).toEqual([
      200,
      'text/x-nix-narinfo',
      narinfo,
    ]);
    const ls = await fetch(`${f.url}/${HELLO}.ls`);
    expect(ls.headers.get('content-encoding')).toBeNull();
    expect(zstdDecompressSync(Buffer.from(await ls.arrayBuffer())).toString()).toBe('{}');
    const range = await fetch(`${f.url}/${HELLO_NAR}`, { headers: { range: 'bytes=-3' } });
    expect([range.status, range.headers.get('content-range'), await range.text()]).toEqual([
      206,
      'bytes 7-9/10',
      '789',
    ]);
    const beyond = await fetch(`${f.url}/${HELLO_NAR}`, { headers: { range: 'bytes=20-' } });
    expect([beyond.status, beyond.headers.get('content-range')]).toEqual([416, 'bytes */10']);
    const etag = (await fetch(`${f.url}/${HELLO_NAR}`)).headers.get('etag')!;
    expect((await fetch(`${f.url}/${HELLO_NAR}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(`${f.url}/pins/prod`)).status).toBe(404);
    expect((await fetch(`${f.url}/nix-cache-info`)).status).toBe(200);
    expect((await api(f, 'PUT', `/${HELLO_NAR}`)).status).toBe(405);
    expect((await api(f, 'PUT', '/api/pending_closures')).status).toBe(405);
    const root = await fetch(`${f.url}/`, { redirect: 'manual' });
    expect([root.status, root.headers.get('location')]).toEqual([301, '/index.html']);
  });
});

describe('a real Nix substitutes from the fake', () => {
  it('nix copy --from the public URL accepts narinfos signed by the fake and refuses a wrong key', async () => {
    const paths = await buildDerivations({
      leaf: 'echo leaf > $out',
      top: '/bin/mkdir $out; echo ${leaf} > $out/ref',
    });
    const f = await fake();
    const infos = [paths['leaf']!, paths['top']!].map((storePath) => {
      const nar = nixStoreDump(storePath);
      const narHash = `sha256:${nix32(createHash('sha256').update(nar).digest())}`;
      const refs = execFileSync('nix-store', ['--query', '--references', storePath], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
      const h = storePath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      return { storePath, nar, narHash, refs, h, narKey: `nar/${narHash.slice(7)}.nar.zst` };
    });
    const top = infos[1]!;
    expect(top.refs).toContain(infos[0]!.storePath);
    const objects = infos.flatMap((i) => [
      {
        key: `${i.h}.narinfo`,
        type: 'narinfo',
        refs: [...i.refs.map((r) => `${r.slice(11, 43)}.narinfo`), i.narKey, `${i.h}.ls`],
      },
      { key: i.narKey, type: 'nar', refs: [], nar_size: i.nar.length },
      { key: `${i.h}.ls`, type: 'listing', refs: [] },
    ]);
    const s = await json<Created>(
      await api(f, 'POST', '/api/pending_closures', { closure: `${top.h}.narinfo`, objects }),
    );
    for (const i of infos) {
      const po = s.pending_objects;
      expect(
        (
          await put(po[i.narKey]!.presigned_url!, zstdCompressSync(i.nar), {
            'content-type': 'application/octet-stream',
          })
        ).status,
      ).toBe(200);
      const listing = zstdCompressSync(Buffer.from('{"version":1,"root":{"type":"directory","entries":{}}}'));
      expect(
        (
          await put(po[`${i.h}.ls`]!.presigned_url!, listing, {
            'content-type': 'application/octet-stream',
            'content-encoding': 'zstd',
          })
        ).status,
      ).toBe(200);
    }
    const signed = await json<{ signatures: Record<string, string[]> }>(
      await api(f, 'POST', `/api/pending_closures/${s.id}/sign`, {
        narinfos: Object.fromEntries(
          infos.map((i) => [
            `${i.h}.narinfo`,
            { store_path: i.storePath, nar_hash: i.narHash, nar_size: i.nar.length, references: i.refs },
          ]),
        ),
      }),
    );
    for (const i of infos) {
      const refs = [...i.refs]
        .sort()
        .map((r) => ` ${r.slice('/nix/store/'.length)}`)
        .join('');
      const text =
        `StorePath: ${i.storePath}\nURL: ${i.narKey}\nCompression: zstd\nNarHash: ${i.narHash}\nNarSize: ${i.nar.length}\n` +
        `References:${refs === '' ? ' ' : refs}\n` +
        [...signed.signatures[`${i.h}.narinfo`]!]
          .sort()
          .map((sig) => `Sig: ${sig}\n`)
          .join('');
      const res = await put(
        s.pending_objects[`${i.h}.narinfo`]!.presigned_url!,
        zstdCompressSync(Buffer.from(text)),
        {
          'content-type': 'text/x-nix-narinfo',
          'content-encoding': 'zstd',
        },
      );
      expect(res.status).toBe(200);
    }
    expect((await api(f, 'POST', `/api/pending_closures/${s.id}/complete`)).status).toBe(204);

    const ok = await copyFromCache(f.publicUrl, top.storePath, { trustedPublicKeys: f.publicKeys });
    expect({ code: ok.code, stderr: ok.stderr }).toMatchObject({ code: 0 });
    const refused = await copyFromCache(f.publicUrl, top.storePath, { trustedPublicKeys: [TEST_PUBLIC] });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/lacks a valid signature/);
    expect(
      f.requests.some((r) => r.target === 'public' && r.path === `/${top.h}.narinfo` && r.status === 200),
    ).toBe(true);
  });
});
