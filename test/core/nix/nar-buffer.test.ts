/**
 * The in-buffer NAR serialiser (small NARs of a push): byte-identical to `nix-store --dump`, the same
 * listing as the streaming writer, and a typed NarMismatchError when the tree's size differs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { narToBuffer } from '../../../src/core/nix/nar-buffer.js';
import { NarMismatchError } from '../../../src/core/nix/nar-mismatch.js';
import { renderNarListing } from '../../../src/core/nix/nar-listing.js';
import { narStreamWithListing } from '../../../src/core/nix/nar-writer.js';
import { parsePathInfoJson } from '../../../src/core/nix/path-info.js';
import {
  buildFixtureClosure,
  nixPathInfoJson,
  nixStoreDump,
  type FixtureClosure,
} from '../../helpers/nix-fixtures.js';

let fixtures: FixtureClosure;
let tmp: string;

beforeAll(async () => {
  fixtures = await buildFixtureClosure();
  tmp = mkdtempSync(join(tmpdir(), 'nar-buffer-'));
}, 120_000);
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const unknownHash = { narHash: new Uint8Array(32) };

describe('narToBuffer', () => {
  it('is byte-identical to nix-store --dump for every fixture case, with the streaming listing', async () => {
    const infos = parsePathInfoJson(nixPathInfoJson(fixtures.all));
    for (const info of infos) {
      const { nar, listing } = narToBuffer(info.path, info);
      if (!nar.equals(nixStoreDump(info.path)))
        throw new Error(`NAR of ${info.path} differs from nix-store --dump`);
      const streamed = narStreamWithListing(info.path);
      for await (const _ of streamed.stream) {
        // drain
      }
      expect(renderNarListing(listing)).toBe(renderNarListing(await streamed.listing));
    }
  });

  it('serialises raw-byte names, executables and symlinks outside the store', () => {
    const dir = join(tmp, 'plain');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'f'), 'x'.repeat(1000));
    writeFileSync(join(dir, 'exe'), '#!/bin/sh\n', { mode: 0o744 });
    writeFileSync(join(dir, 'empty'), '');
    symlinkSync('sub/f', join(dir, 'l'));
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0x66])]), 'y');
    const expected = nixStoreDump(dir);
    const { nar } = narToBuffer(dir, { ...unknownHash, narSize: expected.length });
    expect(nar.equals(expected)).toBe(true);
  });

  it('fails with NarMismatchError when the tree is larger or smaller than path-info says', () => {
    const dir = join(tmp, 'sized');
    mkdirSync(dir);
    writeFileSync(join(dir, 'f'), 'abc');
    const size = nixStoreDump(dir).length;
    expect(() => narToBuffer(dir, { ...unknownHash, narSize: size - 8, path: dir })).toThrow(
      NarMismatchError,
    );
    expect(() => narToBuffer(dir, { ...unknownHash, narSize: size - 8, path: dir })).toThrow(
      new RegExp(
        `NAR serialised for ${dir} does not match Nix's path-info .*got more than ${size - 8} bytes`,
      ),
    );
    expect(() => narToBuffer(dir, { ...unknownHash, narSize: size + 8 })).toThrow(
      new RegExp(`got ${size} bytes`),
    );
  });

  it('fails on a FIFO and on a missing path, naming the path', () => {
    const dir = join(tmp, 'fifo');
    mkdirSync(dir);
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    expect(() => narToBuffer(dir, { ...unknownHash, narSize: 4096 })).toThrow(
      /"[^"]*fifo\/pipe" is neither a regular file, a directory nor a symlink/,
    );
    expect(() => narToBuffer(join(tmp, 'missing'), { ...unknownHash, narSize: 8 })).toThrow(
      /cannot stat ".*missing"/,
    );
  });
});
