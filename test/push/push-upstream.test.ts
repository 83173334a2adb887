/**
 * The upstream filter, through the bundle: a path signed by an upstream key name is skipped without
 * a request; a path an upstream cache (a small server on 127.0.0.1) serves is skipped after a HEAD;
 * an unreachable upstream costs one warning and no stall. Skipped paths stay in the References of
 * the narinfos we write. include/exclude/max-path-size leave paths out the same way.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { generateSecretKey } from '../../src/core/nix/signing-key.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildDerivations } from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { pushFakeInputs, storeHash } from './push-test-support.js';

interface UpstreamCache {
  readonly url: string;
  readonly served: Set<string>;
  readonly asked: string[];
  close(): Promise<void>;
}

/** A binary cache that answers 200 for the narinfos of `served` store path hashes, 404 otherwise. */
async function startUpstreamCache(): Promise<UpstreamCache> {
  const served = new Set<string>();
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    const match = /^\/([0-9a-z]{32})\.narinfo$/.exec(req.url ?? '');
    if (match) asked.push(match[1] as string);
    res.writeHead(match && served.has(match[1] as string) ? 200 : 404, {
      'content-type': 'text/x-nix-narinfo',
    });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    asked,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A TCP listener that either never answers (it counts the requests it reads) or drops each
 * connection at once (it counts connections).
 */
async function startBrokenUpstream(kind: 'silent' | 'drop'): Promise<{
  url: string;
  requests: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server = createTcpServer((socket) => {
    if (kind === 'drop') {
      count += 1;
      socket.destroy();
    } else {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.setEncoding('latin1').on('data', (chunk: string) => {
        count += chunk.split('\r\n\r\n').length - 1;
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let fake: FakeNiks3;
let upstream: UpstreamCache;
let paths: Record<string, string>;
const tempDirs: string[] = [];

beforeAll(async () => {
  [fake, upstream, paths] = await Promise.all([
    startFakeNiks3(),
    startUpstreamCache(),
    buildDerivations(
      {
        // "glibc": signed by the upstream key; "zlib": served by the upstream cache.
        glibc: 'echo glibc > $out',
        zlib: '/bin/mkdir $out; echo ${glibc} > $out/dep',
        tool: '/bin/mkdir $out; echo ${zlib} ${glibc} > $out/deps',
        docs: 'echo docs > $out',
        app: '/bin/mkdir $out; echo ${tool} ${docs} > $out/deps',
      },
      { namePrefix: 'up-' },
    ),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'upstream-key-'));
  tempDirs.push(dir);
  const key = generateSecretKey('upstream-test-1');
  writeFileSync(join(dir, 'key'), key.secretKeyText);
  execFileSync(
    'nix',
    [
      '--extra-experimental-features',
      'nix-command',
      'store',
      'sign',
      '--key-file',
      join(dir, 'key'),
      paths['glibc'] as string,
    ],
    { stdio: 'pipe' },
  );
  upstream.served.add(storeHash(paths['zlib'] as string));
}, 120_000);

afterAll(async () => {
  await fake?.close();
  await upstream?.close();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const narinfoOf = async (path: string): Promise<string | undefined> => {
  const body = await fake.getObject(`${storeHash(path)}.narinfo`);
  return body && zstdDecompressSync(body).toString();
};

describe('push filters (bundle, real Nix)', () => {
  it('skips upstream paths (by signature, by HEAD), keeps them as references, and survives an unreachable upstream', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const run = await runAction('push', {
      inputs: {
        ...pushFakeInputs(fake),
        paths: paths['tool'],
        'upstream-filter': 'true',
        'upstream-caches': `${deadUrl}\n${upstream.url}`,
        'upstream-keys': 'cache.nixos.org-1\nupstream-test-1',
      },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['skipped-upstream']).toBe('2');
    expect(run.outputs['pushed']).toBe('1');
    // One warning for the dead upstream, however many paths were asked.
    expect(run.warnings.filter((w) => w.includes(deadUrl))).toHaveLength(1);
    // The signed path was never asked about; the others were.
    expect(upstream.asked).not.toContain(storeHash(paths['glibc'] as string));
    expect(upstream.asked).toContain(storeHash(paths['zlib'] as string));
    // Neither upstream path was uploaded, but the narinfo we wrote still references both.
    expect(await narinfoOf(paths['glibc'] as string)).toBeUndefined();
    expect(await narinfoOf(paths['zlib'] as string)).toBeUndefined();
    const tool = await narinfoOf(paths['tool'] as string);
    expect(tool).toContain(`${(paths['zlib'] as string).slice(11)}`);
    expect(tool).toContain(`${(paths['glibc'] as string).slice(11)}`);
    expect(run.summary).toMatch(/signed by upstream-test-1/);
    expect(run.summary).toMatch(/served by http:\/\/127\.0\.0\.1/);
  }, 60_000);

  it('with upstream-filter: false everything is pushed', async () => {
    const run = await runAction('push', {
      inputs: {
        ...pushFakeInputs(fake),
        paths: paths['zlib'],
        'upstream-keys': 'upstream-test-1',
        'upstream-caches': upstream.url,
      },
      secrets: [fake.apiToken],
    });
    expect(run.code).toBe(0);
    expect(run.outputs['skipped-upstream']).toBe('0');
    expect(run.outputs['pushed']).toBe('2');
    expect(await narinfoOf(paths['glibc'] as string)).toBeDefined();
  }, 60_000);

  it('include, exclude and max-path-size leave paths out and list them', async () => {
    const run = await runAction('push', {
      inputs: {
        ...pushFakeInputs(fake),
        paths: paths['app'],
        exclude: '*-up-docs',
        'max-path-size': '1M',
      },
      secrets: [fake.apiToken],
    });
    expect(run.code).toBe(0);
    expect(run.outputs['skipped-filtered']).toBe('1');
    expect(run.summary).toMatch(/matched by exclude \(\*-up-docs\)/);
    expect(await narinfoOf(paths['docs'] as string)).toBeUndefined();
    expect(await narinfoOf(paths['app'] as string)).toContain((paths['docs'] as string).slice(11));
    const only = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: paths['app'], include: 'up-docs' },
      secrets: [fake.apiToken],
    });
    expect(only.code).toBe(0);
    expect(only.outputs['pushed']).toBe('1');
    expect(await narinfoOf(paths['docs'] as string)).toBeDefined();
  }, 60_000);

  it('an upstream that never answers or drops connections is asked once, then left out', async () => {
    const silent = await startBrokenUpstream('silent');
    const dropping = await startBrokenUpstream('drop');
    try {
      const fresh = await buildDerivations(
        {
          a: 'echo a > $out',
          b: 'echo b > $out',
          c: 'echo c > $out',
          top: '/bin/mkdir $out; echo ${a} ${b} ${c} > $out/deps',
        },
        { namePrefix: 'up-broken-' },
      );
      const run = await runAction('push', {
        inputs: {
          ...pushFakeInputs(fake),
          paths: fresh['top'],
          'upstream-filter': 'true',
          'upstream-caches': `${silent.url}\n${dropping.url}`,
          'upstream-keys': 'cache.nixos.org-1',
        },
        secrets: [fake.apiToken, ...fake.secretKeys],
      });
      expect(run.errors).toEqual([]);
      expect(run.code).toBe(0);
      expect(run.outputs['pushed']).toBe('4');
      expect(run.outputs['skipped-upstream']).toBe('0');
      // One probe each, whatever the number of paths: one short timeout for the whole push.
      expect(silent.requests()).toBe(1);
      expect(dropping.requests()).toBe(1);
      expect(run.warnings.filter((w) => w.includes(silent.url))).toHaveLength(1);
      expect(run.warnings.filter((w) => w.includes(dropping.url))).toHaveLength(1);
      expect(run.warnings.find((w) => w.includes(silent.url))).toMatch(/no answer within 1 s/);
    } finally {
      await silent.close();
      await dropping.close();
    }
  }, 60_000);

  it('paths our cache already has are not asked upstream', async () => {
    const fresh = await buildDerivations(
      { leaf: 'echo leaf > $out', top: '/bin/mkdir $out; echo ${leaf} > $out/deps' },
      { namePrefix: 'up-cached-' },
    );
    const first = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: fresh['top'] },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(first.code).toBe(0);
    expect(first.outputs['pushed']).toBe('2');

    const askedBefore = upstream.asked.length;
    const sessionsBefore = fake.requests.filter((r) => /pending_closures$/.test(r.path)).length;
    const again = await runAction('push', {
      inputs: {
        ...pushFakeInputs(fake),
        paths: fresh['top'],
        'upstream-filter': 'true',
        'upstream-caches': upstream.url,
        'upstream-keys': 'cache.nixos.org-1',
      },
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(again.code).toBe(0);
    expect(again.outputs['skipped-cached']).toBe('2');
    expect(upstream.asked.length).toBe(askedBefore);
    // One session for the one root: the upstream filter asked nothing, so nothing was planned again.
    expect(fake.requests.filter((r) => /pending_closures$/.test(r.path)).length - sessionsBefore).toBe(1);
  }, 60_000);
});
