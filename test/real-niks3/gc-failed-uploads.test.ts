/**
 * gc after a push that failed part-way, against the real niks3 v1.7.0: the multipart upload of one
 * NAR is abandoned after its first part (the storage refuses the second for good), so the push
 * fails with a fully stored sub-closure, an open session and an open multipart upload. A gc with
 * `failed-uploads-older-than: 0s` then leaves nothing half-visible: no open session, no open
 * multipart upload, no object the database does not hold live, and every narinfo readable at the
 * public URL has its NAR and the narinfos of its references there too; what remains substitutes
 * with real Nix (signatures required).
 */
import { zstdDecompressSync } from 'node:zlib';
import { buildDerivations, copyFromCache, removeStoreRoot } from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { storeHash } from '../push/push-test-support.js';
import { startRealNiks3, type ProxiedRequest, type ProxyVerdict, type RealNiks3 } from './stack.js';
import { describeRealNiks3 } from './tools.js';

/** A public object as text (fetch may undo the zstd Content-Encoding itself, or not). */
async function publicText(stack: RealNiks3, key: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${stack.publicUrl}/${key}`);
  const raw = Buffer.from(await response.arrayBuffer());
  const zstd = raw.length >= 4 && raw.readUInt32LE(0) === 0xfd2fb528;
  return { status: response.status, text: (zstd ? zstdDecompressSync(raw) : raw).toString('utf8') };
}

describeRealNiks3('gc after a failed push, against the real niks3 v1.7.0', () => {
  let stack: RealNiks3;
  let s3Rule: (req: ProxiedRequest) => ProxyVerdict = () => undefined;
  const storeRoots: string[] = [];

  beforeAll(async () => {
    stack = await startRealNiks3({ s3Proxy: (req) => s3Rule(req) });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    for (const root of storeRoots) removeStoreRoot(root);
  });

  const secrets = (): string[] => [stack.apiToken, ...stack.secretKeys, stack.s3.secretKey];

  it('a failed-upload cleanup leaves nothing half-visible, and what remains substitutes', async () => {
    const built = await buildDerivations({
      big: '/usr/bin/head -c 11534336 /dev/urandom > $out',
      small: 'echo small > $out',
      top: 'echo ${big} ${small} > $out',
    });
    const [top, small, big] = [built.top as string, built.small as string, built.big as string];
    // The big NAR's first part is stored, the second refused for good: the upload is abandoned.
    s3Rule = (req) =>
      req.method === 'PUT' && /partNumber=2(&|$)/.test(req.url)
        ? { status: 400, code: 'InvalidArgument' }
        : undefined;
    let pushed;
    try {
      pushed = await runAction('push', {
        inputs: {
          'server-url': stack.url,
          auth: 'token',
          token: stack.apiToken,
          paths: top,
          'upstream-filter': 'false',
        },
        secrets: secrets(),
      });
    } finally {
      s3Rule = () => undefined;
    }
    expect(pushed.code).toBe(1);
    expect(pushed.errors.join('\n')).toContain(big);
    expect((await stack.query('SELECT id FROM pending_closures')).length).toBeGreaterThanOrEqual(1);
    const uploadsBefore = await stack.s3.s3('GET', `/${stack.bucket}?uploads`);
    expect(uploadsBefore.text).toMatch(/<UploadId>/);

    const gc = await runAction('gc', {
      inputs: {
        'server-url': stack.url,
        auth: 'token',
        token: stack.apiToken,
        'older-than': '1h',
        'failed-uploads-older-than': '0s',
      },
      secrets: secrets(),
    });
    expect(gc.errors).toEqual([]);
    expect(gc.code).toBe(0);

    // Nothing of the failed session is left open: no session, no multipart upload.
    expect(await stack.query('SELECT id FROM pending_closures')).toEqual([]);
    const uploadsAfter = await stack.s3.s3('GET', `/${stack.bucket}?uploads`);
    expect(uploadsAfter.status).toBe(200);
    expect(uploadsAfter.text).not.toMatch(/<UploadId>/);

    // Every object in the bucket is the server's own or live in its database.
    const live = new Set(
      (await stack.query<{ key: string }>('SELECT key FROM objects WHERE deleted_at IS NULL')).map(
        (row) => row.key,
      ),
    );
    const keys = await stack.objectKeys();
    const stray = keys.filter(
      (key) => !live.has(key) && key !== 'nix-cache-info' && key !== 'index.html' && !key.startsWith('pins/'),
    );
    expect(stray).toEqual([]);

    // No narinfo is readable whose NAR, or a reference's narinfo, is missing.
    const narinfos = keys.filter((key) => key.endsWith('.narinfo'));
    expect(narinfos).toContain(`${storeHash(small)}.narinfo`);
    expect(narinfos).not.toContain(`${storeHash(top)}.narinfo`);
    expect(narinfos).not.toContain(`${storeHash(big)}.narinfo`);
    for (const key of narinfos) {
      const narinfo = await publicText(stack, key);
      expect({ key, status: narinfo.status }).toEqual({ key, status: 200 });
      const url = /^URL: (.+)$/m.exec(narinfo.text)?.[1] ?? '';
      const nar = await fetch(`${stack.publicUrl}/${url}`, { method: 'HEAD' });
      expect({ key, url, status: nar.status }).toEqual({ key, url, status: 200 });
      const refs = (/^References: ?(.*)$/m.exec(narinfo.text)?.[1] ?? '').split(' ').filter(Boolean);
      for (const ref of refs) {
        const refKey = `${ref.slice(0, 32)}.narinfo`;
        const status = (await fetch(`${stack.publicUrl}/${refKey}`, { method: 'HEAD' })).status;
        expect({ key, refKey, status }).toEqual({ key, refKey, status: 200 });
      }
    }

    const copy = await copyFromCache(stack.publicUrl, small, { trustedPublicKeys: stack.publicKeys });
    storeRoots.push(copy.storeRoot);
    expect({ code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({ code: 0, stderr: '' });
  }, 180_000);
});
