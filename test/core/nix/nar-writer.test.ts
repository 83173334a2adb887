import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { renderNarListing, type NarListingEntry } from '../../../src/core/nix/nar-listing.js';
import { narListing, narStream, narStreamWithListing } from '../../../src/core/nix/nar-writer.js';
import { NarVerifier, hashNar } from '../../helpers/nar-check.js';
import { formatNarHash } from '../../../src/core/nix/nar-hash.js';
import { parsePathInfoJson } from '../../../src/core/nix/path-info.js';
import {
  buildFixtureClosure,
  buildRandomPath,
  buildTextPath,
  nixPathInfoJson,
  nixStoreDump,
  type FixtureClosure,
  LARGE_CASE_BYTES,
} from '../../helpers/nix-fixtures.js';

const NIX = ['--extra-experimental-features', 'nix-command'];

async function collect(
  stream: NodeJS.ReadableStream,
): Promise<{ data: Buffer; maxChunk: number; chunks: number }> {
  const parts: Buffer[] = [];
  let maxChunk = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    parts.push(b);
    maxChunk = Math.max(maxChunk, b.length);
  }
  return { data: Buffer.concat(parts), maxChunk, chunks: parts.length };
}

/** Every regular file of a listing with its path inside the store path. */
function regularFiles(
  entry: NarListingEntry,
  prefix = '',
): { rel: string; entry: Extract<NarListingEntry, { type: 'regular' }> }[] {
  if (entry.type === 'regular') return [{ rel: prefix, entry }];
  if (entry.type === 'symlink') return [];
  return Object.entries(entry.entries).flatMap(([name, child]) => regularFiles(child, `${prefix}/${name}`));
}

let fixtures: FixtureClosure;
let tmp: string;

beforeAll(async () => {
  fixtures = await buildFixtureClosure();
  tmp = mkdtempSync(join(tmpdir(), 'nar-writer-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('narStream', () => {
  it('is byte-identical to nix-store --dump for every fixture case, with path-info hash and size', async () => {
    const infos = new Map(parsePathInfoJson(nixPathInfoJson(fixtures.all)).map((i) => [i.path, i]));
    for (const path of fixtures.all) {
      const { data, maxChunk } = await collect(narStream(path));
      const expected = nixStoreDump(path);
      if (!data.equals(expected))
        throw new Error(
          `NAR of ${path} differs from nix-store --dump (${data.length} vs ${expected.length} bytes)`,
        );
      const info = infos.get(path);
      expect(info).toBeDefined();
      expect(data.length).toBe(info?.narSize);
      expect(
        createHash('sha256')
          .update(data)
          .digest()
          .equals(info?.narHash as Buffer),
      ).toBe(true);
      expect(maxChunk).toBeLessThanOrEqual(1024 * 1024 + 256 * 1024);
      const hashed = await hashNar(path);
      expect(hashed.narSize).toBe(info?.narSize);
      expect(hashed.narHash.equals(info?.narHash as Buffer)).toBe(true);
    }
  });

  it('fixture helpers: random paths have the asked size, equal texts give distinct paths with one NAR', async () => {
    const random = await buildRandomPath(1000);
    expect(random).toMatch(/^\/nix\/store\/[0-9a-z]{32}-/);
    const walked = await narListing(random);
    expect(walked.listing.root).toMatchObject({ type: 'regular', size: 1000 });
    // a large regular file as the root takes the streamed branch
    const bigRoot = await buildRandomPath(3 * 1024 * 1024 + 5);
    expect((await collect(narStream(bigRoot))).data.equals(nixStoreDump(bigRoot))).toBe(true);
    const one = await buildTextPath('same bytes\n');
    const two = await buildTextPath('same bytes\n');
    expect(one).not.toBe(two);
    expect((await hashNar(one)).narHash.equals((await hashNar(two)).narHash)).toBe(true);
    expect(readFileSync(one, 'utf8')).toBe('same bytes\n');
  });

  it('streams the 11 MiB file in bounded chunks', async () => {
    const { data, maxChunk, chunks } = await collect(narStream(fixtures.byName.large));
    expect(data.length).toBeGreaterThan(LARGE_CASE_BYTES);
    expect(maxChunk).toBeLessThanOrEqual(1024 * 1024);
    expect(chunks).toBeGreaterThanOrEqual(11);
  });

  it('serialises paths outside the store too (what nix-store --dump does for any path)', async () => {
    const dir = join(tmp, 'plain');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'f'), 'x'.repeat(1000));
    writeFileSync(join(dir, 'exe'), '#!/bin/sh\n', { mode: 0o744 });
    symlinkSync('sub/f', join(dir, 'l'));
    // a name that is not valid UTF-8: raw bytes must survive
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0x66])]), 'y');
    const { data } = await collect(narStream(dir));
    expect(data.equals(nixStoreDump(dir))).toBe(true);
  });

  it('fails on a FIFO and on a missing path, naming the path', async () => {
    const dir = join(tmp, 'fifo');
    mkdirSync(dir);
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    await expect(collect(narStream(dir))).rejects.toThrow(
      /"[^"]*fifo\/pipe" is neither a regular file, a directory nor a symlink/,
    );
    await expect(collect(narStream(join(tmp, 'missing')))).rejects.toThrow(/cannot stat ".*missing"/);
  });
});

