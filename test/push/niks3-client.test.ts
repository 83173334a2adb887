/**
 * The niks3 client against the fake server: every route the suite uses (sessions, sign, complete,
 * multipart, object probes, GC, pins, cache-config, cache-stats, health), the 401 → fresh token →
 * one retry rule, and the cold-start aware first contact.
 */
import { OidcTokenSource, StaticTokenSource, type TokenSource } from '../../src/core/github/token-source.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { NIKS3_RETRY, Niks3Client } from '../../src/core/niks3/niks3-client.js';
import { PresignedUploader } from '../../src/core/niks3/presigned-upload.js';
import { RemoteError } from '../../src/core/errors.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { startOidcIssuer } from '../helpers/oidc-issuer.js';

const HASH = 'a'.repeat(31) + 'b';
const NAR = `nar/${'c'.repeat(52)}.nar.zst`;
const fastRetry = { ...NIKS3_RETRY, baseDelayMs: 10, maxDelayMs: 50 };

let fake: FakeNiks3;
let logger: MemoryLogger;

function client(tokenSource?: TokenSource, server = fake): Niks3Client {
  return new Niks3Client({
    serverUrl: server.url,
    logger,
    retry: fastRetry,
    ...(tokenSource ? { tokenSource } : {}),
  });
}

beforeAll(async () => {
  fake = await startFakeNiks3();
});
beforeEach(() => {
  logger = new MemoryLogger();
  fake.faults.clear();
});
afterAll(async () => {
  await fake.close();
});

