import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  narInfoFromPathInfo,
  narInfoKey,
  parseNarInfo,
  renderNarInfo,
  type NarInfo,
} from '../../../src/core/nix/narinfo.js';
import {
  buildLogKey,
  listingKey,
  narKey,
  objectPutHeaders,
  objectTypeOfKey,
  realisationKey,
} from '../../../src/core/nix/object-keys.js';
import { parsePathInfoJson } from '../../../src/core/nix/path-info.js';
import { buildDerivations, nixPathInfoJson } from '../../helpers/nix-fixtures.js';

const EXAMPLE: NarInfo = {
  storePath: '/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1',
  url: 'nar/1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh.nar.zst',
  compression: 'zstd',
  narHash: 'sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh',
  narSize: 226560,
  references: [
    'sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36',
    '26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1',
  ],
  deriver: 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2.12.1.drv',
  sigs: ['niks3-test-2:BBBB', 'niks3-test-1:AAAA'],
  ca: 'fixed:r:sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh',
};

describe('narinfo', () => {
  it('renders the fields of spec §4.2 in order, references and sigs sorted', () => {
    expect(renderNarInfo(EXAMPLE)).toBe(
      [
        'StorePath: /nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1',
        'URL: nar/1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh.nar.zst',
        'Compression: zstd',
        'NarHash: sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh',
        'NarSize: 226560',
        'References: 26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1 sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36',
        'Deriver: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2.12.1.drv',
        'Sig: niks3-test-1:AAAA',
        'Sig: niks3-test-2:BBBB',
        'CA: fixed:r:sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh',
        '',
      ].join('\n'),
    );
  });

  it('writes "References: " with a trailing space and no Deriver/Sig/CA lines when absent', () => {
    const { deriver: _deriver, ca: _ca, ...rest } = EXAMPLE;
    const text = renderNarInfo({ ...rest, references: [], sigs: [] });
    expect(text).toContain('\nReferences: \n');
    expect(text).not.toMatch(/Deriver|Sig|CA/);
    expect(text.endsWith('References: \n')).toBe(true);
  });

  it('strips full paths to base names and refuses line breaks in values', () => {
    const text = renderNarInfo({
      ...EXAMPLE,
      references: ['/nix/store/sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36'],
      deriver: '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2.12.1.drv',
    });
    expect(text).toContain('References: sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36\n');
    expect(text).toContain('Deriver: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2.12.1.drv\n');
    expect(() => renderNarInfo({ ...EXAMPLE, sigs: ['a\nStorePath: /evil'] })).toThrow(/line break/);
  });

  it("parses what it renders, and Nix's own defaults", () => {
    const parsed = parseNarInfo(renderNarInfo(EXAMPLE));
    expect(parsed).toEqual({
      ...EXAMPLE,
      references: [...EXAMPLE.references].sort(),
      sigs: [...EXAMPLE.sigs].sort(),
    });
    const minimal = parseNarInfo(
      'StorePath: /nix/store/x-y\nURL: nar/a.nar\nNarHash: sha256:abc\nNarSize: 10\nReferences:\nDeriver: unknown-deriver\nFuture: field\n',
    );
    expect(minimal.compression).toBe('bzip2');
    expect(minimal.references).toEqual([]);
    expect(minimal.deriver).toBeUndefined();
    expect(() => parseNarInfo('StorePath: /nix/store/x-y\n')).toThrow(/URL field is missing/);
    expect(() => parseNarInfo('garbage\n')).toThrow(/line 1/);
    expect(() => parseNarInfo('StorePath: /nix/store/x-y\nURL: u\nNarHash: h\nNarSize: -1\n')).toThrow(
      /NarSize/,
    );
  });

  it('round-trips a narinfo written by real Nix (nix copy --to file://) byte for byte, and matches narInfoFromPathInfo', async () => {
    const paths = await buildDerivations({
      dep: 'echo dep > $out',
      top: '/bin/mkdir $out; echo ${dep} > $out/ref; echo $out > $out/self',
    });
    const dir = mkdtempSync(join(tmpdir(), 'narinfo-'));
    try {
      const top = paths.top as string;
      execFileSync(
        'nix',
        [
          '--extra-experimental-features',
          'nix-command',
          'copy',
          '--to',
          `file://${dir}?compression=zstd`,
          top,
        ],
        { stdio: 'pipe' },
      );
      const nixText = readFileSync(join(dir, narInfoKey(top.slice(11, 43))), 'utf8');
      const parsed = parseNarInfo(nixText);
      expect(renderNarInfo(parsed)).toBe(nixText);
      const [info] = parsePathInfoJson(nixPathInfoJson([top]));
      const ours = narInfoFromPathInfo(info!);
      // Nix keys its NAR by the compressed file hash, niks3 by the NAR hash; Nix also adds FileHash/FileSize.
      expect({ ...ours, url: parsed.url, fileHash: parsed.fileHash, fileSize: parsed.fileSize }).toEqual(
        parsed,
      );
      expect(ours.url).toBe(narKey(info!.narHash));
      expect(ours.references).toEqual([top.slice(11), (paths.dep as string).slice(11)].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('object keys and headers', () => {
  it('derives every key of spec §4.1 and the server accepts each', () => {
    const path = '/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1';
    expect(narInfoKey('26xbg1ndr7hbcncrlf9nhx5is2b25d13')).toBe('26xbg1ndr7hbcncrlf9nhx5is2b25d13.narinfo');
    expect(narInfoKey(path)).toBe('26xbg1ndr7hbcncrlf9nhx5is2b25d13.narinfo');
    expect(listingKey(path)).toBe('26xbg1ndr7hbcncrlf9nhx5is2b25d13.ls');
    const sri = `sha256-${Buffer.alloc(32, 1).toString('base64')}`;
    expect(narKey(sri)).toMatch(/^nar\/[0-9a-z]{52}\.nar\.zst$/);
    expect(narKey('sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh')).toBe(
      'nar/1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh.nar.zst',
    );
    expect(buildLogKey('/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hm_..zlogout.drv')).toBe(
      'log/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hm_..zlogout.drv',
    );
    expect(realisationKey('sha256:abcdef!out')).toBe('realisations/sha256:abcdef!out.doi');
    expect(objectTypeOfKey(narInfoKey(path))).toBe('narinfo');
    expect(objectTypeOfKey(listingKey(path))).toBe('listing');
    expect(objectTypeOfKey(narKey(sri))).toBe('nar');
    expect(objectTypeOfKey('log/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hm_..zlogout.drv')).toBe('build_log');
    expect(objectTypeOfKey('realisations/sha256:abcdef!out.doi')).toBe('realisation');
    for (const bad of [
      '',
      'nix-cache-info',
      'index.html',
      'pins/x',
      '../x.narinfo',
      'log/../x.drv',
      'nar/abc.nar.zst',
      'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.narinfo',
    ]) {
      expect(objectTypeOfKey(bad)).toBeUndefined();
    }
  });

  it('gives the content headers of §4.8', () => {
    expect(objectPutHeaders('nar')).toEqual({ 'Content-Type': 'application/octet-stream' });
    expect(objectPutHeaders('narinfo')).toEqual({
      'Content-Type': 'text/x-nix-narinfo',
      'Content-Encoding': 'zstd',
    });
    expect(objectPutHeaders('listing')).toEqual({
      'Content-Type': 'application/octet-stream',
      'Content-Encoding': 'zstd',
    });
    expect(objectPutHeaders('build_log')).toEqual({
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Encoding': 'zstd',
    });
    expect(objectPutHeaders('realisation')).toEqual({
      'Content-Type': 'application/octet-stream',
      'Content-Encoding': 'zstd',
    });
  });
});
