/**
 * push, gc and status through the dist bundles against the real niks3 v1.7.0 (PostgreSQL 15,
 * versitygw): the round-trip closure set goes up with an OIDC token and again with the static
 * token, real Nix substitutes every path from the bucket's public URL with signatures required, a
 * pin holds through a gc with `older-than: 0s`, and gc/status report what the server said.
 */
import {
  buildFixtureClosure,
  buildTextPath,
  copyFromCache,
  nixStoreDump,
  type FixtureClosure,
  removeStoreRoot,
} from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { storeHash } from '../push/push-test-support.js';
import { startRealNiks3, type RealNiks3 } from './stack.js';
import { describeRealNiks3 } from './tools.js';

describeRealNiks3('push, gc and status against the real niks3 v1.7.0', () => {
  let stack: RealNiks3;
  let fx: FixtureClosure;
  let unpinned: string;
  const storeRoots: string[] = [];

  beforeAll(async () => {
    // The pass-through S3 proxy only records what reaches the bucket (multipart parts).
    [stack, fx, unpinned] = await Promise.all([
      startRealNiks3({ oidc: true, s3Proxy: () => undefined }),
      buildFixtureClosure(),
      buildTextPath('pushed without a pin\n', { name: 'unpinned' }),
    ]);
  }, 180_000);

  afterAll(async () => {
    await stack?.close();
    for (const root of storeRoots) removeStoreRoot(root);
  });

  const secrets = (): string[] => [stack.apiToken, ...stack.secretKeys, stack.s3.secretKey];

  it('push with an OIDC token: every NAR case, a multipart NAR, a pin; verify passes at the public URL', async () => {
    const run = await runAction('push', {
      inputs: {
        'server-url': stack.url,
        paths: fx.roots.join('\n'),
        'upstream-filter': 'false',
        pin: 'release',
      },
      oidc: stack.oidc,
      secrets: secrets(),
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(Number(run.outputs['pushed'])).toBe(fx.all.length);
    expect(run.outputs['public-key']).toBe(stack.publicKeys[0]);
    expect(run.outputs['cache-url']).toBe(stack.publicUrl);
    expect(Number(run.outputs['uploaded-bytes'])).toBeGreaterThan(10 * 1024 * 1024);
    expect(run.stdout).toMatch(/verified at/);
    expect(stack.oidc?.minted.length).toBeGreaterThanOrEqual(1);

    // The 11 MiB NAR went up in parts through presigned part URLs.
    const parts = stack.proxied.filter(
      (r) => r.method === 'PUT' && /partNumber=/.test(r.url) && r.status === 200,
    );
    expect(parts.length).toBeGreaterThanOrEqual(2);

    const keys = await stack.objectKeys();
    for (const path of fx.all) expect(keys).toContain(`${storeHash(path)}.narinfo`);
    // The pin is the server's: an object in the bucket and a row in its database.
    const pinNames = fx.roots.map((_, i) => `release.${i + 1}`).sort();
    for (const name of pinNames) expect(keys).toContain(`pins/${name}`);
    const pins = await stack.query<{ name: string }>('SELECT name FROM pins ORDER BY name');
    expect(pins.map((p) => p.name).sort()).toEqual(pinNames);
    // Every session was completed: each root is a closure (a GC root) in the database.
    const closures = await stack.query<{ key: string }>('SELECT key FROM closures');
    for (const root of fx.roots) expect(closures.map((c) => c.key)).toContain(`${storeHash(root)}.narinfo`);
    expect(await stack.query('SELECT id FROM pending_closures')).toEqual([]);
  }, 180_000);

  it('Nix substitutes every path from the public URL with signatures required; the copies are identical', async () => {
    const copy = await copyFromCache(stack.publicUrl, fx.roots[0] as string, {
      trustedPublicKeys: stack.publicKeys,
    });
    storeRoots.push(copy.storeRoot);
    expect({ code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({ code: 0, stderr: '' });
    for (const root of fx.roots.slice(1)) {
      const again = await copyFromCache(stack.publicUrl, root, {
        trustedPublicKeys: stack.publicKeys,
        storeRoot: copy.storeRoot,
      });
      expect({ root, code: again.code, stderr: again.code === 0 ? '' : again.stderr }).toEqual({
        root,
        code: 0,
        stderr: '',
      });
    }
    for (const path of fx.all)
      expect(nixStoreDump(`${copy.storeRoot}${path}`).equals(nixStoreDump(path))).toBe(true);
  }, 180_000);

  it('a second push, with the static token, uploads nothing', async () => {
    const before = await stack.objectKeys();
    const run = await runAction('push', {
      inputs: {
        'server-url': stack.url,
        auth: 'token',
        token: stack.apiToken,
        paths: fx.roots.join('\n'),
        'upstream-filter': 'false',
      },
      secrets: secrets(),
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['pushed']).toBe('0');
    expect(Number(run.outputs['skipped-cached'])).toBe(fx.all.length);
    expect(run.outputs['uploaded-bytes']).toBe('0');
    expect(await stack.objectKeys()).toEqual(before);
  }, 120_000);

  it('status: health, cache-config, public reads and the key match against the real server', async () => {
    const run = await runAction('status', {
      inputs: { 'server-url': stack.url, 'expected-public-key': stack.publicKeys[0] },
      secrets: secrets(),
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['public-key']).toBe(stack.publicKeys[0]);
    expect(run.outputs['cache-url']).toBe(stack.publicUrl);
    const checks = JSON.parse(run.outputs['checks'] ?? '[]') as {
      name: string;
      ok?: boolean;
      status?: string;
    }[];
    expect(checks.length).toBeGreaterThan(0);
  }, 60_000);

  it('gc with older-than 0s keeps the pinned closures and reports exactly what the server said', async () => {
    const pushed = await runAction('push', {
      inputs: {
        'server-url': stack.url,
        auth: 'token',
        token: stack.apiToken,
        paths: unpinned,
        'upstream-filter': 'false',
      },
      secrets: secrets(),
    });
    expect(pushed.code).toBe(0);
    const run = await runAction('gc', {
      inputs: { 'server-url': stack.url, auth: 'token', token: stack.apiToken, 'older-than': '0s' },
      secrets: secrets(),
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['state']).toBe('succeeded');
    const status = (await (
      await fetch(`${stack.url}/api/gc/status`, { headers: { authorization: `Bearer ${stack.apiToken}` } })
    ).json()) as { stats?: Record<string, number> };
    expect(JSON.parse(run.outputs['stats'] ?? '{}')).toEqual(status.stats);
    for (const [field, value] of Object.entries(status.stats ?? {}))
      if (run.outputs[field.replace(/_/g, '-')] !== undefined)
        expect(run.outputs[field.replace(/_/g, '-')]).toBe(String(value));
    expect(status.stats?.old_closures_deleted).toBeGreaterThanOrEqual(1);
    // The unpinned closure was dropped; the pinned roots' closures stay.
    const closures = (await stack.query<{ key: string }>('SELECT key FROM closures')).map((c) => c.key);
    for (const root of fx.roots) expect(closures).toContain(`${storeHash(root)}.narinfo`);
    expect(closures).not.toContain(`${storeHash(unpinned)}.narinfo`);

    // Nix still substitutes a pinned closure, and the dropped one too: its objects are only marked
    // and wait for the grace period (failed-uploads-older-than).
    for (const path of [fx.byName.diamondTop, unpinned]) {
      const copy = await copyFromCache(stack.publicUrl, path, { trustedPublicKeys: stack.publicKeys });
      storeRoots.push(copy.storeRoot);
      expect({ path, code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({
        path,
        code: 0,
        stderr: '',
      });
    }
  }, 120_000);
});
