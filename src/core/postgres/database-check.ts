/**
 * Checks a PostgreSQL connection string (niks3's NIKS3_DB) before it is handed to the server:
 * connect with `pg`, run `SELECT 1`, disconnect. TLS follows the URL's `sslmode` with libpq's
 * meaning (what niks3's Go driver does): disable/allow = plain; prefer (the default) = TLS, falling
 * back to plain when the server has none; require = TLS without certificate checks; verify-ca =
 * chain only; verify-full = chain and host name. Messages never contain the password: the URL is
 * shown as `postgres://user@host:port/db` and the password is scrubbed from any driver text.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { ConfigurationError } from '../errors.js';

export interface DatabaseTarget {
  readonly user: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly sslmode: string;
  readonly sslrootcert: string | undefined;
  readonly channelBinding: boolean;
  /** The `options` parameter (e.g. Neon's `endpoint=...`). */
  readonly options: string | undefined;
  /** The URL without the password, for messages. */
  readonly shown: string;
}

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** Parses a postgres:// URL. Throws a ConfigurationError (without the URL) when it is not one. */
export function parseDatabaseUrl(text: string): DatabaseTarget {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ConfigurationError(
      "Input 'database-url' is not a valid URL: expected postgres://USER:PASSWORD@HOST[:PORT]/DATABASE[?sslmode=require].",
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigurationError("Input 'database-url' must start with postgres:// or postgresql://.");
  }
  const params = url.searchParams;
  const host = params.get('host') ?? url.hostname.replace(/^\[|\]$/g, '');
  if (!host)
    throw new ConfigurationError(
      "Input 'database-url' has no host: expected postgres://USER:PASSWORD@HOST[:PORT]/DATABASE.",
    );
  const sslmode = params.get('sslmode') ?? 'prefer';
  if (!SSL_MODES.includes(sslmode)) {
    throw new ConfigurationError(
      `Input 'database-url' has sslmode=${sslmode}: expected one of ${SSL_MODES.join(', ')}.`,
    );
  }
  const user = decodeURIComponent(url.username);
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || user;
  const port = Number(params.get('port') ?? (url.port || '5432'));
  return {
    user,
    password: decodeURIComponent(url.password),
    host,
    port,
    database,
    sslmode,
    sslrootcert: params.get('sslrootcert') ?? undefined,
    channelBinding: params.get('channel_binding') === 'require',
    options: params.get('options') ?? undefined,
    shown: `${url.protocol}//${user ? `${user}@` : ''}${host.includes(':') ? `[${host}]` : host}:${port}/${database}`,
  };
}

function tlsOptions(target: DatabaseTarget): ConnectionOptions | false {
  const ca =
    target.sslrootcert && target.sslrootcert !== 'system'
      ? readFileSync(target.sslrootcert, 'utf8')
      : undefined;
  switch (target.sslmode) {
    case 'disable':
    case 'allow':
      return false;
    case 'prefer':
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { ...(ca ? { ca } : {}), checkServerIdentity: () => undefined };
    default:
      return ca ? { ca } : {};
  }
}

export interface DatabaseCheckResult {
  readonly tls: boolean;
  readonly serverVersion: string;
}

/** Connects, runs `SELECT 1`, disconnects. Throws a ConfigurationError that says what to fix. */
export async function checkDatabase(
  url: string,
  options: { timeoutMs?: number } = {},
): Promise<DatabaseCheckResult> {
  const target = parseDatabaseUrl(url);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const attempt = async (ssl: ConnectionOptions | false): Promise<DatabaseCheckResult> => {
    const client = new pg.Client({
      user: target.user,
      password: target.password,
      host: target.host,
      port: target.port,
      database: target.database,
      ssl,
      enableChannelBinding: target.channelBinding,
      ...(target.options ? { options: target.options } : {}),
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      application_name: 'nix-cache provision check',
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const result = await client.query<{ ok: number; version: string }>(
        "SELECT 1 AS ok, current_setting('server_version') AS version",
      );
      if (result.rows[0]?.ok !== 1) throw new Error('SELECT 1 did not answer 1');
      return { tls: ssl !== false, serverVersion: result.rows[0]?.version ?? '?' };
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  try {
    try {
      return await attempt(tlsOptions(target));
    } catch (error) {
      // libpq's prefer: when the server offers no TLS, connect without it.
      if (target.sslmode === 'prefer' && /does not support SSL/i.test(String((error as Error)?.message)))
        return await attempt(false);
      throw error;
    }
  } catch (error) {
    throw new ConfigurationError(describeFailure(error, target, timeoutMs));
  }
}

function describeFailure(error: unknown, target: DatabaseTarget, timeoutMs: number): string {
  const e = error as { code?: string; message?: string };
  let reason = scrub(String(e?.message ?? error), target);
  let fix = 'Check database-url (NIKS3_DB).';
  switch (e?.code) {
    case '28P01':
    case '28000':
      fix = 'Check the user name and password in database-url (NIKS3_DB).';
      break;
    case '3D000':
      fix = 'Check the database name in database-url, or create the database.';
      break;
    case 'ECONNREFUSED':
      reason = `nothing accepts connections on ${target.host}:${target.port}`;
      fix = 'Check the host and port in database-url, and that the database server is running.';
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      reason = `the host name ${target.host} does not resolve`;
      fix = 'Check the host in database-url.';
      break;
    default:
      if (/timeout/i.test(reason)) {
        reason = `no answer within ${Math.round(timeoutMs / 1000)} s`;
        fix =
          'Check that the database host is reachable from this runner (Neon computes may take a few seconds to wake).';
      } else if (/does not support SSL/i.test(reason)) {
        fix = `The URL asks for TLS (sslmode=${target.sslmode}) but the server offers none: use a TLS endpoint, or sslmode=disable only for a local database.`;
      } else if (/certificate|self[- ]signed|SSL|TLS/i.test(reason)) {
        fix = `TLS failed (sslmode=${target.sslmode}): check the server certificate, or sslrootcert in database-url.`;
      }
  }
  return `Input 'database-url': could not run SELECT 1 on ${target.shown}: ${reason}. ${fix}`;
}

/** Removes the password (raw and URL-encoded) from a driver message. */
function scrub(text: string, target: DatabaseTarget): string {
  let out = text;
  for (const form of [target.password, encodeURIComponent(target.password)]) {
    if (form.length >= 1) out = out.split(form).join('***');
  }
  return out;
}
