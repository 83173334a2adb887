/**
 * The push core in process (run(io, deps) with a MemoryStepIO, real Nix, the fake niks3): the cases
 * that need knobs the bundle does not expose: many small multipart parts with part URLs fetched on
 * demand, presigned URLs that expire mid-push, a NAR another session stored first, a NAR that does
 * not match Nix's path-info, pins, and verification against a wrong public URL.
 */
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { defaultDeps, run } from '../../src/actions/push/main.js';
import { execFile, type ExecFn } from '../../src/core/nix/nix-command.js';
import { narKey } from '../../src/core/nix/object-keys.js';
import { MemoryStepIO } from '../../src/core/step/memory-io.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import {
  buildDerivations,
  buildRandomPath,
  copyFromCache,
  nixPathInfoJson,
  nixStoreDump,
  removeStoreRoot,
} from '../helpers/nix-fixtures.js';
import { pushFakeInputs, storeHash } from './push-test-support.js';

const fakes: FakeNiks3[] = [];
const storeRoots: string[] = [];
afterAll(async () => {
  for (const fake of fakes) await fake.close();
  for (const root of storeRoots) removeStoreRoot(root);
});

async function fakeServer(options: Parameters<typeof startFakeNiks3>[0] = {}): Promise<FakeNiks3> {
  const fake = await startFakeNiks3(options);
  fakes.push(fake);
  return fake;
}

async function substitutes(fake: FakeNiks3, path: string): Promise<boolean> {
  const copy = await copyFromCache(fake.publicUrl, path, { trustedPublicKeys: fake.publicKeys });
  storeRoots.push(copy.storeRoot);
  return copy.code === 0 && nixStoreDump(`${copy.storeRoot}${path}`).equals(nixStoreDump(path));
}

const PART = 512 * 1024;

