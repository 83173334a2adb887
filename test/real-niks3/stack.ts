/**
 * The real niks3 stack on 127.0.0.1: a throwaway PostgreSQL 15 cluster, versitygw (a real S3 server
 * that checks SigV4, posix backend in a temp dir) and `niks3-server` v1.7.0, configured with the env
 * deploy gives it on Fly (`NIKS3_DB`, `NIKS3_S3_*`, `NIKS3_API_TOKEN`, `NIKS3_CACHE_URL`,
 * `NIKS3_SIGN_KEY_PATHS`, `NIKS3_OIDC_CONFIG`). Public reads (what Nix substitutes from) go
 * straight to the bucket: versitygw serves anonymous GETs once the bucket has a public-read policy,
 * as R2's custom domain serves the bucket in production.
 *
 * ```ts
 * const stack = await startRealNiks3({ oidc: true });
 * stack.url, stack.publicUrl, stack.apiToken, stack.publicKeys, stack.oidc
 * await stack.close();
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import aws4 from 'aws4';
import { generateSigningKey } from '../fakes/niks3/signing.js';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { NIKS3_SERVER, VERSITYGW } from './tools.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** A child process whose output is kept (last 64 KiB) for error messages. */
export interface Child {
  readonly process: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

export function startChild(cmd: string, args: string[], env: Record<string, string>, cwd?: string): Child {
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString('utf8')).slice(-65536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return {
    process: child,
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Polls `url` until it answers `expect` (default 200), or throws with the child's log. */
export async function waitForHttp(
  url: string,
  child: Child,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.process.exitCode !== null)
      throw new Error(`${what} exited (${child.process.exitCode}) before answering:\n${child.log()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until)
      throw new Error(`${what} did not answer ${url} within ${timeoutMs} ms:\n${child.log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** versitygw on a free port with one root account; buckets are made through its S3 API. */
export interface Versitygw {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT` (what NIKS3_S3_ENDPOINT takes). */
  readonly endpoint: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly dir: string;
  /** A SigV4-signed request as the root account (path style). */
  s3(method: string, path: string, body?: string | Buffer): Promise<{ status: number; text: string }>;
  /** Creates a bucket; `publicRead` adds a policy letting anyone GET its objects. */
  createBucket(name: string, options?: { publicRead?: boolean }): Promise<void>;
  /** Keys in a bucket (folders of the posix backend are not listed). */
  listKeys(bucket: string): Promise<string[]>;
  deleteObject(bucket: string, key: string): Promise<void>;
  log(): string;
  close(): Promise<void>;
}

export async function startVersitygw(): Promise<Versitygw> {
  const dir = mkdtempSync(join(tmpdir(), 'nix-cache-versitygw-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  const port = await freePort();
  const accessKey = `AK${randomBytes(9).toString('hex').toUpperCase()}`;
  const secretKey = randomBytes(24).toString('base64url');
  const child = startChild(VERSITYGW, ['--port', `127.0.0.1:${port}`, 'posix', data], {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    ROOT_ACCESS_KEY: accessKey,
    ROOT_SECRET_KEY: secretKey,
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/`, child, 'versitygw');
  } catch (error) {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const s3: Versitygw['s3'] = async (method, path, body) => {
    const signed = aws4.sign(
      {
        host: `127.0.0.1:${port}`,
        method,
        path,
        service: 's3',
        region: 'us-east-1',
        ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/octet-stream' } }),
      },
      { accessKeyId: accessKey, secretAccessKey: secretKey },
    );
    const res = await fetch(`${url}${path}`, {
      method,
      headers: signed.headers as Record<string, string>,
      ...(body === undefined ? {} : { body: new Uint8Array(Buffer.from(body)) }),
    });
    return { status: res.status, text: await res.text() };
  };
  return {
    url,
    endpoint: `127.0.0.1:${port}`,
    accessKey,
    secretKey,
    dir,
    s3,
    async createBucket(name, options = {}) {
      const made = await s3('PUT', `/${name}`, '');
      if (made.status !== 200)
        throw new Error(`versitygw: create bucket ${name}: ${made.status} ${made.text}`);
      if (options.publicRead) {
        const policy = JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: '*',
              Action: ['s3:GetObject'],
              Resource: [`arn:aws:s3:::${name}/*`],
            },
          ],
        });
        const put = await s3('PUT', `/${name}?policy=`, policy);
        if (put.status !== 204 && put.status !== 200)
          throw new Error(`versitygw: public-read policy on ${name}: ${put.status} ${put.text}`);
      }
    },
    async listKeys(bucket) {
      const keys: string[] = [];
      let token: string | undefined;
      for (;;) {
        const query = `list-type=2&max-keys=1000${token ? `&continuation-token=${encodeURIComponent(token)}` : ''}`;
        const res = await s3('GET', `/${bucket}?${query}`);
        if (res.status !== 200) throw new Error(`versitygw: list ${bucket}: ${res.status} ${res.text}`);
        for (const match of res.text.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push(unescapeXml(match[1] ?? ''));
        token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(res.text)?.[1];
        if (!token) return keys.sort();
      }
    },
    async deleteObject(bucket, key) {
      const res = await s3('DELETE', `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`);
      if (res.status !== 204) throw new Error(`versitygw: delete ${key}: ${res.status} ${res.text}`);
    },
    log: () => child.log(),
    async close() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** A running `niks3-server` with its env and files (for tests that read them back). */
export interface Niks3Server {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly env: Readonly<Record<string, string>>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts niks3-server with `env` (plus PATH/HOME and `NIKS3_HTTP_ADDR` on a free loopback port
 * unless given) and waits until `/health` answers.
 */
export async function startNiks3Server(env: Record<string, string>, cwd: string): Promise<Niks3Server> {
  const port = await freePort();
  const full: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: cwd,
    NIKS3_HTTP_ADDR: `127.0.0.1:${port}`,
    ...env,
  };
  const addr = full.NIKS3_HTTP_ADDR ?? '';
  const url = `http://${addr.startsWith(':') ? `127.0.0.1${addr}` : addr}`;
  const child = startChild(NIKS3_SERVER, [], full, cwd);
  try {
    await waitForHttp(`${url}/health`, child, 'niks3-server');
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { url, env: full, log: () => child.log(), stop: () => child.stop() };
}

export interface RealNiks3Options {
  /** Also accept GitHub-style OIDC tokens from a local issuer (audience = the server URL). */
  readonly oidc?: boolean;
  /** Extra env for niks3-server (e.g. NIKS3_S3_RATE_LIMIT). */
  readonly env?: Record<string, string>;
  /** Put a loopback proxy between niks3 (and the presigned URLs) and versitygw. */
  readonly s3Proxy?: (req: ProxiedRequest) => ProxyVerdict;
}

/** A request seen by the S3 proxy. */
export interface ProxiedRequest {
  readonly method: string;
  readonly url: string;
}
/** `undefined`: forward; otherwise answer with this status (S3 XML error `code`). */
export type ProxyVerdict = undefined | { status: number; code: string; retryAfter?: string };

export interface RealNiks3 {
  /** API base (no trailing slash). */
  readonly url: string;
  /** Public read base: the bucket on versitygw, read anonymously. */
  readonly publicUrl: string;
  readonly bucket: string;
  readonly apiToken: string;
  /** `name:base64pub` */
  readonly publicKeys: string[];
  /** `name:base64secret` (for secret scans) */
  readonly secretKeys: string[];
  readonly db: TestPostgres;
  readonly s3: Versitygw;
  /** The S3 endpoint niks3 talks to (versitygw or the proxy in front of it). */
  readonly s3Endpoint: string;
  readonly oidc: OidcIssuer | undefined;
  readonly server: Niks3Server;
  readonly dir: string;
  /** Requests the S3 proxy saw (with `s3Proxy`), and what it answered. */
  readonly proxied: { method: string; url: string; status: number }[];
  /** Keys in the bucket, sorted. */
  objectKeys(): Promise<string[]>;
  /** A SQL query on niks3's database. */
  query<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** Writes the signing key and returns the env niks3-server gets on Fly, mapped to this stack. */
export async function startRealNiks3(options: RealNiks3Options = {}): Promise<RealNiks3> {
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), 'nix-cache-real-niks3-'));
    cleanups.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    const dbPassword = randomBytes(12).toString('hex');
    const [db, s3, oidc] = await Promise.all([
      startPostgres({ password: dbPassword }),
      startVersitygw(),
      options.oidc ? startOidcIssuer() : Promise.resolve(undefined),
    ]);
    cleanups.push(
      () => db.stop(),
      () => s3.close(),
    );
    if (oidc) cleanups.push(() => oidc.close());
    const bucket = `niks3-${randomBytes(4).toString('hex')}`;
    await s3.createBucket(bucket, { publicRead: true });

    const proxied: RealNiks3['proxied'] = [];
    let s3Endpoint = s3.endpoint;
    if (options.s3Proxy) {
      const proxy = await startS3Proxy(s3.endpoint, options.s3Proxy, proxied);
      cleanups.push(() => proxy.close());
      s3Endpoint = proxy.endpoint;
    }

    const key = generateSigningKey('niks3-real-1');
    const keyPath = join(dir, 'signing-key');
    writeFileSync(keyPath, `${key.secret}\n`, { mode: 0o600 });
    const apiToken = randomBytes(24).toString('hex');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const publicUrl = `${s3.url}/${bucket}`;
    const env: Record<string, string> = {
      NIKS3_HTTP_ADDR: `127.0.0.1:${port}`,
      NIKS3_DB: db.url(),
      NIKS3_S3_ENDPOINT: s3Endpoint,
      NIKS3_S3_BUCKET: bucket,
      NIKS3_S3_REGION: 'us-east-1',
      NIKS3_S3_ACCESS_KEY: s3.accessKey,
      NIKS3_S3_SECRET_KEY: s3.secretKey,
      NIKS3_S3_USE_SSL: 'false',
      NIKS3_API_TOKEN: apiToken,
      NIKS3_CACHE_URL: publicUrl,
      NIKS3_SIGN_KEY_PATHS: keyPath,
      ...options.env,
    };
    if (oidc) {
      const oidcPath = join(dir, 'oidc.json');
      writeFileSync(
        oidcPath,
        JSON.stringify({
          allow_insecure: true,
          providers: {
            github: {
              issuer: oidc.issuer,
              audience: url,
              bound_claims: { repository_owner_id: ['1000001'] },
            },
          },
        }),
      );
      env.NIKS3_OIDC_CONFIG = oidcPath;
    }
    const server = await startNiks3Server(env, dir);
    cleanups.push(() => server.stop());
    return {
      url,
      publicUrl,
      bucket,
      apiToken,
      publicKeys: [key.publicKey],
      secretKeys: [key.secret],
      db,
      s3,
      s3Endpoint,
      oidc,
      server,
      dir,
      proxied,
      objectKeys: () => s3.listKeys(bucket),
      async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []) {
        const pg = (await import('pg')).default;
        const client = new pg.Client({ connectionString: db.url() });
        await client.connect();
        try {
          return (await client.query(sql, params)).rows as T[];
        } finally {
          await client.end();
        }
      },
      close: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** A pass-through HTTP proxy to versitygw that may answer some requests itself (throttling). */
async function startS3Proxy(
  target: string,
  decide: (req: ProxiedRequest) => ProxyVerdict,
  seen: RealNiks3['proxied'],
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const [host, portText] = target.split(':');
  const server: Server = createServer((req, res) => {
    const verdict = decide({ method: req.method ?? 'GET', url: req.url ?? '/' });
    if (verdict) {
      seen.push({ method: req.method ?? 'GET', url: req.url ?? '/', status: verdict.status });
      req.resume();
      res.writeHead(verdict.status, {
        'content-type': 'application/xml',
        ...(verdict.retryAfter ? { 'retry-after': verdict.retryAfter } : {}),
      });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${verdict.code}</Code><Message>throttled by the test proxy</Message></Error>`,
      );
      return;
    }
    const upstream = httpRequest(
      { host, port: Number(portText), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        seen.push({ method: req.method ?? 'GET', url: req.url ?? '/', status: up.statusCode ?? 0 });
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