describe('.ls listing', () => {
  it("equals Nix's own listing (nix nar ls --json -R, with narOffset) and its offsets point at the file bytes", async () => {
    for (const name of [
      'nested',
      'symlinks',
      'large',
      'singleFile',
      'emptyFile',
      'emptyDir',
      'executable',
      'rootSymlink',
      'selfRef',
    ] as const) {
      const path = fixtures.byName[name];
      const { stream, listing } = narStreamWithListing(path);
      const { data } = await collect(stream);
      const ls = await listing;
      expect(ls.version).toBe(1);
      const narFile = join(tmp, `${name}.nar`);
      writeFileSync(narFile, data);
      const nixLs = JSON.parse(
        execFileSync('nix', [...NIX, 'nar', 'ls', '--json', '--recursive', narFile, '/'], {
          encoding: 'utf8',
        }),
      ) as unknown;
      expect(ls.root).toEqual(nixLs);
      for (const { rel, entry } of regularFiles(ls.root)) {
        const bytes = readFileSync(path + rel);
        expect(entry.size).toBe(bytes.length);
        const offset = entry.narOffset as number;
        expect(data.readBigUInt64LE(offset - 8)).toBe(BigInt(bytes.length));
        expect(data.subarray(offset, offset + bytes.length).equals(bytes)).toBe(true);
      }
      // the tree walk without reading contents gives the same listing and the NAR size
      const walked = await narListing(path);
      expect(walked.listing).toEqual(ls);
      expect(walked.narSize).toBe(data.length);
      const noOffsets = await narListing(path, { offsets: false });
      expect(JSON.stringify(noOffsets.listing)).not.toContain('narOffset');
    }
  });

  it('renders the .ls text exactly as Nix writes it (nix copy --to file://…?write-nar-listing=true)', async () => {
    const cache = join(tmp, 'nix-cache');
    for (const name of ['nested', 'symlinks', 'large'] as const) {
      const path = fixtures.byName[name];
      execFileSync(
        'nix',
        [...NIX, 'copy', '--to', `file://${cache}?compression=none&write-nar-listing=true`, path],
        { stdio: 'pipe' },
      );
      const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const nixText = readFileSync(join(cache, `${hash}.ls`), 'utf8');
      const { stream, listing } = narStreamWithListing(path);
      await collect(stream);
      expect(renderNarListing(await listing)).toBe(nixText);
    }
  });

  it('keeps integer-like names in byte order in the text and survives "__proto__"', async () => {
    const dir = join(tmp, 'names');
    mkdirSync(dir);
    for (const n of ['9', '10', '__proto__', 'constructor', 'b']) writeFileSync(join(dir, n), n);
    const { stream, listing } = narStreamWithListing(dir);
    await collect(stream);
    const ls = await listing;
    const text = renderNarListing(ls);
    const order = [...text.matchAll(/"([^"]+)":\{"type"/g)].map((m) => m[1]);
    expect(order).toEqual(['root', '10', '9', '__proto__', 'b', 'constructor']);
    expect(text.indexOf('"10"')).toBeLessThan(text.indexOf('"9"'));
    expect(text.indexOf('"__proto__"')).toBeGreaterThan(0);
    expect(
      ls.root.type === 'directory' && Object.prototype.hasOwnProperty.call(ls.root.entries, '__proto__'),
    ).toBe(true);
  });

  it('rejects the listing when the stream is destroyed early, without an unhandled rejection', async () => {
    const { stream, listing } = narStreamWithListing(fixtures.byName.large);
    await new Promise<void>((resolve) => {
      stream.once('data', () => {
        stream.destroy();
        resolve();
      });
    });
    await expect(listing).rejects.toThrow(/closed before its end/);
    // a listing nobody awaits must not crash the process when the stream fails
    const failing = narStreamWithListing(join(tmp, 'does-not-exist'));
    await expect(collect(failing.stream)).rejects.toThrow(/cannot stat/);
  });
});

describe('NarVerifier', () => {
  it('passes a matching NAR through and reports its digest', async () => {
    const path = fixtures.byName.nested;
    const [info] = parsePathInfoJson(nixPathInfoJson([path]));
    const verifier = new NarVerifier({ narHash: info!.narHash, narSize: info!.narSize, path });
    let size = 0;
    await pipeline(
      narStream(path),
      verifier,
      new Writable({ write: (c: Buffer, _e, cb) => ((size += c.length), cb()) }),
    );
    expect(size).toBe(info!.narSize);
    expect(formatNarHash(verifier.digest())).toBe(formatNarHash(info!.narHash));
  });

  it('fails the pipeline when hash or size differ, naming the path and what to do', async () => {
    const path = fixtures.byName.nested;
    const [info] = parsePathInfoJson(nixPathInfoJson([path]));
    const wrongHash = Buffer.from(info!.narHash);
    wrongHash[0] = (wrongHash[0] ?? 0) ^ 1;
    const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
    await expect(
      pipeline(
        narStream(path),
        new NarVerifier({ narHash: wrongHash, narSize: info!.narSize, path }),
        sink(),
      ),
    ).rejects.toThrow(
      new RegExp(`NAR serialised for ${path.replace(/[.]/g, '\\.')} does not match.*nix-store --verify-path`),
    );
    await expect(
      pipeline(
        narStream(path),
        new NarVerifier({ narHash: info!.narHash, narSize: info!.narSize - 8, path }),
        sink(),
      ),
    ).rejects.toThrow(/more than/);
    await expect(
      pipeline(
        narStream(path),
        new NarVerifier({ narHash: info!.narHash, narSize: info!.narSize + 8, path }),
        sink(),
      ),
    ).rejects.toThrow(/does not match/);
  });
});
