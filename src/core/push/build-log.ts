/**
 * Build logs (shared/spec/niks3.md §4.6): for a path with a deriver, the local log under
 * `<parent of the store dir>/var/log/nix/drvs/<2 chars>/<rest of the drv name>`, plain or `.bz2`.
 * Sent "when cheap": only logs that exist, are not huge, and (for `.bz2`) when `bzip2` can be run.
 * A log that cannot be read only warns; logs never fail a push.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { storePathBaseName } from '../nix/store-path.js';
import { OBJECT_KEY_PATTERNS } from '../nix/object-keys.js';

/** Logs larger than this (on disk) are not sent. */
export const MAX_BUILD_LOG_BYTES = 64 * 1024 * 1024;

export interface BuildLogFile {
  /** `log/<drv basename>`. */
  readonly key: string;
  readonly file: string;
  readonly bzip2: boolean;
}

export type BuildLogFinder = (deriver: string) => BuildLogFile | undefined;

/** A finder for logs under the Nix state dir next to `storeDir` (`/nix/store` -> `/nix/var/log/nix/drvs`). */
export function localBuildLogFinder(storeDir: string, logDir?: string): BuildLogFinder {
  const base = logDir ?? join(dirname(storeDir.replace(/\/+$/, '')), 'var', 'log', 'nix', 'drvs');
  return (deriver) => {
    const name = storePathBaseName(deriver);
    const key = `log/${name}`;
    if (name.length < 3 || !OBJECT_KEY_PATTERNS.build_log.test(key)) return undefined;
    const plain = join(base, name.slice(0, 2), name.slice(2));
    for (const [file, bzip2] of [
      [plain, false],
      [`${plain}.bz2`, true],
    ] as const) {
      try {
        const st = statSync(file);
        if (st.isFile() && st.size <= MAX_BUILD_LOG_BYTES) return { key, file, bzip2 };
      } catch {
        // not there
      }
    }
    return undefined;
  };
}

/** The log text, decompressed; rejects when it cannot be read or is over the cap. */
export async function readBuildLog(log: BuildLogFile): Promise<Buffer> {
  if (!log.bzip2) return readFile(log.file);
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn('bzip2', ['-dc', log.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 4 * MAX_BUILD_LOG_BYTES) {
        child.kill('SIGKILL');
        return;
      }
      chunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new Error(`could not run bzip2 for ${log.file}: ${error.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new Error(`bzip2 -dc ${log.file} failed (${size > 4 * MAX_BUILD_LOG_BYTES ? 'log too large' : stderr.trim() || `exit ${code}`})`));
    });
  });
}
