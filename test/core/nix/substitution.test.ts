/**
 * The whole Nix side of a push without a server: for every path of the fixture closure, our NAR
 * (zstd), our narinfo with our signature and our .ls go into a file:// binary cache; then real Nix
 * copies the closure into a fresh store with signatures required. A wrong key must be refused.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createZstdCompress, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { renderNarListing } from '../../../src/core/nix/nar-listing.js';
import { narStreamWithListing } from '../../../src/core/nix/nar-writer.js';
import { NarVerifier } from '../../helpers/nar-check.js';
import { narInfoFromPathInfo, narInfoKey, renderNarInfo } from '../../../src/core/nix/narinfo.js';
import { listingKey } from '../../../src/core/nix/object-keys.js';
import { queryPathInfo } from '../../../src/core/nix/path-info.js';
import {
  fingerprint,
  generateSecretKey,
  parseSecretKey,
  signFingerprint,
} from '../../../src/core/nix/signing-key.js';
import {
  buildFixtureClosure,
  copyFromCache,
  nixStoreDump,
  removeStoreRoot,
} from '../../helpers/nix-fixtures.js';

const SECRET =
  'niks3-test-1:0knWkx/F+6IJmI4dkvNs14SCaewg9ZWSAQUNg9juRxh/8x+rzUJx9SWdyGOVl21IbJlQemUKG40qW2TTyrE++w==';

describe('a file:// binary cache written with src/core/nix', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'substitution-'));
  });
  afterAll(() => {
    removeStoreRoot(tmp);
  });

  it('is accepted by nix copy with signatures required, and refused under another key', async () => {
    const fixtures = await buildFixtureClosure();
    const cache = join(tmp, 'cache');
    mkdirSync(join(cache, 'nar'), { recursive: true });
    writeFileSync(join(cache, 'nix-cache-info'), 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');
    const key = parseSecretKey(SECRET);
    const infos = await queryPathInfo([...fixtures.roots], { recursive: true });
    expect(infos.map((i) => i.path).sort()).toEqual([...fixtures.all]);
    for (const info of infos) {
      const { stream, listing } = narStreamWithListing(info.path);
      const narInfo = narInfoFromPathInfo(info);
      await pipeline(
        stream,
        new NarVerifier({ narHash: info.narHash, narSize: info.narSize, path: info.path }),
        createZstdCompress(),
        createWriteStream(join(cache, narInfo.url)),
      );
      const sig = signFingerprint(
        key,
        fingerprint(info.path, narInfo.narHash, info.narSize, info.references),
      );
      narInfo.sigs = [sig];
      writeFileSync(join(cache, narInfoKey(info.path)), renderNarInfo(narInfo));
      writeFileSync(
        join(cache, listingKey(info.path)),
        zstdCompressSync(Buffer.from(renderNarListing(await listing))),
      );
    }
    const ls = JSON.parse(
      zstdDecompressSync(readFileSync(join(cache, listingKey(fixtures.byName.large)))).toString(),
    ) as { version: number };
    expect(ls.version).toBe(1);

    for (const root of [
      fixtures.byName.diamondTop,
      fixtures.byName.large,
      fixtures.byName.nested,
      fixtures.byName.rootSymlink,
    ] as string[]) {
      const good = await copyFromCache(`file://${cache}`, root, {
        trustedPublicKeys: [key.publicKey],
        storeRoot: join(tmp, 'good'),
      });
      if (good.code !== 0) throw new Error(`nix copy failed: ${good.stderr}`);
      expect(nixStoreDump(join(good.storeRoot, root)).equals(nixStoreDump(root))).toBe(true);
    }
    const diamond = (['diamondTop', 'diamondLeft', 'diamondRight', 'diamondBottom'] as const).map((n) =>
      fixtures.byName[n].slice(11),
    );
    const copied = execFileSync('ls', [join(tmp, 'good', 'nix', 'store')], { encoding: 'utf8' });
    for (const base of diamond) expect(copied).toContain(base);

    const stranger = generateSecretKey('niks3-test-1');
    const bad = await copyFromCache(`file://${cache}`, fixtures.byName.chain3, {
      trustedPublicKeys: [stranger.publicKey],
      storeRoot: join(tmp, 'bad'),
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/lacks a valid signature|no signature/);
  });
});
