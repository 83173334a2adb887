import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigurationError } from '../../../src/core/errors.js';
import { nixBase32Encode } from '../../../src/core/nix/base32.js';
import { buildInstallables, resolvePathArgument } from '../../../src/core/nix/installables.js';
import { execFile, type ExecFn } from '../../../src/core/nix/nix-command.js';
import { parsePathInfoJson, queryPathInfo } from '../../../src/core/nix/path-info.js';
import {
  buildFixtureClosure,
  nixPathInfoJson,
  NIX_TEST_ARGS,
  type FixtureClosure,
} from '../../helpers/nix-fixtures.js';

let fixtures: FixtureClosure;
let tmp: string;

beforeAll(async () => {
  fixtures = await buildFixtureClosure({ large: false });
  tmp = mkdtempSync(join(tmpdir(), 'path-info-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const digest = randomBytes(32);
const A = '/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1';
const B = '/nix/store/sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36';
const DRV = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2.12.1.drv';

describe('parsePathInfoJson', () => {
  it('reads real Nix 2.8 output (array form, SRI hashes) for a chain, a diamond and a self-reference', () => {
    const json = nixPathInfoJson(
      [fixtures.byName.chain3, fixtures.byName.diamondTop, fixtures.byName.selfRef],
      true,
    );
    expect(Array.isArray(json)).toBe(true);
    const infos = new Map(parsePathInfoJson(json).map((i) => [i.path, i]));
    const { chain1, chain2, chain3, diamondTop, diamondLeft, diamondRight, diamondBottom, selfRef } =
      fixtures.byName;
    expect([...infos.keys()].sort()).toEqual(
      [chain1, chain2, chain3, diamondTop, diamondLeft, diamondRight, diamondBottom, selfRef].sort(),
    );
    expect(infos.get(chain3)?.references).toEqual([chain2]);
    expect(infos.get(chain2)?.references).toEqual([chain1]);
    expect(infos.get(chain1)?.references).toEqual([]);
    expect(infos.get(diamondTop)?.references).toEqual([diamondLeft, diamondRight].sort());
    expect(infos.get(diamondLeft)?.references).toEqual([diamondBottom]);
    expect(infos.get(selfRef)?.references).toEqual([selfRef]);
    for (const info of infos.values()) {
      expect(info.narHash).toHaveLength(32);
      expect(info.narSize).toBeGreaterThan(0);
      expect(info.deriver).toMatch(/^\/nix\/store\/[0-9a-z]{32}-fx-.*\.drv$/);
      expect(info.signatures).toEqual([]);
      expect(info.registrationTime).toEqual(expect.any(Number));
      expect(info.ca).toBeUndefined();
    }
  });

  it('reads the newer Nix object form keyed by full path', () => {
    const [info] = parsePathInfoJson({
      [A]: {
        narHash: `sha256-${digest.toString('base64')}`,
        narSize: 5,
        references: [B, A],
        deriver: DRV,
        signatures: ['cache.nixos.org-1:xyz'],
        ca: null,
        ultimate: false,
      },
    });
    expect(info).toEqual({
      path: A,
      narHash: digest,
      narSize: 5,
      references: [A, B],
      deriver: DRV,
      signatures: ['cache.nixos.org-1:xyz'],
    });
  });

  it('reads the Lix array form with sha256:nix32 hashes, string CA and a null deriver', () => {
    const [info] = parsePathInfoJson([
      {
        path: A,
        narHash: `sha256:${nixBase32Encode(digest)}`,
        narSize: 7,
        references: [],
        deriver: null,
        ca: 'fixed:r:sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh',
      },
    ]);
    expect(info?.narHash.equals(digest)).toBe(true);
    expect(info?.deriver).toBeUndefined();
    expect(info?.signatures).toEqual([]);
    expect(info?.ca).toBe('fixed:r:sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh');
  });

  it('reads JSON v2 (version 2, base names, structured hashes and CA, storeDir) and sha256:base64', () => {
    const base = (p: string) => p.slice('/nix/store/'.length);
    const infos = parsePathInfoJson({
      [base(A)]: {
        version: 2,
        storeDir: '/nix/store',
        narHash: { algorithm: 'sha256', format: 'base64', hash: digest.toString('base64') },
        narSize: 9,
        references: [base(B)],
        deriver: base(DRV),
        ca: {
          method: 'nar',
          hash: { algorithm: 'sha256', format: 'base64', hash: digest.toString('base64') },
        },
        signatures: [],
      },
      [B]: {
        narHash: { algorithm: 'sha256', format: 'nix32', hash: nixBase32Encode(digest) },
        narSize: 1,
        references: [],
        ca: { method: 'text', hash: { algorithm: 'sha256', format: 'base16', hash: digest.toString('hex') } },
      },
      '/nix/store/cccccccccccccccccccccccccccccccc-c': {
        narHash: `sha256:${digest.toString('base64')}`,
        narSize: 1,
        references: [],
        ca: { method: 'flat', hash: `sha256:${nixBase32Encode(digest)}` },
      },
    });
    expect(infos[0]).toMatchObject({
      path: A,
      references: [B],
      deriver: DRV,
      ca: `fixed:r:sha256:${nixBase32Encode(digest)}`,
    });
    expect(infos[0]?.narHash.equals(digest)).toBe(true);
    expect(infos[1]).toMatchObject({ path: B, ca: `text:sha256:${nixBase32Encode(digest)}` });
    expect(infos[1]?.narHash.equals(digest)).toBe(true);
    expect(infos[2]?.ca).toBe(`fixed:sha256:${nixBase32Encode(digest)}`);
    expect(
      parsePathInfoJson([
        {
          path: base(A),
          storeDir: '/other/store',
          narHash: `sha256-${digest.toString('base64')}`,
          narSize: 1,
          references: [base(B)],
        },
      ])[0],
    ).toMatchObject({
      path: '/other/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1',
      references: ['/other/store/sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36'],
    });
    expect(
      parsePathInfoJson(
        JSON.stringify([{ path: A, narHash: `sha256-${digest.toString('base64')}`, narSize: 1 }]),
      )[0]?.references,
    ).toEqual([]);
  });

  it('names invalid paths and broken entries', () => {
    expect(() => parsePathInfoJson([{ path: A, valid: false }])).toThrow(`path '${A}' is not valid`);
    expect(() => parsePathInfoJson({ [A]: null })).toThrow(`path '${A}' is not valid`);
    expect(() => parsePathInfoJson([{ path: A, narHash: 'md5-abc', narSize: 1 }])).toThrow(/only sha256/);
    expect(() =>
      parsePathInfoJson([{ path: A, narHash: `sha256-${digest.toString('base64')}`, narSize: -1 }]),
    ).toThrow(/narSize/);
    expect(() =>
      parsePathInfoJson([
        { path: A, narHash: `sha256-${digest.toString('base64')}`, narSize: 1, references: 'x' },
      ]),
    ).toThrow(/references/);
    expect(() =>
      parsePathInfoJson([
        { path: A, narHash: { algorithm: 'sha1', format: 'base16', hash: 'aa'.repeat(20) }, narSize: 1 },
      ]),
    ).toThrow(/sha256/);
    expect(() => parsePathInfoJson(42)).toThrow(/neither an array nor an object/);
  });
});

describe('queryPathInfo (real nix)', () => {
  it('returns the whole closure with --recursive and only the path without it', async () => {
    const { chain1, chain2, chain3 } = fixtures.byName;
    const recursive = await queryPathInfo([chain3], { recursive: true });
    expect(recursive.map((i) => i.path).sort()).toEqual([chain1, chain2, chain3].sort());
    const single = await queryPathInfo([chain3, chain3], { recursive: false });
    expect(single.map((i) => i.path)).toEqual([chain3]);
    expect(await queryPathInfo([], { recursive: true })).toEqual([]);
  });

  it('fails naming a missing store path', async () => {
    const missing = `/nix/store/${nixBase32Encode(randomBytes(20))}-never-built`;
    await expect(queryPathInfo([missing], { recursive: true, nixArgs: NIX_TEST_ARGS })).rejects.toThrow(
      `path '${missing}' is not valid`,
    );
  });

  it("fails with Nix's own error text when nix fails", async () => {
    await expect(queryPathInfo([tmp], { recursive: false })).rejects.toThrow(
      new RegExp(`nix path-info failed for ${tmp} \\(exit code 1\\): .*flake`, 's'),
    );
  });

  it('asks in chunks of 1000 paths after "--", and merges the answers', async () => {
    const calls: string[][] = [];
    const paths = Array.from({ length: 2500 }, () => `/nix/store/${nixBase32Encode(randomBytes(20))}-p`);
    const exec: ExecFn = async (cmd, args) => {
      calls.push([cmd, ...args]);
      const asked = args.slice(args.indexOf('--') + 1);
      return {
        code: 0,
        stderr: '',
        stdout: JSON.stringify(
          asked.map((path) => ({
            path,
            narHash: `sha256-${digest.toString('base64')}`,
            narSize: 1,
            references: [],
          })),
        ),
      };
    };
    const infos = await queryPathInfo(paths, { recursive: true, exec, nixArgs: ['--store', 'daemon'] });
    expect(infos.map((i) => i.path)).toEqual(paths);
    expect(calls.map((c) => c.length)).toEqual([1009, 1009, 509]);
    expect(calls[0]?.slice(0, 8)).toEqual([
      'nix',
      '--extra-experimental-features',
      'nix-command',
      'path-info',
      '--json',
      '--recursive',
      '--store',
      'daemon',
    ]);
  });

  it('notices a path nix did not report', async () => {
    const exec: ExecFn = async () => ({ code: 0, stderr: '', stdout: '[]' });
    await expect(queryPathInfo([A], { recursive: false, exec })).rejects.toThrow(
      `nix path-info did not report ${A}`,
    );
  });
});

describe('building and resolving arguments (real nix)', () => {
  let file: string;
  beforeAll(() => {
    file = join(tmp, 'default.nix');
    const salt = randomBytes(8).toString('hex');
    writeFileSync(
      file,
      `let mk = name: script: derivation { inherit name; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };\n` +
        `in rec { one = mk "one" "echo one > $out"; two = mk "two" "/bin/mkdir $out; echo \${one} > $out/ref"; broken = mk "broken" "echo this build fails >&2; exit 3"; }\n`,
    );
  });

  it('builds installables and returns their output paths', async () => {
    const outs = await buildInstallables(['two', 'one'], { nixArgs: ['-f', file, ...NIX_TEST_ARGS] });
    expect(outs).toHaveLength(2);
    for (const out of outs) expect(out).toMatch(/^\/nix\/store\/[0-9a-z]{32}-(one|two)$/);
    const info = await queryPathInfo(outs, { recursive: true });
    expect(info).toHaveLength(2);
  });

  it("reports a failed build with the builder's output", async () => {
    await expect(buildInstallables(['broken'], { nixArgs: ['-f', file, ...NIX_TEST_ARGS] })).rejects.toThrow(
      /nix build failed for broken \(exit code 1\).*this build fails/s,
    );
  });

  it('resolves ./result links, links to links, relative links, links inside store paths and linked directories', async () => {
    const { chain2, chain3, nested } = fixtures.byName;
    const dir = join(tmp, 'links');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    symlinkSync(chain3, join(dir, 'result'));
    symlinkSync('result', join(dir, 'result-rel'));
    symlinkSync(join(dir, 'result-rel'), join(dir, 'sub', 'again'));
    symlinkSync(`${nested}/bin/tool`, join(dir, 'tool'));
    symlinkSync(nested, join(dir, 'nested-dir'));
    expect(await resolvePathArgument('./result', dir)).toBe(chain3);
    expect(await resolvePathArgument('result-rel', dir)).toBe(chain3);
    expect(await resolvePathArgument('sub/again', dir)).toBe(chain3);
    expect(await resolvePathArgument(chain3, '/')).toBe(chain3);
    // a path inside a store path is reduced to the top level, and links inside the store are not followed
    expect(await resolvePathArgument(`${chain3}/dep`, '/')).toBe(chain3);
    expect(await resolvePathArgument('result/dep', dir)).toBe(chain3);
    expect(await resolvePathArgument('tool', dir)).toBe(nested);
    expect(await resolvePathArgument('nested-dir/bin/tool', dir)).toBe(nested);
    expect(chain2).not.toBe(chain3);
  });

  it('refuses paths outside the store, missing paths and link loops with a ConfigurationError', async () => {
    const dir = join(tmp, 'bad-links');
    mkdirSync(dir);
    writeFileSync(join(dir, 'plain'), 'x');
    symlinkSync('nowhere', join(dir, 'dangling'));
    symlinkSync('loop-b', join(dir, 'loop-a'));
    symlinkSync('loop-a', join(dir, 'loop-b'));
    symlinkSync(`/nix/store/${nixBase32Encode(randomBytes(20))}-gone`, join(dir, 'gone'));
    await expect(resolvePathArgument('plain', dir)).rejects.toThrow(ConfigurationError);
    await expect(resolvePathArgument('plain', dir)).rejects.toThrow(/is not in the Nix store/);
    await expect(resolvePathArgument('missing', dir)).rejects.toThrow(/path does not exist: .*missing/);
    await expect(resolvePathArgument('dangling', dir)).rejects.toThrow(/path does not exist: .*nowhere/);
    await expect(resolvePathArgument('loop-a', dir)).rejects.toThrow(/too many levels/);
    await expect(resolvePathArgument('gone', dir)).rejects.toThrow(
      /path does not exist: \/nix\/store\/.*-gone/,
    );
    await expect(resolvePathArgument('/nix/store/.links', '/')).rejects.toThrow(ConfigurationError);
  });
});

describe('execFile', () => {
  it('feeds stdin, passes env, returns exit codes and multi-byte output intact', async () => {
    expect(await execFile('/bin/cat', [], { input: 'ünïcödé 🙂'.repeat(10000) })).toEqual({
      code: 0,
      stdout: 'ünïcödé 🙂'.repeat(10000),
      stderr: '',
    });
    expect(
      (await execFile('/bin/sh', ['-c', 'echo "$X" >&2; exit 4'], { env: { X: 'from-env' } })).stderr,
    ).toBe('from-env\n');
    expect((await execFile('/bin/sh', ['-c', 'exit 4'])).code).toBe(4);
    expect((await execFile('/bin/sh', ['-c', 'pwd'], { cwd: tmp })).stdout.trim()).toBe(tmp);
    await expect(execFile('/definitely/not/here', [])).rejects.toThrow(
      /could not run \/definitely\/not\/here: .*is \/definitely\/not\/here installed/,
    );
  });
});
