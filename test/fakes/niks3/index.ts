/**
 * A faithful fake of the niks3 binary-cache server (v1.7.0, or HEAD with the
 * post-1.7.0 features), following `shared/spec/niks3.md` §10 and every route of §3.
 *
 * It runs three HTTP listeners on 127.0.0.1:
 *
 * - `url`: the niks3 API (auth, pending closures, multipart, sign, complete, GC,
 *   pins, cache-config, cache-stats, health, metrics, root; optional read proxy);
 * - the S3 endpoint that its presigned URLs point at (SigV4 checked, expiry on the
 *   fake's clock, S3/R2 rules for PUTs and multipart);
 * - `publicUrl`: anonymous reads of the bucket, as the R2 custom domain serves them,
 *   so a real `nix copy --from <publicUrl>` or substituter works.
 *
 * State is in memory ({@link Niks3State}); objects are files under `dataDir`.
 * Tests seed and read the state, assert on the request log, inject faults, and move
 * the clock. The demo and the CLI's local mode start the same fake.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectStore, type StoredObject } from '../s3-store/object-store.js';
import { presignUrl, type SigV4Credentials } from '../s3-store/sigv4-presign.js';
import { apiHandler, publicHandler } from './api-server.js';
import { featuresOf, type Niks3Context, type ResolvedConfig } from './context.js';
import { Niks3Faults, type FaultTarget } from './faults.js';
import { gcTaskJson } from './gc.js';
import { FakeListener, type RequestLogEntry } from './listener.js';
import {
  OidcValidator,
  providersFromConfigDocument,
  type OidcConfigDocument,
  type OidcProviderOptions,
} from './oidc.js';
import { s3Handler } from './s3-endpoint.js';
import { generateSigningKey, parseSigningKey, type SigningKey } from './signing.js';
import { Niks3State, type GcTask } from './state.js';

export type { FaultTarget, GcFailure, GcPhase, Niks3FaultRule } from './faults.js';
export { Niks3Faults } from './faults.js';
export type { RequestLogEntry } from './listener.js';
export type { OidcConfigDocument, OidcProviderOptions } from './oidc.js';
export { globMatch } from './oidc.js';
export {
  narinfoFingerprint,
  parseSigningKey,
  signFingerprint,
  signNarinfo,
  generateSigningKey,
} from './signing.js';
export type { SigningKey } from './signing.js';
export type {
  ClosureRow,
  CommittedObject,
  GcStats,
  GcTask,
  MultipartRegistration,
  PendingClosure,
  PendingObject,
  PinRow,
} from './state.js';
export { Niks3State } from './state.js';
export type { StoredObject } from '../s3-store/object-store.js';

/** Settings of the fake. Everything is optional. */
export interface FakeNiks3Options {
  /** Static API token (at least 36 characters, as the real server requires). Default: random. */
  apiToken?: string;
  /** Nix secret keys `name:base64` (32-byte seed or 64-byte seed ‖ public). Default: one generated key `niks3-test-1`. Pass `[]` for a server without keys (narinfos then get no signatures). */
  signingKeys?: string[];
  /**
   * OIDC providers (the server accepts their RS256/… JWTs besides the API token).
   * Discovery (`<issuer>/.well-known/openid-configuration`) runs at startup unless
   * `jwksUrl` is given. `[]` is refused, as niks3 refuses a config with no providers.
   */
  oidc?: OidcProviderOptions[];
  /** Alternatively, the niks3 OIDC config file itself (object or JSON text), e.g. one the deploy code generated. */
  oidcConfig?: OidcConfigDocument | string;
  /** `allow_insecure` for `oidc` (http issuers such as `http://127.0.0.1:PORT`). Default true. */
  oidcAllowInsecure?: boolean;
  /** Where objects are stored. Default: a fresh temporary directory, removed on close. */
  dataDir?: string;
  /** Public read URL announced in cache-config and used by `GET /`: `'self'` (default) = the fake's own public URL; `''` = unset (`--cache-url` not given). */
  cacheUrl?: string;
  /** The server's clock in ms (presigned URL expiry, GC ages, timestamps, OIDC exp/nbf). Default `Date.now`. */
  now?: () => number;
  /** Lifetime of presigned URLs (real: 5 h). */
  presignTtlMs?: number;
  /** Which niks3 to model: `'1.7.0'` or `'head'` (default; adds the post-1.7.0 features). */
  version?: '1.7.0' | 'head';
  /** Serve the bucket through the API listener too (`--enable-read-proxy`). Default false. */
  readProxy?: boolean;
  /** Bucket name in presigned URLs. Default `niks3`. */
  bucket?: string;
  /** Listen address. Default `127.0.0.1`. */
  host?: string;
  /** Fixed ports (0 = any free port, the default). */
  ports?: { api?: number; s3?: number; public?: number };
  /** JSON body limits (real: 128 MiB for create/sign, 8 MiB for multipart routes). */
  bodyLimits?: { pendingClosure?: number; multipart?: number };
  /** Waiting for fresh tombstones in create (real: poll 1 s while marked < 30 s ago). */
  tombstoneWait?: { pollMs?: number; maxAgeMs?: number };
  /**
   * A slow create: the server's work per requested object (0 = none), and its write timeout (real:
   * 60 s; 0 = none): a create whose handler ran longer gets its connection closed, no answer.
   */
  createWork?: { perObjectMs?: number; writeTimeoutMs?: number };
  /** S3 multipart completion rules: min size of non-last parts (5 MiB) and R2's equal-size rule (on). */
  multipart?: { minPartSize?: number; requireEqualParts?: boolean };
  /** Pause after each GC phase, so a running task can be observed (default 5 ms). */
  gcPhaseDelayMs?: number;
  /** Seed of the fault injector's PRNGs (default 1). */
  faultSeed?: number;
  /** Server log lines (OIDC refusal reasons, GC and abort errors). Default: silent. */
  log?: (line: string) => void;
}

