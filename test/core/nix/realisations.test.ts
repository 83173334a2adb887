import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecFn } from '../../../src/core/nix/nix-command.js';
import type { PathInfo } from '../../../src/core/nix/path-info.js';
import {
  hasFloatingOutput,
  parseRealisations,
  queryRealisations,
  realisationBody,
} from '../../../src/core/nix/realisations.js';

const ID = `sha256:${'0'.repeat(63)}1!out`;
const OUT = 'a'.repeat(32);
const info = (path: string, deriver: string, ca = 'fixed:r:sha256:0abc'): PathInfo => ({
  path,
  narHash: Buffer.alloc(32),
  narSize: 8,
  references: [],
  deriver,
  signatures: [],
  ca,
});

describe('realisations', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'realisations-'));
    writeFileSync(
      join(dir, 'floating.drv'),
      'Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",[],[])',
    );
    writeFileSync(
      join(dir, 'fixed.drv'),
      `Derive([("out","/nix/store/${OUT}-f","sha256","${'e'.repeat(64)}")],[],[],"x86_64-linux","/bin/sh",[],[])`,
    );
    writeFileSync(
      join(dir, 'input.drv'),
      `Derive([("out","/nix/store/${OUT}-i","","")],[],[],"x","/bin/sh",[],[])`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('only derivations with a path-less output are floating content-addressed', () => {
    expect(hasFloatingOutput(join(dir, 'floating.drv'))).toBe(true);
    expect(hasFloatingOutput(join(dir, 'fixed.drv'))).toBe(false);
    expect(hasFloatingOutput(join(dir, 'input.drv'))).toBe(false);
    expect(hasFloatingOutput(join(dir, 'missing.drv'))).toBe(false);
  });

  it('parses Nix 2.8 output, skips opaque paths, and writes the body in niks3 form', () => {
    const parsed = parseRealisations([
      { opaquePath: `/nix/store/${OUT}-x` },
      { dependentRealisations: {}, id: ID, outPath: `${OUT}-x`, signatures: [] },
    ]);
    expect(parsed).toEqual([{ id: ID, outPath: `${OUT}-x`, signatures: [], dependentRealisations: {} }]);
    expect(realisationBody(parsed[0]!)).toBe(`{"id":"${ID}","outPath":"${OUT}-x"}`);
    expect(
      realisationBody({ ...parsed[0]!, signatures: ['k:s'], dependentRealisations: { [ID]: `${OUT}-y` } }),
    ).toBe(
      `{"id":"${ID}","outPath":"${OUT}-x","signatures":["k:s"],"dependentRealisations":{"${ID}":"${OUT}-y"}}`,
    );
    expect(() => parseRealisations([{ id: 'bad id', outPath: 'x' }])).toThrow(/not of the form/);
  });

  it('asks with drv^* first, then the plain drv (Nix 2.8); fixed-output paths are never asked about', async () => {
    const calls: string[][] = [];
    const exec: ExecFn = (_cmd, args) => {
      calls.push(args);
      const drvs = args.slice(args.indexOf('--') + 1);
      if (drvs.some((d) => d.endsWith('^*')))
        return Promise.resolve({ code: 1, stdout: '', stderr: "error: '…^*' is not a valid URL\n" });
      return Promise.resolve({
        code: 0,
        stdout: JSON.stringify([{ id: ID, outPath: `${OUT}-x`, signatures: [], dependentRealisations: {} }]),
        stderr: '',
      });
    };
    const found = await queryRealisations(
      [
        info(`/nix/store/${OUT}-x`, join(dir, 'floating.drv')),
        info(`/nix/store/${'b'.repeat(32)}-f`, join(dir, 'fixed.drv'), 'fixed:sha256:0abc'),
        info(`/nix/store/${'c'.repeat(32)}-i`, join(dir, 'input.drv'), ''),
      ],
      { exec },
    );
    expect(calls.map((args) => args.slice(args.indexOf('--') + 1))).toEqual([
      [`${join(dir, 'floating.drv')}^*`],
      [join(dir, 'floating.drv')],
    ]);
    expect(calls[0]?.slice(0, 2)).toEqual(['--extra-experimental-features', 'nix-command ca-derivations']);
    expect([...found.byPath.keys()]).toEqual([`/nix/store/${OUT}-x`]);
    expect(found.failed).toEqual([]);
  });

  it('a Nix without `nix realisation` reports nothing: every deriver is listed as failed', async () => {
    const exec: ExecFn = () =>
      Promise.resolve({ code: 1, stdout: '', stderr: "error: 'realisation' is not a recognised command\n" });
    const found = await queryRealisations(
      [
        info(`/nix/store/${OUT}-x`, join(dir, 'floating.drv')),
        info(`/nix/store/${'d'.repeat(32)}-y`, join(dir, 'other.drv')),
      ],
      { exec, isFloating: () => true },
    );
    expect(found.byPath.size).toBe(0);
    expect(found.failed.map((f) => f.error)).toEqual([
      "error: 'realisation' is not a recognised command",
      "error: 'realisation' is not a recognised command",
    ]);
  });
});
