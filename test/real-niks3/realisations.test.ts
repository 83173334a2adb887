/**
 * Realisations of content-addressed derivations, against the real niks3 v1.7.0: a floating CA
 * derivation and a CA derivation that depends on it are built with Nix (2.8 here:
 * `nix realisation info` reports them), pushed through the push bundle, and then
 *  - each output's realisation is in the bucket as `realisations/<id>.doi`, in the form niks3's own
 *    client writes (zstd JSON `{id, outPath[, signatures][, dependentRealisations]}`,
 *    `Content-Encoding: zstd`), and its key is in the refs of the output's narinfo in niks3's
 *    database (so its GC keeps it while the path lives);
 *  - a fresh store that cannot run builders `nix-build`s the top derivation from the public URL
 *    with signatures required: Nix finds each output through its realisation and substitutes it.
 *    Without the realisations it would have to build (and fails).
 */
import { zstdDecompressSync } from 'node:zlib';
import {
  buildContentAddressed,
  buildFromCache,
  removeStoreRoot,
  uniqueSalt,
} from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { storeHash } from '../push/push-test-support.js';
import { startRealNiks3, type RealNiks3 } from './stack.js';
import { describeRealNiks3 } from './tools.js';

const isZstd = (bytes: Buffer): boolean => bytes.readUInt32LE(0) === 0xfd2fb528;

describeRealNiks3('realisations of content-addressed derivations, against the real niks3 v1.7.0', () => {
  let stack: RealNiks3;
  let built: Awaited<ReturnType<typeof buildContentAddressed>>;
  const storeRoots: string[] = [];

  beforeAll(async () => {
    [stack, built] = await Promise.all([
      startRealNiks3(),
      // Unique contents: a CA output path depends on its contents only, and Nix records as its
      // deriver the first derivation that produced it (the realisation asked for is that one's).
      buildContentAddressed({ dep: `echo dep ${uniqueSalt()} > $out`, top: 'echo ${dep} > $out' }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    built?.dispose();
    for (const root of storeRoots) removeStoreRoot(root);
  });

  const secrets = (): string[] => [stack.apiToken, ...stack.secretKeys, stack.s3.secretKey];

  it('push uploads the realisations as niks3 writes them; Nix substitutes the CA derivation through them', async () => {
    const { dep, top } = built.paths as { dep: string; top: string };
    const run = await runAction('push', {
      inputs: {
        'server-url': stack.url,
        auth: 'token',
        token: stack.apiToken,
        paths: top,
        'upstream-filter': 'false',
      },
      secrets: secrets(),
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['pushed']).toBe('2');
    expect(run.stdout).toMatch(/2 realisation\(s\)/);

    const keys = (await stack.objectKeys()).filter((key) => key.startsWith('realisations/'));
    expect(keys).toHaveLength(2);
    for (const path of [dep, top]) {
      const baseName = path.slice('/nix/store/'.length);
      const found: string[] = [];
      for (const key of keys) {
        const response = await fetch(
          `${stack.publicUrl}/${key.split('/').map(encodeURIComponent).join('/')}`,
        );
        expect(response.status).toBe(200);
        expect(response.headers.get('content-encoding')).toBe('zstd');
        // fetch may undo the Content-Encoding itself (Node 24 knows zstd); else the bytes are zstd.
        const raw = Buffer.from(await response.arrayBuffer());
        const text = (isZstd(raw) ? zstdDecompressSync(raw) : raw).toString('utf8');
        const body = JSON.parse(text) as Record<string, unknown>;
        if (body.outPath !== baseName) continue;
        found.push(key);
        expect(key).toMatch(/^realisations\/sha256:[0-9a-f]{64}!out\.doi$/);
        expect(key).toBe(`realisations/${String(body.id)}.doi`);
        // niks3's form: id and outPath; signatures and dependentRealisations only when not empty.
        expect(Object.keys(body).sort()).toEqual(['id', 'outPath']);
      }
      expect({ path, found: found.length }).toEqual({ path, found: 1 });
      const [row] = await stack.query<{ refs: string[] }>('SELECT refs FROM objects WHERE key = $1', [
        `${storeHash(path)}.narinfo`,
      ]);
      expect(row?.refs).toContain(found[0]);
    }

    const copy = await buildFromCache(stack.publicUrl, built.file, 'top', {
      trustedPublicKeys: stack.publicKeys,
    });
    storeRoots.push(copy.storeRoot);
    expect({ code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({ code: 0, stderr: '' });
    expect(copy.stdout.trim()).toBe(top);
    expect(copy.stderr).toMatch(/copying path '[^']*-ca-top' from/);
  }, 180_000);
});