/** A running fake. */
export interface FakeNiks3 {
  /** API base, e.g. `http://127.0.0.1:PORT` (no trailing slash). */
  readonly url: string;
  /** Public read base (no trailing slash): `nix-cache-info`, narinfos, `nar/…`, `.ls`, `log/…`, `pins/…`. */
  readonly publicUrl: string;
  /** The S3 endpoint that presigned URLs point at (path style: `<s3Url>/<bucket>/<key>`). */
  readonly s3Url: string;
  readonly bucket: string;
  readonly apiToken: string;
  /** `name:base64pub`, in key order. */
  readonly publicKeys: string[];
  /** `name:base64secret`, in key order (the fake's own keys, for tests). */
  readonly secretKeys: string[];
  /** The substituter URL announced in cache-config ('' when unset). */
  readonly cacheUrl: string;
  readonly version: '1.7.0' | 'head';
  readonly dataDir: string;
  /** The "database": objects, closures, pending sessions, multipart registrations, pins, GC task. */
  readonly state: Niks3State;
  /** The object store behind the S3 and public listeners. */
  readonly store: ObjectStore;
  /** Every request to every listener, in arrival order. */
  readonly requests: RequestLogEntry[];
  readonly faults: Niks3Faults;
  /** The fake's clock (ms). */
  now(): number;
  /** Moves the clock to `ms` (it keeps running from there). */
  setNow(ms: number): void;
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void;
  /** Keys present in the store, sorted. */
  objectKeys(): string[];
  /** Writes an object straight into the store (seeding; no session, no DB row). */
  putObject(
    key: string,
    body: Buffer | string,
    headers?: { contentType?: string; contentEncoding?: string },
  ): Promise<StoredObject>;
  /** Reads an object's bytes from the store (as stored, not decompressed); undefined if missing. */
  getObject(key: string): Promise<Buffer | undefined>;
  /** The GC task as `/api/gc/status` would show it, or undefined before the first run. */
  gcStatus(): Record<string, unknown> | undefined;
  /** Resolves when no GC task is running (returns the latest task). */
  waitForGc(timeoutMs?: number): Promise<GcTask | undefined>;
  /** Refuse connections on all listeners (or one), keeping state. */
  down(target?: FaultTarget): Promise<void>;
  /** Listen again on the same ports. */
  up(target?: FaultTarget): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_TTL_MS = 5 * 60 * 60 * 1000;

function validateToken(token: string): void {
  if (token.length < 36) {
    throw new Error(`API token must be at least 36 characters long (got ${token.length})`);
  }
}

/** Starts a fake niks3 (API, S3 endpoint and public read URL). */
export async function startFakeNiks3(opts: FakeNiks3Options = {}): Promise<FakeNiks3> {
  const apiToken = opts.apiToken ?? randomBytes(24).toString('hex');
  validateToken(apiToken);
  const keys: SigningKey[] =
    opts.signingKeys === undefined
      ? [generateSigningKey('niks3-test-1')]
      : opts.signingKeys.map(parseSigningKey);
  const version = opts.version ?? 'head';
  const log = opts.log ?? ((): void => undefined);

  let offset = 0;
  const baseNow = opts.now ?? Date.now;
  const now = (): number => baseNow() + offset;

  let oidc: OidcValidator | undefined;
  if (opts.oidc !== undefined && opts.oidcConfig !== undefined) {
    throw new Error('give either oidc or oidcConfig, not both');
  }
  if (opts.oidcConfig !== undefined) {
    const { providers, allowInsecure } = providersFromConfigDocument(opts.oidcConfig);
    oidc = await OidcValidator.create(providers, allowInsecure, now);
  } else if (opts.oidc !== undefined) {
    oidc = await OidcValidator.create(opts.oidc, opts.oidcAllowInsecure ?? true, now);
  }

  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'fake-niks3-')));
  const store = await ObjectStore.open({ dir: dataDir, now });
  const state = new Niks3State();
  const requests: RequestLogEntry[] = [];
  const faults = new Niks3Faults(opts.faultSeed ?? 1);
  const host = opts.host ?? '127.0.0.1';
  const bucket = opts.bucket ?? 'niks3';
  const creds: SigV4Credentials = {
    accessKeyId: 'FAKE' + randomBytes(8).toString('hex').toUpperCase(),
    secretAccessKey: randomBytes(20).toString('base64'),
    region: 'auto',
  };

  const config: ResolvedConfig = {
    version,
    features: featuresOf(version),
    apiToken,
    bucket,
    cacheUrl: '', // set once the public listener has a port
    readProxy: opts.readProxy ?? false,
    presignTtlMs: opts.presignTtlMs ?? DEFAULT_TTL_MS,
    singlePutMaxNarSize: 10 * 1024 * 1024,
    bodyLimits: {
      pendingClosure: opts.bodyLimits?.pendingClosure ?? 128 * 1024 * 1024,
      multipart: opts.bodyLimits?.multipart ?? 8 * 1024 * 1024,
    },
    tombstoneWait: {
      pollMs: opts.tombstoneWait?.pollMs ?? 1000,
      maxAgeMs: opts.tombstoneWait?.maxAgeMs ?? 30_000,
    },
    createWork: {
      perObjectMs: opts.createWork?.perObjectMs ?? 0,
      writeTimeoutMs: opts.createWork?.writeTimeoutMs ?? 0,
    },
    multipartRules: {
      minPartSize: opts.multipart?.minPartSize ?? 5 * 1024 * 1024,
      requireEqualParts: opts.multipart?.requireEqualParts ?? true,
    },
    gcPhaseDelayMs: opts.gcPhaseDelayMs ?? 5,
  };

  const listeners: Record<FaultTarget, FakeListener | undefined> = {
    api: undefined,
    s3: undefined,
    public: undefined,
  };
  const ctx: Niks3Context = {
    config,
    state,
    store,
    keys,
    oidc,
    faults,
    now,
    presign: (key, query) =>
      presignUrl(creds, {
        method: 'PUT',
        endpoint: listeners.s3!.url,
        bucket,
        key,
        query: query ?? {},
        now: now(),
        expiresSeconds: Math.max(1, Math.floor(config.presignTtlMs / 1000)),
      }),
    log,
    closed: false,
  };

  const common = { host, log: requests, faults, now, warn: log };
  listeners.s3 = new FakeListener({
    ...common,
    target: 's3',
    port: opts.ports?.s3 ?? 0,
    handler: s3Handler(ctx, creds),
  });
  listeners.public = new FakeListener({
    ...common,
    target: 'public',
    port: opts.ports?.public ?? 0,
    handler: publicHandler(ctx),
  });
  listeners.api = new FakeListener({
    ...common,
    target: 'api',
    port: opts.ports?.api ?? 0,
    handler: apiHandler(ctx, requests),
  });
  const all = (): FakeListener[] => [listeners.api!, listeners.s3!, listeners.public!];
  try {
    for (const l of all()) await l.start();
  } catch (err) {
    for (const l of all()) await l.stop();
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }

  const publicUrl = listeners.public.url;
  config.cacheUrl = opts.cacheUrl === undefined || opts.cacheUrl === 'self' ? publicUrl : opts.cacheUrl;

  // Bucket initialisation (spec §1.6).
  if (!store.has('nix-cache-info')) {
    const storeDir = process.env['NIX_STORE_DIR'] ?? '/nix/store';
    await store.put('nix-cache-info', `StoreDir: ${storeDir}\nWantMassQuery: 1\nPriority: 30\n`, {
      contentType: 'text/plain',
    });
  }
  if (config.cacheUrl !== '') {
    await store.put('index.html', landingPage(config.cacheUrl, keys), {
      contentType: 'text/html; charset=utf-8',
    });
  }

  const down = async (target?: FaultTarget): Promise<void> => {
    for (const l of all()) if (target === undefined || l === listeners[target]) await l.takeDown();
  };
  const up = async (target?: FaultTarget): Promise<void> => {
    for (const l of all()) if (target === undefined || l === listeners[target]) await l.bringUp();
  };
  faults.bind({ down, up });

  let closed = false;
  return {
    url: listeners.api.url,
    publicUrl,
    s3Url: listeners.s3.url,
    bucket,
    apiToken,
    publicKeys: keys.map((k) => k.publicKey),
    secretKeys: keys.map((k) => k.secret),
    cacheUrl: config.cacheUrl,
    version,
    dataDir,
    state,
    store,
    requests,
    faults,
    now,
    setNow(ms: number): void {
      offset = ms - baseNow();
    },
    advance(ms: number): void {
      offset += ms;
    },
    objectKeys: () => store.keys(),
    putObject: (key, body, headers = {}) =>
      store.put(key, body, { contentType: headers.contentType, contentEncoding: headers.contentEncoding }),
    getObject: async (key) => (store.has(key) ? store.readBuffer(key) : undefined),
    gcStatus: () => (state.gc.task === undefined ? undefined : gcTaskJson(state.gc.task)),
    async waitForGc(timeoutMs = 10_000): Promise<GcTask | undefined> {
      const deadline = Date.now() + timeoutMs;
      while (state.gc.task?.state === 'running') {
        if (Date.now() > deadline) throw new Error('GC still running');
        await new Promise((r) => setTimeout(r, 5));
      }
      return state.gc.task;
    },
    down,
    up,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      ctx.closed = true;
      faults.clear();
      for (const l of all()) await l.stop();
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** A small landing page, like the one niks3 uploads to `index.html` when `--cache-url` is set. */
function landingPage(cacheUrl: string, keys: readonly SigningKey[]): string {
  const pub = keys.map((k) => k.publicKey).join(' ');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Nix binary cache</title></head>
<body>
<h1>Nix binary cache</h1>
<p>Substituter: <code>${htmlEscape(cacheUrl)}</code></p>
<p>Public keys: <code>${htmlEscape(pub)}</code></p>
<pre>extra-substituters = ${htmlEscape(cacheUrl)}
extra-trusted-public-keys = ${htmlEscape(pub)}</pre>
<p id="stats" data-src="api/cache-stats"></p>
</body></html>
`;
}
