/**
 * Build logs (shared/spec/niks3.md §4.6): for a path with a deriver, the local log under
 * `<parent of the store dir>/var/log/nix/drvs/<2 chars>/<rest of the drv name>`, plain or `.bz2`.
 * Sent "when cheap": only logs that exist and are not huge; `.bz2` logs (Nix's default) are
 * decompressed in-process by `core/compress/bunzip2.ts`, as niks3's own client does: no `bzip2`
 * process, no temporary files (a fork costs more CPU than a small log's upload, and so do the
 * inodes of links and decompressed copies). A log that cannot be read only warns; logs never
 * fail a push.
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bunzip2 } from '../compress/bunzip2.js';
import { errorMessage } from '../errors.js';
import { storePathBaseName, normaliseStoreDir } from '../nix/store-path.js';
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
  const base = logDir ?? join(dirname(normaliseStoreDir(storeDir)), 'var', 'log', 'nix', 'drvs');
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

/** Largest decompressed log that is sent. */
const MAX_DECOMPRESSED_LOG_BYTES = 256 * 1024 * 1024;

/**
 * The log text: a plain log as it is, a `.bz2` one decompressed in this process. Rejects when it
 * cannot be read, is not bzip2 or is too large.
 */
export async function readBuildLog(log: BuildLogFile): Promise<Buffer> {
  if (!log.bzip2) return readFile(log.file);
  try {
    return bunzip2(await readFile(log.file), MAX_DECOMPRESSED_LOG_BYTES);
  } catch (error) {
    throw new Error(`bzip2 could not decompress ${log.file}: ${errorMessage(error)}`);
  }
}