describe('Niks3Client', () => {
  it('reads the public routes: cache-config, cache-stats, health', async () => {
    const c = client();
    expect(await c.cacheConfig()).toEqual({ substituterUrl: fake.publicUrl, publicKeys: fake.publicKeys });
    expect(await c.cacheStats()).toEqual({
      objects: expect.any(Number) as number,
      logicalBytes: expect.any(Number) as number,
    });
    expect(await c.health()).toBe(true);
  });

  it('runs a session: create, upload, sign, narinfo, complete; then the closure, object probe and a second session that skips it', async () => {
    const c = client(new StaticTokenSource(fake.apiToken));
    const uploader = new PresignedUploader({ logger });
    const session = await c.createPendingClosure({
      closure: `${HASH}.narinfo`,
      objects: [
        { key: `${HASH}.narinfo`, type: 'narinfo', refs: [NAR] },
        { key: NAR, type: 'nar', refs: [], nar_size: 100 },
      ],
    });
    expect(session.id).toMatch(/^\d+$/);
    expect([...session.pending.keys()].sort()).toEqual([`${HASH}.narinfo`, NAR].sort());
    const nar = session.pending.get(NAR);
    expect(nar?.presignedUrl).toBeDefined();
    expect(
      await uploader.put(nar?.presignedUrl as string, Buffer.from('nar bytes'), {
        contentType: 'application/octet-stream',
        what: NAR,
      }),
    ).toEqual({
      kind: 'stored',
      etag: expect.any(String) as string,
      attempts: 1,
    });
    const sigs = await c.sign(session.id, {
      [`${HASH}.narinfo`]: {
        store_path: `/nix/store/${HASH}-x`,
        url: NAR,
        compression: 'zstd',
        nar_hash: `sha256:${'c'.repeat(52)}`,
        nar_size: 100,
        references: [],
      },
    });
    expect(sigs.get(`${HASH}.narinfo`)?.[0]).toMatch(/^niks3-test-1:/);
    await c.complete(session.id);
    expect(await c.objectExists(NAR)).toBe(true);
    expect(await c.objectExists(`nar/${'d'.repeat(52)}.nar.zst`)).toBe(false);
    expect((await c.getClosure(`${HASH}.narinfo`))?.objects.sort()).toEqual([`${HASH}.narinfo`, NAR].sort());
    expect(await c.getClosure(`${'e'.repeat(32)}.narinfo`)).toBeUndefined();
    const again = await c.createPendingClosure({
      closure: `${HASH}.narinfo`,
      objects: [{ key: NAR, type: 'nar', refs: [], nar_size: 100 }],
    });
    expect(again.pending.size).toBe(0);
    await c.complete(again.id);
    // A complete of an unknown session is an error that says what to do.
    await expect(c.complete('999999')).rejects.toThrow(/session is gone/);
  });

  it('multipart: more part URLs on demand, complete, and 404 for an unregistered upload', async () => {
    const c = client(new StaticTokenSource(fake.apiToken));
    const key = `nar/${'f'.repeat(52)}.nar.zst`;
    const session = await c.createPendingClosure({
      closure: `${'f'.repeat(32)}.narinfo`,
      objects: [{ key, type: 'nar', refs: [], nar_size: 30 * 1024 * 1024 }],
    });
    const multipart = session.pending.get(key)?.multipart;
    expect(multipart?.partUrls.length).toBe(3);
    const more = await c.requestParts(key, multipart?.uploadId as string, 4, 2);
    expect(more).toHaveLength(2);
    expect(more[0]).toMatch(/partNumber=4/);
    expect(await c.requestParts(key, 'no-such-upload', 1, 1)).toBe('not-found');
    expect(await c.completeMultipart(key, 'no-such-upload', [{ part_number: 1, etag: 'x' }])).toBe(
      'not-found',
    );
  });

  it('GC: start (202), same params again (202), other params (409 conflict), status', async () => {
    const c = client(new StaticTokenSource(fake.apiToken));
    const release = fake.faults.holdGc();
    const started = await c.startGc({ olderThan: '720h', failedUploadsOlderThan: '6h' });
    expect(started).toMatchObject({ kind: 'started', task: { state: 'running' } });
    expect(await c.startGc({ olderThan: '720h', failedUploadsOlderThan: '6h' })).toMatchObject({
      kind: 'started',
    });
    const conflict = await c.startGc({ olderThan: '1h', force: true });
    expect(conflict).toMatchObject({
      kind: 'conflict',
      error: expect.stringMatching(/different garbage collection/) as string,
      activeTask: { state: 'running' },
    });
    release();
    await fake.waitForGc();
    expect(await c.gcStatus()).toMatchObject({ state: 'succeeded' });
  });

  it('pins: put, list, delete, and a clear error for a path that is not a pushed root', async () => {
    const c = client(new StaticTokenSource(fake.apiToken));
    await c.putPin('release-1', `/nix/store/${HASH}-x`);
    expect(await c.listPins()).toEqual([
      expect.objectContaining({ name: 'release-1', storePath: `/nix/store/${HASH}-x` }),
    ]);
    expect(await c.deletePin('release-1')).toBe(true);
    expect(await c.deletePin('release-1')).toBe(false);
    await expect(c.putPin('x', `/nix/store/${'g'.repeat(32)}-never-pushed`)).rejects.toThrow(
      /404.*only a pushed root can be pinned/s,
    );
  });

  it('a 401 drops the cached OIDC token and tries once more with a fresh one', async () => {
    const issuer = await startOidcIssuer();
    const oidcFake = await startFakeNiks3({ oidc: [{ issuer: issuer.issuer, audience: 'aud' }] });
    try {
      let minted = 0;
      const source = new OidcTokenSource({
        audience: 'aud',
        logger,
        mint: (audience) => {
          minted += 1;
          // The first token is for the wrong audience: refused, then replaced.
          return Promise.resolve(issuer.mint(minted === 1 ? 'wrong' : audience));
        },
      });
      const c = client(source, oidcFake);
      expect(await c.listPins()).toEqual([]);
      expect(minted).toBe(2);
      // A token refused twice is an error naming the audience input.
      const bad = client(
        new OidcTokenSource({ audience: 'x', logger, mint: () => Promise.resolve(issuer.mint('nope')) }),
        oidcFake,
      );
      await expect(bad.listPins()).rejects.toThrow(/401.*'audience'/s);
    } finally {
      await oidcFake.close();
      await issuer.close();
    }
  });

  it('retries 503 and honours Retry-After on 429', async () => {
    const c = client(new StaticTokenSource(fake.apiToken));
    fake.faults.add({ target: 'api', path: /^\/api\/pins$/, times: 2, action: { status: 503 } });
    fake.faults.add({
      target: 'api',
      path: /^\/api\/pins$/,
      times: 1,
      action: { status: 429, headers: { 'retry-after': '1' } },
    });
    const started = Date.now();
    expect(await c.listPins()).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('waits for a cold server on first contact, and reports the wait', async () => {
    const cold = await startFakeNiks3();
    try {
      await cold.down('api');
      setTimeout(() => void cold.up('api'), 1500);
      const contact = await client(undefined, cold).connect(20_000);
      expect(contact.config?.publicKeys).toEqual(cold.publicKeys);
      expect(contact.waitedMs).toBeGreaterThanOrEqual(1000);
      expect(contact.attempts).toBeGreaterThan(1);
      expect(logger.lines.join('\n')).toMatch(/not answering yet/);
    } finally {
      await cold.close();
    }
  });

  it('gives up on a server that stays down after connect-timeout, naming the input', async () => {
    const dead = await startFakeNiks3();
    await dead.down();
    try {
      const error = await client(undefined, dead)
        .connect(1500)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as Error).message).toMatch(/no answer within 2 s.*raise connect-timeout/s);
    } finally {
      await dead.close();
    }
  });

  it('works with a v1.7.0 server: no cache-stats, HEAD objects answers 404', async () => {
    const old = await startFakeNiks3({ version: '1.7.0' });
    try {
      const c = client(new StaticTokenSource(old.apiToken), old);
      expect(await c.cacheStats()).toBeUndefined();
      expect(await c.objectExists('nix-cache-info')).toBe(false);
      expect((await c.connect(5000)).config?.publicKeys).toEqual(old.publicKeys);
    } finally {
      await old.close();
    }
  });
});
