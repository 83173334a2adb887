/**
 * Build logs (shared/spec/niks3.md §4.6): for a path with a deriver, the local log under
 * `<parent of the store dir>/var/log/nix/drvs/<2 chars>/<rest of the drv name>`, plain or `.bz2`.
 * Sent "when cheap": only logs that exist and are not huge; `.bz2` logs (Nix's default) are
 * decompressed by one `bzip2 -d` process per 500 logs, started before the uploads (not one process
 * per log: each fork costs more CPU than the log's upload). A log that cannot be read only warns;
 * logs never fail a push.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
/** Log files per `bzip2` run (keeps the argument list well under ARG_MAX). */
const BATCH = 500;

/**
 * Reads many build logs: plain ones directly, `.bz2` ones from a private temporary directory: each
 * is copied there as `<i>.bz2` and one `bzip2 -d` per batch of files decompresses them all in
 * place (one process for hundreds of logs, not one per log), started as soon as the reader is made.
 * A file bzip2 cannot decompress is left without output (bzip2 goes on with the next one).
 */
export class BuildLogReader {
  private readonly dir: string | undefined;
  private readonly index = new Map<string, string>();
  private readonly ready: Promise<void>;

  constructor(logs: readonly BuildLogFile[]) {
    const compressed = [...new Map(logs.filter((log) => log.bzip2).map((log) => [log.file, log])).values()];
    if (compressed.length === 0) {
      this.ready = Promise.resolve();
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'nix-cache-logs-'));
    this.dir = dir;
    const inputs: string[] = [];
    compressed.forEach((log, i) => {
      // A link, not a copy: `bzip2 -d -f` reads through it, writes `<i>` beside it and removes only
      // the link (the log itself is never touched). `-f` would pass a file that is not bzip2
      // through as it is, so only files with bzip2's magic are linked.
      const link = join(dir, `${i}.bz2`);
      try {
        if (startsWithBzip2Magic(log.file)) {
          symlinkSync(log.file, link);
          inputs.push(link);
        }
      } catch {
        // unreadable or no link: read() reports the log as not decompressed
      }
      this.index.set(log.file, join(dir, String(i)));
    });
    const batches: Promise<void>[] = [];
    for (let start = 0; start < inputs.length; start += BATCH) {
      const files = inputs.slice(start, start + BATCH);
      batches.push(
        new Promise<void>((resolve) => {
          const child = spawn('bzip2', ['-d', '-f', '-q', '--', ...files], { stdio: 'ignore' });
          child.on('error', () => resolve());
          child.on('close', () => resolve());
        }),
      );
    }
    this.ready = Promise.all(batches).then(() => undefined);
  }

  /** The log text, decompressed; rejects when it cannot be read or is too large. */
  async read(log: BuildLogFile): Promise<Buffer> {
    if (!log.bzip2) return readFile(log.file);
    await this.ready;
    const file = this.index.get(log.file);
    if (!file) throw new Error(`internal: ${log.file} was not given to the log reader`);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      throw new Error(`bzip2 could not decompress ${log.file} (is bzip2 installed?)`);
    }
    if (size > MAX_DECOMPRESSED_LOG_BYTES)
      throw new Error(`${log.file} is larger than ${MAX_DECOMPRESSED_LOG_BYTES >> 20} MiB decompressed`);
    return readFile(file);
  }

  /** Removes the temporary directory (after the uploads). */
  async close(): Promise<void> {
    if (!this.dir) return;
    await this.ready;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const BZIP2_MAGIC = Buffer.from('BZh');

function startsWithBzip2Magic(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(3);
    return readSync(fd, head, 0, 3, 0) === 3 && head.equals(BZIP2_MAGIC);
  } finally {
    closeSync(fd);
  }
}
