/**
 * Upload sessions that are too large for one request (in process, real Nix, the niks3 stand-in):
 * niks3 answers a create only within its 60 s write timeout, and a create that ran longer gets no
 * answer while its session stays. So a session above the split size goes up in shares under the
 * root's closure key, and a create that got no answer is split in two instead of being sent again
 * as it is (which was as slow each time and left one orphan session per attempt). Requests and
 * sessions are counted; no duration is asserted.
 */
import { MemoryLogger } from '../../src/core/logger.js';
import { StaticTokenSource } from '../../src/core/github/token-source.js';
import { Niks3Client } from '../../src/core/niks3/niks3-client.js';
import { PresignedUploader } from '../../src/core/niks3/presigned-upload.js';
import { pushClosure, type PushRequest } from '../../src/core/push/push-closure.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildDerivations, copyFromCache, removeStoreRoot } from '../helpers/nix-fixtures.js';
import { storeHash } from './push-test-support.js';

const fakes: FakeNiks3[] = [];
const storeRoots: string[] = [];
afterAll(async () => {
  for (const fake of fakes) await fake.close();
  for (const root of storeRoots) removeStoreRoot(root);
});

const request = (roots: string[]): PushRequest => ({
  roots,
  concurrency: 4,
  compressionLevel: 3,
  filter: { include: [], exclude: [], maxPathSize: 0 },
  upstream: { enabled: false, caches: [], keyNames: [] },
  verify: true,
  connectTimeoutMs: 5_000,
});

async function push(
  fake: FakeNiks3,
  roots: string[],
  options: { createTimeoutMs?: number; maxSessionPaths?: number } = {},
): ReturnType<typeof pushClosure> {
  const logger = new MemoryLogger();
  const client = new Niks3Client({
    serverUrl: fake.url,
    tokenSource: new StaticTokenSource(fake.apiToken),
    logger,
    ...(options.createTimeoutMs ? { createTimeoutMs: options.createTimeoutMs } : {}),
  });
  const uploader = new PresignedUploader({ logger });
  try {
    return await pushClosure(request(roots), {
      client,
      uploader,
      logger,
      // No build logs: each path is exactly its narinfo, NAR and listing (3 objects).
      findBuildLog: () => undefined,
      sleep: () => Promise.resolve(),
      ...(options.maxSessionPaths ? { maxSessionPaths: options.maxSessionPaths } : {}),
    });
  } finally {
    uploader.close();
  }
}

const creates = (fake: FakeNiks3): number =>
  fake.requests.filter((r) => r.route === 'POST /api/pending_closures').length;

async function substitutes(fake: FakeNiks3, path: string): Promise<boolean> {
  const copy = await copyFromCache(fake.publicUrl, path, { trustedPublicKeys: fake.publicKeys });
  storeRoots.push(copy.storeRoot);
  return copy.code === 0;
}

describe('upload sessions too large for one request', () => {
  it('a session above the split size goes up in shares under the one GC root; all completed', async () => {
    const fake = await startFakeNiks3();
    fakes.push(fake);
    const built = await buildDerivations({
      a: 'printf a > $out',
      b: 'printf "b ${a}" > $out',
      c: 'printf "c ${b}" > $out',
      d: 'printf d > $out',
      top: 'printf "top ${c} ${d}" > $out',
    });
    const top = built.top as string;
    const summary = await push(fake, [top], { maxSessionPaths: 2 });
    expect(summary.problems).toEqual([]);
    expect(summary.uploaded).toHaveLength(5);
    expect(creates(fake)).toBe(3);
    expect(fake.state.pending.size).toBe(0);
    // One GC root, the root's narinfo; every path's narinfo is registered below it.
    expect([...fake.state.closures.keys()]).toEqual([`${storeHash(top)}.narinfo`]);
    for (const path of Object.values(built))
      expect(fake.state.isLive(`${storeHash(path)}.narinfo`)).toBe(true);
    expect(fake.state.reachableFrom([`${storeHash(top)}.narinfo`]).size).toBeGreaterThanOrEqual(15);
    expect(await substitutes(fake, top)).toBe(true);
  }, 60_000);

  it('a create the server cannot answer within its write timeout is split in two, not sent again', async () => {
    // 600 ms of server work per object, a 2.5 s write timeout: two paths (6 objects) cannot be
    // answered, one path (3 objects) can. The client waits longer than the server's write timeout.
    const fake = await startFakeNiks3({ createWork: { perObjectMs: 600, writeTimeoutMs: 2500 } });
    fakes.push(fake);
    const built = await buildDerivations({ dep: 'printf dep > $out', top: 'printf "top ${dep}" > $out' });
    const top = built.top as string;
    const summary = await push(fake, [top], { createTimeoutMs: 4000 });
    expect(summary.problems).toEqual([]);
    expect(summary.uploaded).toHaveLength(2);
    // The whole session once (no answer), then its two halves: no repeat of the slow request.
    expect(creates(fake)).toBe(3);
    // The one unanswered create left its session (for the server's GC); the halves completed.
    expect(fake.state.pending.size).toBe(1);
    expect([...fake.state.closures.keys()]).toEqual([`${storeHash(top)}.narinfo`]);
    expect(await substitutes(fake, top)).toBe(true);
  }, 60_000);
});
