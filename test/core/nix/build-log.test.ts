import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLogDir, findBuildLog, readBuildLog } from '../../../src/core/nix/build-log.js';
import { buildLogKey } from '../../../src/core/nix/object-keys.js';
import { queryPathInfo } from '../../../src/core/nix/path-info.js';
import { buildDerivations, NIX_TEST_ARGS } from '../../helpers/nix-fixtures.js';

describe('build logs', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'build-log-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('finds and decompresses the .bz2 log Nix kept for a real build, equal to `nix log`', async () => {
    const paths = await buildDerivations({
      noisy: 'echo "line one of the log"; echo "line two ü" >&2; echo x > $out',
    });
    const [info] = await queryPathInfo([paths.noisy as string], { recursive: false });
    const deriver = info?.deriver as string;
    expect(buildLogDir()).toBe('/nix/var/log/nix/drvs');
    const file = await findBuildLog(deriver);
    expect(file?.compression).toBe('bzip2');
    expect(file?.path).toBe(`/nix/var/log/nix/drvs/${deriver.slice(11, 13)}/${deriver.slice(13)}.bz2`);
    const log = await readBuildLog(deriver);
    const text = log?.data.toString('utf8') ?? '';
    expect(text).toContain('line one of the log');
    expect(text).toContain('line two ü');
    const nixLog = execFileSync(
      'nix',
      ['--extra-experimental-features', 'nix-command', 'log', ...NIX_TEST_ARGS, deriver],
      { encoding: 'utf8' },
    );
    expect(text).toBe(nixLog);
    expect(buildLogKey(deriver)).toBe(`log/${deriver.slice(11)}`);
  });

  it('reads plain logs, truncates at the cap and returns undefined when there is no log', async () => {
    const logDir = join(tmp, 'drvs');
    const base = 'abcdabcdabcdabcdabcdabcdabcdabcd-x.drv';
    mkdirSync(join(logDir, 'ab'), { recursive: true });
    writeFileSync(join(logDir, 'ab', base.slice(2)), 'plain log text');
    expect(await readBuildLog(`/nix/store/${base}`, { logDir })).toMatchObject({
      data: Buffer.from('plain log text'),
      truncated: false,
      file: { compression: 'none' },
    });
    expect(await readBuildLog(base, { logDir, maxBytes: 5 })).toMatchObject({
      data: Buffer.from('plain'),
      truncated: true,
    });
    const big = 'y'.repeat(300_000);
    const other = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-big.drv';
    mkdirSync(join(logDir, 'bb'), { recursive: true });
    writeFileSync(join(logDir, 'bb', other.slice(2)), big);
    execFileSync('bzip2', [join(logDir, 'bb', other.slice(2))]);
    const capped = await readBuildLog(other, { logDir, maxBytes: 100_000 });
    expect(capped?.truncated).toBe(true);
    expect(capped?.data.length).toBe(100_000);
    expect((await readBuildLog(other, { logDir }))?.data.toString()).toBe(big);
    expect(await readBuildLog('cccccccccccccccccccccccccccccccc-none.drv', { logDir })).toBeUndefined();
    await expect(readBuildLog(other, { logDir, bzip2: '/no/such/bzip2' })).rejects.toThrow(
      /could not run \/no\/such\/bzip2/,
    );
    expect(await findBuildLog(base, { storeDir: join(tmp, 'store') })).toBeUndefined();
  });
});
