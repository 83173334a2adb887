/**
 * Differences between our push client and the real niks3 v1.7.0, each settled against the real
 * server (these tests failed before the client was changed):
 * - a build log survives a forced GC while its path is live (its key is in the narinfo's refs);
 * - a retried multipart complete whose first answer was lost succeeds: v1.7.0 has no
 *   `HEAD /api/objects` (always 404), so the NAR is probed at the public URL;
 * - a NAR the database calls stored but the bucket lost: `verify-s3: true` sends `verify_s3` and
 *   re-uploads it, and without the input a `verify` that finds a root's NAR missing at the public
 *   URL pushes that root again with `verify_s3`;
 * - a partly failed push registers what it fully stored (a completed session per stored
 *   sub-closure), so GC keeps it and Nix substitutes it, instead of leaving it in an open session;
 * - adaptive rate limiting: behind an S3 that answers 503 SlowDown whenever more than 10 requests
 *   arrived in the last second, 30 workers that only retry on their own stay a herd and run out of
 *   attempts; the push slows down on the first 503 and finishes;
 */
import {
  buildFixtureClosure,
  buildRandomPath,
  buildDerivations,
  buildTextPath,
  copyFromCache,
  type FixtureClosure,
  removeStoreRoot,
} from '../helpers/nix-fixtures.js';
import { startCuttingProxy } from '../reliability/cutting-proxy.js';
import { runAction } from '../helpers/run-action.js';
import { storeHash } from '../push/push-test-support.js';
import { startRealNiks3, type ProxiedRequest, type ProxyVerdict, type RealNiks3 } from './stack.js';
import { describeRealNiks3 } from './tools.js';

