/**
 * A throwaway PostgreSQL 15 cluster for tests: initdb + pg_ctl as the `postgres` OS user, in a temp
 * directory, on a free port of 127.0.0.1, with its unix socket in that directory. TCP logins need a
 * password (scram-sha-256), so a wrong password really fails; one login role and its database are
 * created for the test.
 *
 * ```ts
 * const db = await startPostgres({ password: 's3cret-pw' });
 * db.url()                         // postgres://niks3:s3cret-pw@127.0.0.1:PORT/niks3?sslmode=disable
 * await db.stop();
 * ```
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const BIN = '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** Directory of the unix socket. */
  readonly socketDir: string;
  /** A connection URL for the test role (sslmode=disable unless overridden). */
  url(overrides?: {
    user?: string;
    password?: string;
    database?: string;
    port?: number;
    query?: string;
  }): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function asPostgres(args: readonly string[]): void {
  execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe' });
}

/** Starts a cluster; call stop() when done (also on failure). */
export async function startPostgres(
  options: { user?: string; password?: string; database?: string } = {},
): Promise<TestPostgres> {
  const user = options.user ?? 'niks3';
  const password = options.password ?? 'test-password-1';
  const database = options.database ?? 'niks3';
  const dir = mkdtempSync(join(tmpdir(), 'nix-cache-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  mkdirSync(socketDir);
  chownSync(socketDir, uid, gid);
  const port = await freePort();
  let started = false;
  try {
    asPostgres([
      `${BIN}/initdb`,
      '-D',
      data,
      '-U',
      'postgres',
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    asPostgres([
      `${BIN}/pg_ctl`,
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-w',
      '-o',
      `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
      'start',
    ]);
    started = true;
    const admin = new pg.Client({ host: socketDir, port, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE "${user}" LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
      await admin.query(`CREATE DATABASE "${database}" OWNER "${user}"`);
    } finally {
      await admin.end();
    }
  } catch (error) {
    if (started) asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', 'stop']);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  writeFileSync(join(dir, 'README'), 'throwaway PostgreSQL cluster of a nix-cache test\n');
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    database,
    socketDir,
    url(o = {}) {
      const pw = encodeURIComponent(o.password ?? password);
      return `postgres://${encodeURIComponent(o.user ?? user)}:${pw}@127.0.0.1:${o.port ?? port}/${encodeURIComponent(o.database ?? database)}?${o.query ?? 'sslmode=disable'}`;
    },
    async stop() {
      try {
        asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      await Promise.resolve();
    },
  };
}
