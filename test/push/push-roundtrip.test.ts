/**
 * The push action end to end, through the dist bundle: a real Nix closure covering every NAR case
 * goes to the fake niks3, then a real Nix substitutes every path back from the public URL with
 * signature checking on, and the copies are byte-identical. A second push uploads nothing.
 */
import { zstdDecompressSync } from 'node:zlib';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import {
  buildFixtureClosure,
  copyFromCache,
  nixStoreDump,
  type FixtureClosure,
  removeStoreRoot,
} from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { pushFakeInputs, storeHash } from './push-test-support.js';

let fake: FakeNiks3;
let fx: FixtureClosure;
const storeRoots: string[] = [];

beforeAll(async () => {
  [fake, fx] = await Promise.all([startFakeNiks3(), buildFixtureClosure()]);
}, 180_000);

afterAll(async () => {
  await fake?.close();
  for (const root of storeRoots) removeStoreRoot(root);
});

describe('push action (bundle, real Nix)', () => {
  it('pushes every NAR case, and Nix substitutes each path from the public URL with signatures checked', async () => {
    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: fx.roots.join('\n') },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.outputs['store-paths'] ?? '[]')).toEqual(fx.roots);
    expect(Number(run.outputs['pushed'])).toBe(fx.all.length);
    expect(run.outputs['skipped-cached']).toBe('0');
    expect(run.outputs['public-key']).toBe(fake.publicKeys[0]);
    expect(run.outputs['cache-url']).toBe(fake.publicUrl);
    expect(Number(run.outputs['nar-bytes'])).toBeGreaterThan(11 * 1024 * 1024);
    expect(Number(run.outputs['uploaded-bytes'])).toBeGreaterThan(11 * 1024 * 1024);
    expect(run.summary).toContain('extra-trusted-public-keys');
    expect(run.summary).toContain(fake.publicUrl);
    expect(run.stdout).toMatch(/verified at/);

    // The 11 MiB NAR went up in several parts, and every part was 10 MiB but the last.
    const parts = fake.requests.filter(
      (r) => r.target === 's3' && r.method === 'PUT' && /partNumber=/.test(r.query) && r.status === 200,
    );
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(fake.requests.some((r) => r.route === 'POST /api/multipart/complete' && r.status === 204)).toBe(
      true,
    );

    // The narinfo is the client's text (§4.2), signed by the server, listing references.
    const diamondTop = fx.byName.diamondTop;
    const narinfo = zstdDecompressSync(
      (await fake.getObject(`${storeHash(diamondTop)}.narinfo`)) as Buffer,
    ).toString();
    expect(narinfo).toMatch(
      /^StorePath: \/nix\/store\/\S+-fx-diamondTop\nURL: nar\/[0-9a-z]{52}\.nar\.zst\nCompression: zstd\nNarHash: sha256:[0-9a-z]{52}\nNarSize: \d+\nReferences: \S+-fx-diamond(Left|Right) \S+-fx-diamond(Left|Right)\nDeriver: \S+-fx-diamondTop\.drv\n/,
    );
    expect(narinfo).toMatch(/\nSig: niks3-test-1:\S+\n/);
    // The listing came from the same pass as the NAR (narOffset present).
    const listing = JSON.parse(
      zstdDecompressSync((await fake.getObject(`${storeHash(fx.byName.nested)}.ls`)) as Buffer).toString(),
    ) as {
      root: { entries: Record<string, { narOffset?: number }> };
    };
    expect(listing.root.entries['with space']?.narOffset).toBeGreaterThan(0);

    // Every session was completed: each root is a GC root now.
    for (const root of fx.roots) expect(fake.state.closures.has(`${storeHash(root)}.narinfo`)).toBe(true);

    // Nix substitutes every path into a fresh store, checking signatures, and the copies are identical.
    const copy = await copyFromCache(fake.publicUrl, fx.roots[0] as string, {
      trustedPublicKeys: fake.publicKeys,
    });
    storeRoots.push(copy.storeRoot);
    expect(copy.stderr).not.toMatch(/error/);
    expect(copy.code).toBe(0);
    for (const root of fx.roots.slice(1)) {
      const again = await copyFromCache(fake.publicUrl, root, {
        trustedPublicKeys: fake.publicKeys,
        storeRoot: copy.storeRoot,
      });
      expect({ root, code: again.code, stderr: again.code === 0 ? '' : again.stderr }).toEqual({
        root,
        code: 0,
        stderr: '',
      });
    }
    for (const path of fx.all) {
      expect(nixStoreDump(`${copy.storeRoot}${path}`).equals(nixStoreDump(path))).toBe(true);
    }
  }, 120_000);

  it('refuses to substitute with another trusted key (the signature really is checked)', async () => {
    const other = 'other-key-1:f/Mfq81CcfUlnchjlZdtSGyZUHplChuNKltk08qxPvs=';
    const copy = await copyFromCache(fake.publicUrl, fx.byName.singleFile, { trustedPublicKeys: [other] });
    storeRoots.push(copy.storeRoot);
    expect(copy.code).not.toBe(0);
    expect(copy.stderr).toMatch(/lacks a valid signature/);
  }, 60_000);

  it('uploads the build logs of the pushed paths', () => {
    expect(
      fake.objectKeys().filter((key) => key.startsWith('log/') && key.endsWith('-fx-diamondTop.drv')),
    ).toHaveLength(1);
  });

  it('a second push of the same closure uploads nothing and is fast', async () => {
    const before = fake.requests.length;
    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: fx.roots.join('\n') },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.code).toBe(0);
    expect(run.outputs['pushed']).toBe('0');
    expect(Number(run.outputs['skipped-cached'])).toBe(fx.all.length);
    expect(run.outputs['uploaded-bytes']).toBe('0');
    const requests = fake.requests.slice(before);
    expect(requests.filter((r) => r.target === 's3')).toEqual([]);
    expect(requests.filter((r) => r.route?.includes('/sign'))).toEqual([]);
    // Each session is still completed (that refreshes the GC age of the roots).
    expect(requests.filter((r) => r.route === 'POST /api/pending_closures/{id}/complete').length).toBe(
      fx.roots.length,
    );
    const took = /in (\d+(?:\.\d+)?) s\./.exec(run.stdout);
    expect(Number(took?.[1])).toBeLessThan(2);
  }, 60_000);
});