describe('push core (in process, real Nix)', () => {
  let large: string;
  beforeAll(async () => {
    large = await buildRandomPath(11 * 1024 * 1024 + 5);
  }, 60_000);

  it('uploads a NAR in many small parts, asking for part URLs as it goes, within the memory budget', async () => {
    const fake = await fakeServer({ multipart: { minPartSize: 1 } });
    const io = new MemoryStepIO({ inputs: pushFakeInputs(fake, { paths: large }) });
    await run(io, { ...defaultDeps(), partSize: PART, memoryBudget: 2 * PART, progressIntervalMs: 20 });
    expect(io.failure).toBeUndefined();
    const parts = fake.requests.filter(
      (r) => r.target === 's3' && /partNumber=/.test(r.query) && r.status === 200,
    );
    expect(parts.length).toBe(Math.ceil((11 * 1024 * 1024 + 5 + 200) / PART));
    expect(
      fake.requests.filter((r) => r.route === 'POST /api/multipart/request-parts').length,
    ).toBeGreaterThanOrEqual(1);
    expect(io.logger.lines.some((line) => /uploading: \d+ of 1 done/.test(line))).toBe(true);
    expect(await substitutes(fake, large)).toBe(true);
  }, 60_000);

  it('gets fresh URLs when presigned URLs expire mid-push (parts via request-parts, others via a new session)', async () => {
    // URLs live 4 s and one part is held 4.5 s, so every URL issued before it has expired; the fresh
    // ones are used well within 4 s even on a loaded machine (a 1 s lifetime made this test flaky).
    const fake = await fakeServer({ multipart: { minPartSize: 1 }, presignTtlMs: 4000 });
    fake.faults.add({
      target: 's3',
      method: 'PUT',
      query: /partNumber=3&/,
      times: 1,
      action: { kind: 'delay', ms: 4500 },
    });
    const io = new MemoryStepIO({ inputs: pushFakeInputs(fake, { paths: large }) });
    await run(io, { ...defaultDeps(), partSize: PART });
    expect(io.failure).toBeUndefined();
    expect(fake.requests.filter((r) => r.target === 's3' && r.status === 403).length).toBeGreaterThanOrEqual(
      2,
    );
    expect(io.logger.lines.join('\n')).toMatch(/was refused \(expired\?\); asking niks3 for a new one/);
    expect(io.outputs.get('pushed')).toBe('1');
    expect(await substitutes(fake, large)).toBe(true);
  }, 60_000);

  it('counts a NAR another session completed first as stored (404 on complete, object exists)', async () => {
    const fake = await fakeServer();
    const info = (nixPathInfoJson([large]) as Array<{ narHash: string }>)[0] as { narHash: string };
    await fake.putObject(narKey(info.narHash), zstdCompressSync(nixStoreDump(large)));
    fake.faults.add({
      target: 'api',
      path: /^\/api\/multipart\/complete$/,
      times: 1,
      action: { status: 404, body: 'multipart upload not found' },
    });
    const io = new MemoryStepIO({ inputs: pushFakeInputs(fake, { paths: large }) });
    await run(io);
    expect(io.failure).toBeUndefined();
    expect(fake.requests.some((r) => r.method === 'HEAD' && r.route?.startsWith('HEAD /api/objects/'))).toBe(
      true,
    );
    expect(fake.state.closures.has(`${storeHash(large)}.narinfo`)).toBe(true);
    expect(await substitutes(fake, large)).toBe(true);
  }, 60_000);

  it('never uploads a NAR that differs from path-info, and withholds the narinfos of paths that need it', async () => {
    const fake = await fakeServer();
    const paths = await buildDerivations({
      leaf: 'echo leaf > $out',
      top: '/bin/mkdir $out; echo ${leaf} > $out/dep',
      other: 'echo other > $out',
    });
    const leaf = paths['leaf'] as string;
    const badHash = `sha256-${Buffer.alloc(32, 7).toString('base64')}`;
    const lying: ExecFn = async (cmd, args, opts) => {
      const result = await execFile(cmd, args, opts);
      if (!args.includes('path-info')) return result;
      const json = JSON.parse(result.stdout) as Array<{ path: string; narHash: string }>;
      for (const entry of json) if (entry.path === leaf) entry.narHash = badHash;
      return { ...result, stdout: JSON.stringify(json) };
    };
    const io = new MemoryStepIO({
      inputs: pushFakeInputs(fake, { paths: `${paths['top']}\n${paths['other']}` }),
    });
    await run(io, { ...defaultDeps(), exec: lying });
    expect(io.failure).toMatch(/2 of 3 path\(s\) were NOT pushed/);
    expect(io.failure).toMatch(/does not match Nix's path-info/);
    expect(io.failure).toMatch(/its reference \/nix\/store\/\S+-leaf was not pushed/);
    const keys = fake.objectKeys();
    expect(keys).not.toContain(narKey(badHash));
    expect(keys).not.toContain(`${storeHash(leaf)}.narinfo`);
    expect(keys).not.toContain(`${storeHash(paths['top'] as string)}.narinfo`);
    expect(keys).toContain(`${storeHash(paths['other'] as string)}.narinfo`);
    expect(io.outputs.get('pushed')).toBe('1');
  }, 60_000);

  it('pins the roots (one root: the name; auto: the branch) and verifies them at the public URL', async () => {
    const fake = await fakeServer();
    const paths = await buildDerivations({ a: 'echo a > $out', b: 'echo b > $out' });
    const one = new MemoryStepIO({
      inputs: pushFakeInputs(fake, { paths: paths['a'] as string, pin: 'auto' }),
      env: { GITHUB_REF_NAME: 'feature/new thing' },
    });
    await run(one);
    expect(one.failure).toBeUndefined();
    const two = new MemoryStepIO({
      inputs: pushFakeInputs(fake, { paths: `${paths['a']}\n${paths['b']}`, pin: 'rel' }),
    });
    await run(two);
    expect(two.failure).toBeUndefined();
    expect([...fake.state.pins.keys()].sort()).toEqual(['feature-new-thing', 'rel.1', 'rel.2']);
    expect(two.logger.lines.join('\n')).toMatch(/2 of 2 root narinfo\(s\) verified/);
  }, 60_000);

  it('verifies every root it uploaded for, and of the roots that were cached already at most eight', async () => {
    const fake = await fakeServer();
    const scripts: Record<string, string> = {};
    for (let i = 0; i < 11; i++) scripts[`r${i}`] = `echo root ${i} > $out`;
    const built = await buildDerivations(scripts);
    const roots = Object.values(built);
    const publicNarinfoGets = (): number =>
      fake.requests.filter((r) => r.target === 'public' && r.method === 'GET' && r.path.endsWith('.narinfo'))
        .length;
    const push = async (paths: readonly string[]): Promise<MemoryStepIO> => {
      const io = new MemoryStepIO({ inputs: pushFakeInputs(fake, { paths: paths.join('\n') }) });
      await run(io);
      expect(io.failure).toBeUndefined();
      return io;
    };
    const first = await push(roots.slice(0, 10));
    expect(publicNarinfoGets()).toBe(10);
    expect(first.logger.lines.join('\n')).toMatch(/10 of 10 root narinfo\(s\) verified at \S+\n?/);
    fake.requests.length = 0;
    const again = await push(roots.slice(0, 10));
    expect(publicNarinfoGets()).toBe(8);
    expect(again.logger.lines.join('\n')).toMatch(
      /8 of 8 root narinfo\(s\) verified at \S+ \(2 other root\(s\) were cached already/,
    );
    fake.requests.length = 0;
    // One new root among ten cached ones: the new one is always checked.
    const mixed = await push(roots);
    expect(publicNarinfoGets()).toBe(9);
    expect(
      fake.requests.some(
        (r) => r.target === 'public' && r.path.endsWith(`${storeHash(roots[10] as string)}.narinfo`),
      ),
    ).toBe(true);
    expect(mixed.logger.lines.join('\n')).toMatch(/9 of 9 root narinfo\(s\) verified/);
  }, 120_000);

  it('fails verification when the public URL does not serve the cache', async () => {
    const fake = await fakeServer();
    const other = await fakeServer();
    const paths = await buildDerivations({ v: 'echo v > $out' });
    const io = new MemoryStepIO({
      inputs: pushFakeInputs(fake, { paths: paths['v'] as string, 'cache-url': other.publicUrl }),
    });
    await run(io, { ...defaultDeps(), sleep: () => Promise.resolve() });
    expect(io.failure).toMatch(/verify: .*answered 404: check cache-url/);
    // The narinfo itself is fine at the right URL.
    const narinfo = zstdDecompressSync(
      (await fake.getObject(`${storeHash(paths['v'] as string)}.narinfo`)) as Buffer,
    ).toString();
    expect(narinfo).toContain(`StorePath: ${paths['v']}`);
  }, 60_000);
});
