/**
 * Local build logs (niks3 spec §4.6): `<parent of the store dir>/var/log/nix/drvs/<2 chars>/<rest>`
 * of the deriver's base name, plain or `.bz2` (Nix's default). A `.bz2` log is decompressed with the
 * `bzip2` program (Node has no bzip2), capped at 1 GiB like the Go client.
 */
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NIX_STORE_DIR, storePathBaseName } from './store-path.js';

export const BUILD_LOG_LIMIT_BYTES = 1024 * 1024 * 1024;

export interface BuildLogOptions {
  readonly storeDir?: string;
  /** Override the log directory (default `<dirname(storeDir)>/var/log/nix/drvs`). */
  readonly logDir?: string;
  /** Cap on the decompressed size; longer logs are truncated (default 1 GiB). */
  readonly maxBytes?: number;
  /** The bzip2 program (default `bzip2`). */
  readonly bzip2?: string;
}

export interface BuildLogFile {
  readonly path: string;
  readonly compression: 'none' | 'bzip2';
}

export function buildLogDir(storeDir: string = NIX_STORE_DIR): string {
  return join(dirname(storeDir.replace(/\/+$/, '')), 'var', 'log', 'nix', 'drvs');
}

/** The local log file of a deriver (`…drv` full path or base name), or undefined when there is none. */
export async function findBuildLog(
  deriver: string,
  options: BuildLogOptions = {},
): Promise<BuildLogFile | undefined> {
  const base = storePathBaseName(deriver);
  if (base.length < 3) return undefined;
  const dir = options.logDir ?? buildLogDir(options.storeDir);
  const plain = join(dir, base.slice(0, 2), base.slice(2));
  for (const [path, compression] of [
    [plain, 'none'],
    [`${plain}.bz2`, 'bzip2'],
  ] as const) {
    try {
      if ((await stat(path)).isFile()) return { path, compression };
    } catch {
      // not there
    }
  }
  return undefined;
}

function bunzip(
  file: string,
  program: string,
  maxBytes: number,
): Promise<{ data: Buffer; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['-dc', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (truncated) return;
      const room = maxBytes - size;
      if (chunk.length >= room) {
        chunks.push(chunk.subarray(0, room));
        size += room;
        truncated = chunk.length > room;
        if (truncated) child.kill();
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString('utf8');
    });
    child.on('error', (error) =>
      reject(new Error(`could not run ${program} to decompress ${file}: ${error.message}`, { cause: error })),
    );
    child.on('close', (code) => {
      if (code !== 0 && !truncated)
        reject(new Error(`${program} could not decompress ${file} (exit code ${code}): ${stderr.trim()}`));
      else resolve({ data: Buffer.concat(chunks, size), truncated });
    });
  });
}

/** Reads (and decompresses) a deriver's local build log; undefined when it has none. */
export async function readBuildLog(
  deriver: string,
  options: BuildLogOptions = {},
): Promise<{ file: BuildLogFile; data: Buffer; truncated: boolean } | undefined> {
  const file = await findBuildLog(deriver, options);
  if (!file) return undefined;
  const maxBytes = options.maxBytes ?? BUILD_LOG_LIMIT_BYTES;
  if (file.compression === 'bzip2')
    return { file, ...(await bunzip(file.path, options.bzip2 ?? 'bzip2', maxBytes)) };
  const data = await readFile(file.path);
  return data.length > maxBytes
    ? { file, data: data.subarray(0, maxBytes), truncated: true }
    : { file, data, truncated: false };
}