describeRealNiks3('push client differences, settled against the real niks3 v1.7.0', () => {
  let stack: RealNiks3;
  let fx: FixtureClosure;
  const storeRoots: string[] = [];

  /** What the S3 proxy in front of versitygw answers itself (undefined: forward). */
  let s3Rule: (req: ProxiedRequest) => ProxyVerdict = () => undefined;

  beforeAll(async () => {
    [stack, fx] = await Promise.all([
      startRealNiks3({ s3Proxy: (req) => s3Rule(req) }),
      buildFixtureClosure({ large: false }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    for (const root of storeRoots) removeStoreRoot(root);
  });

  const secrets = (): string[] => [stack.apiToken, ...stack.secretKeys, stack.s3.secretKey];
  const tokenInputs = (extra: Record<string, string>): Record<string, string> => ({
    'server-url': stack.url,
    auth: 'token',
    token: stack.apiToken,
    'upstream-filter': 'false',
    ...extra,
  });

  it('build logs: a forced GC keeps the log of a pinned path (the log key is in its narinfo refs)', async () => {
    const root = fx.byName.diamondTop;
    const pushed = await runAction('push', {
      inputs: tokenInputs({ paths: root, pin: 'logs' }),
      secrets: secrets(),
    });
    expect(pushed.errors).toEqual([]);
    expect(pushed.code).toBe(0);
    const logKey = (await stack.objectKeys()).find(
      (k) => k.startsWith('log/') && k.endsWith('-fx-diamondTop.drv'),
    );
    expect(logKey).toBeDefined();
    const [row] = await stack.query<{ refs: string[] }>('SELECT refs FROM objects WHERE key = $1', [
      `${storeHash(root)}.narinfo`,
    ]);
    expect(row?.refs).toContain(logKey);

    const gc = await runAction('gc', {
      inputs: {
        'server-url': stack.url,
        auth: 'token',
        token: stack.apiToken,
        'older-than': '0s',
        'failed-uploads-older-than': '0s',
        force: 'true',
        confirm: 'force',
      },
      secrets: secrets(),
    });
    expect(gc.errors).toEqual([]);
    expect(gc.code).toBe(0);
    const keys = await stack.objectKeys();
    expect(keys).toContain(`${storeHash(root)}.narinfo`);
    expect(keys).toContain(logKey);
  }, 120_000);

  it('multipart: the answer of a complete is lost, the retry hears 404, and the NAR is found at the public URL', async () => {
    const large = await buildRandomPath(11 * 1024 * 1024);
    const proxy = await startCuttingProxy(stack.url);
    try {
      const cut = proxy.cut({ method: 'POST', path: /^\/api\/multipart\/complete$/, times: 1, drop: true });
      const run = await runAction('push', {
        inputs: { ...tokenInputs({ paths: large }), 'server-url': proxy.url },
        secrets: secrets(),
      });
      expect(cut.hits()).toBe(1);
      expect(run.errors).toEqual([]);
      expect(run.code).toBe(0);
      expect(run.outputs['pushed']).toBe('1');
      const copy = await copyFromCache(stack.publicUrl, large, { trustedPublicKeys: stack.publicKeys });
      storeRoots.push(copy.storeRoot);
      expect({ code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({
        code: 0,
        stderr: '',
      });
    } finally {
      await proxy.close();
    }
  }, 120_000);

  /** Pushes `path`, then deletes its NAR from the bucket behind the server's back. */
  const pushThenLoseNar = async (path: string): Promise<string> => {
    const first = await runAction('push', { inputs: tokenInputs({ paths: path }), secrets: secrets() });
    expect(first.code).toBe(0);
    const nar = (await stack.objectKeys()).filter((k) => k.startsWith('nar/'));
    const [row] = await stack.query<{ refs: string[] }>('SELECT refs FROM objects WHERE key = $1', [
      `${storeHash(path)}.narinfo`,
    ]);
    const narKey = row?.refs.find((ref) => ref.startsWith('nar/')) ?? '';
    expect(nar).toContain(narKey);
    await stack.s3.deleteObject(stack.bucket, narKey);
    return narKey;
  };

  it('verify-s3: true re-uploads a NAR the bucket lost (the database still calls it stored)', async () => {
    const path = await buildTextPath('its NAR goes missing\n');
    const narKey = await pushThenLoseNar(path);
    const plain = await runAction('push', {
      inputs: tokenInputs({ paths: path, verify: 'false' }),
      secrets: secrets(),
    });
    expect(plain.outputs['pushed']).toBe('0');
    expect(await stack.objectKeys()).not.toContain(narKey);

    const run = await runAction('push', {
      inputs: tokenInputs({ paths: path, 'verify-s3': 'true' }),
      secrets: secrets(),
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(await stack.objectKeys()).toContain(narKey);
    const copy = await copyFromCache(stack.publicUrl, path, { trustedPublicKeys: stack.publicKeys });
    storeRoots.push(copy.storeRoot);
    expect({ code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({ code: 0, stderr: '' });
  }, 120_000);

  it('verify finds a root NAR missing at the public URL and pushes that root again with verify_s3', async () => {
    const path = await buildTextPath('its NAR goes missing too\n');
    const narKey = await pushThenLoseNar(path);
    const run = await runAction('push', { inputs: tokenInputs({ paths: path }), secrets: secrets() });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/verify_s3/);
    expect(await stack.objectKeys()).toContain(narKey);
    const copy = await copyFromCache(stack.publicUrl, path, { trustedPublicKeys: stack.publicKeys });
    storeRoots.push(copy.storeRoot);
    expect({ code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({ code: 0, stderr: '' });
  }, 120_000);

  it('a partly failed push registers the sub-closure it fully stored; GC keeps it and Nix substitutes it', async () => {
    const built = await buildDerivations({
      big: '/usr/bin/head -c 11534336 /dev/urandom > $out',
      small: 'echo small > $out',
      top: 'echo ${big} ${small} > $out',
    });
    const [top, small, big] = [built.top as string, built.small as string, built.big as string];
    // Every part of the one multipart NAR (big) is refused for good; the rest goes through.
    s3Rule = (req) =>
      req.method === 'PUT' && /partNumber=/.test(req.url)
        ? { status: 400, code: 'InvalidArgument' }
        : undefined;
    let run;
    try {
      run = await runAction('push', { inputs: tokenInputs({ paths: top }), secrets: secrets() });
    } finally {
      s3Rule = () => undefined;
    }
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain(big);
    // small was fully stored: it is registered (a closure of its own), not left in the open session.
    const closures = (await stack.query<{ key: string }>('SELECT key FROM closures')).map((c) => c.key);
    expect(closures).toContain(`${storeHash(small)}.narinfo`);
    expect(closures).not.toContain(`${storeHash(top)}.narinfo`);

    const gc = await runAction('gc', {
      inputs: {
        'server-url': stack.url,
        auth: 'token',
        token: stack.apiToken,
        'older-than': '1h',
        'failed-uploads-older-than': '0s',
        force: 'true',
        confirm: 'force',
      },
      secrets: secrets(),
    });
    expect(gc.code).toBe(0);
    const copy = await copyFromCache(stack.publicUrl, small, { trustedPublicKeys: stack.publicKeys });
    storeRoots.push(copy.storeRoot);
    expect({ code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({ code: 0, stderr: '' });
  }, 120_000);

  it('rate limiting: a push behind a throttling S3 slows down and finishes', async () => {
    const scripts: Record<string, string> = {};
    for (let i = 0; i < 16; i++) scripts[`p${i}`] = `echo throttled ${i} > $out`;
    const built = await buildDerivations(scripts);
    const paths = Object.values(built);
    const arrivals: number[] = [];
    let throttled = 0;
    s3Rule = (req) => {
      if (req.method !== 'PUT') return undefined;
      const now = Date.now();
      arrivals.push(now);
      while ((arrivals[0] ?? now) < now - 1000) arrivals.shift();
      if (arrivals.length <= 10) return undefined;
      throttled += 1;
      return { status: 503, code: 'SlowDown' };
    };
    let run;
    try {
      run = await runAction('push', {
        inputs: tokenInputs({ paths: paths.join('\n'), 'max-concurrent-uploads': '30' }),
        secrets: secrets(),
        timeoutMs: 110_000,
      });
    } finally {
      s3Rule = () => undefined;
    }
    expect(throttled).toBeGreaterThan(0);
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(Number(run.outputs['pushed'])).toBe(paths.length);
  }, 120_000);
});
