/**
 * The push's build-log reader: plain logs read as they are, `.bz2` logs decompressed in-process;
 * a log that cannot be decompressed fails alone (its read rejects), the others read.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBuildLog, type BuildLogFile } from '../../src/core/push/build-log.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'log-reader-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function bz2(name: string, text: string): BuildLogFile {
  const file = join(dir, name);
  writeFileSync(file, text);
  execFileSync('bzip2', ['-f', file]);
  return { key: `log/${name}`, file: `${file}.bz2`, bzip2: true };
}

describe('readBuildLog', () => {
  it('reads plain and bzip2 logs, and fails only the log that is not bzip2', async () => {
    const plainFile = join(dir, 'plain.drv');
    writeFileSync(plainFile, 'plain log\n');
    const plain: BuildLogFile = { key: 'log/plain.drv', file: plainFile, bzip2: false };
    const many = Array.from({ length: 30 }, (_, i) => bz2(`ok-${i}.drv`, `log number ${i}\n`.repeat(i + 1)));
    const brokenFile = join(dir, 'broken.drv.bz2');
    writeFileSync(brokenFile, 'not bzip2 at all');
    const broken: BuildLogFile = { key: 'log/broken.drv', file: brokenFile, bzip2: true };
    const missing: BuildLogFile = { key: 'log/missing.drv', file: join(dir, 'missing.bz2'), bzip2: true };

    expect((await readBuildLog(plain)).toString()).toBe('plain log\n');
    for (const [i, log] of many.entries())
      expect((await readBuildLog(log)).toString()).toBe(`log number ${i}\n`.repeat(i + 1));
    await expect(readBuildLog(broken)).rejects.toThrow(/bzip2 could not decompress .*broken\.drv\.bz2/);
    await expect(readBuildLog(missing)).rejects.toThrow(/bzip2 could not decompress .*missing\.bz2/);
    // The originals are left as they were.
    expect(readdirSync(dir).filter((name) => name.endsWith('.bz2'))).toHaveLength(31);
  });
});
