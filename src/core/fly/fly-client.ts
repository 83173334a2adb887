/**
 * The Fly Machines API (and the one GraphQL query it lacks), over `fetch` with the suite's
 * HttpClient (spec fly.md). One instance per run: it owns the Authorization headers built from the
 * token (§2.2), a cookie jar for affinity cookies (§3.1), and the retry policy below.
 *
 * Retry policy (§3.3, §3.4): 408, 429 and 5xx are transient; reads, deletes, secret writes and
 * machine updates are retried; machine create is not (an ambiguous failure may have created the
 * machine, so the applier reconciles with a launch id instead), nor is IP allocation (the applier
 * re-lists). `Retry-After` is honoured when sent (whether Fly sends it is unconfirmed).
 */
import { RemoteError } from '../errors.js';
import {
  DEFAULT_RETRY,
  HttpClient,
  sleep as realSleep,
  type HttpResponse,
  type RetryPolicy,
  type Sleep,
} from '../http.js';
import type { Logger } from '../logger.js';
import { maskSecret } from '../logger.js';
import { graphqlAuthorization, machinesAuthorization, parseFlyToken, tokenPieces } from './auth-header.js';
import { CookieJar } from './cookie-jar.js';
import { flyHint } from './fly-hints.js';
import type {
  FlyApp,
  FlyOrganization,
  IpAssignment,
  Lease,
  Machine,
  MachineRequest,
  SecretInfo,
  SetSecretsResult,
  TokenInfo,
} from './fly-api-types.js';

/** The default statuses and Retry-After cap; more attempts, longer back-off, a deadline. */
export const FLY_RETRY: RetryPolicy = {
  ...DEFAULT_RETRY,
  attempts: 8,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
  deadlineMs: 120_000,
};

export const MACHINES_REMOTE = 'Fly Machines API';
export const GRAPHQL_REMOTE = 'Fly GraphQL API';

export interface FlyClientOptions {
  /** The token as the user has it (`FlyV1 fm2_…`, a bare macaroon list, or a user token). */
  readonly token: string;
  /** Machines API base, e.g. `https://api.machines.dev`. */
  readonly apiUrl: string;
  /** GraphQL endpoint, e.g. `https://api.fly.io/graphql`. */
  readonly graphqlUrl: string;
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  readonly sleep?: Sleep;
  readonly retry?: RetryPolicy;
  /** Per-request timeout (ms) for ordinary calls. */
  readonly timeoutMs?: number;
  /** Timeout (ms) of machine create and update, which may take longer. */
  readonly writeTimeoutMs?: number;
}

export type AppLookup =
  | { readonly kind: 'found'; readonly app: FlyApp }
  | { readonly kind: 'missing' }
  /** 403: the name belongs to an app the token cannot see (another org, or outside a deploy token's scope). */
  | { readonly kind: 'forbidden'; readonly detail: string };

export type WaitOutcome = 'reached' | 'timeout' | 'replaced' | 'missing';

export type LeaseOutcome =
  { readonly kind: 'acquired'; readonly lease: Lease } | { readonly kind: 'held'; readonly detail: string };

export class FlyClient {
  readonly machines: HttpClient;
  readonly graphql: HttpClient;
  readonly jar: CookieJar;
  private readonly writeTimeoutMs: number;

  constructor(options: FlyClientOptions) {
    const token = parseFlyToken(options.token);
    for (const piece of tokenPieces(token)) maskSecret(options.logger, piece);
    const machinesHeader = machinesAuthorization(token);
    const graphqlHeader = graphqlAuthorization(token);
    maskSecret(options.logger, machinesHeader);
    maskSecret(options.logger, graphqlHeader);
    this.jar = new CookieJar();
    const baseFetch = options.fetch ?? fetch;
    const logged = logRequestIds(baseFetch, options.logger);
    const common = {
      logger: options.logger,
      retry: options.retry ?? FLY_RETRY,
      sleep: options.sleep ?? realSleep,
      timeoutMs: options.timeoutMs ?? 30_000,
      hint: flyHint,
    };
    this.machines = new HttpClient({
      ...common,
      remote: MACHINES_REMOTE,
      baseUrl: options.apiUrl,
      fetch: this.jar.wrap(logged),
      headers: () => ({ authorization: machinesHeader }),
    });
    this.graphql = new HttpClient({
      ...common,
      remote: GRAPHQL_REMOTE,
      baseUrl: options.graphqlUrl,
      fetch: logged,
      headers: () => ({ authorization: graphqlHeader }),
    });
    this.writeTimeoutMs = options.writeTimeoutMs ?? 60_000;
  }

  // --- token and organisations (§2.4, §4.1) ---

  /** What the token grants, or undefined when the endpoint does not answer for this token. */
  async currentTokens(): Promise<TokenInfo[] | undefined> {
    const res = await this.machines.request({
      method: 'GET',
      path: '/v1/tokens/current',
      accept: [400, 401, 403, 404],
    });
    if (res.status !== 200) return undefined;
    const tokens = (res.json as { tokens?: unknown } | undefined)?.tokens;
    return Array.isArray(tokens) ? (tokens as TokenInfo[]) : undefined;
  }

  /** The organisations a token can see, through GraphQL. */
  async organizations(): Promise<FlyOrganization[]> {
    const res = await this.graphql.request({
      method: 'POST',
      path: '',
      json: { query: 'query { organizations { nodes { id slug rawSlug name type } } }' },
      idempotent: true,
      operation: 'GraphQL organizations',
    });
    const body = res.json as
      | { data?: { organizations?: { nodes?: FlyOrganization[] } }; errors?: { message?: string }[] }
      | undefined;
    if (body?.errors && body.errors.length > 0) {
      const message = body.errors.map((e) => e.message ?? 'error').join('; ');
      throw new RemoteError({
        remote: GRAPHQL_REMOTE,
        operation: 'GraphQL organizations',
        status: res.status,
        detail: message,
        hint: /authenticated/i.test(message) ? flyHint(401) : 'Set fly-org-slug to the organisation to use',
      });
    }
    return body?.data?.organizations?.nodes ?? [];
  }

  // --- apps (§4.2, §4.3, §4.9) ---

  /**
   * Looks an app up. `notYetAs401`: right after a create, 401 also means "not visible yet" (§3.5).
   */
  async getApp(name: string, notYetAs401 = false): Promise<AppLookup> {
    const res = await this.machines.request({
      method: 'GET',
      path: `/v1/apps/${enc(name)}`,
      accept: notYetAs401 ? [401, 403, 404] : [403, 404],
    });
    if (res.status === 404 || res.status === 401) return { kind: 'missing' };
    if (res.status === 403) return { kind: 'forbidden', detail: detailOf(res) };
    return { kind: 'found', app: res.json as FlyApp };
  }

  /** Creates the app; `taken` when the name exists already (422 name_taken). */
  async createApp(name: string, orgSlug: string, idempotencyKey: string): Promise<'created' | 'taken'> {
    const res = await this.machines.request({
      method: 'POST',
      path: '/v1/apps',
      query: { wait: 'true' },
      // Both spellings of the name field (fly.md §10 Q1); the idempotency key makes a retry safe.
      json: { name, app_name: name, org_slug: orgSlug, idempotency_key: idempotencyKey },
      idempotent: true,
      accept: [422],
      operation: `create app ${name}`,
    });
    return res.status === 422 ? 'taken' : 'created';
  }

  /** Starts deleting the app; `absent` when there is none. */
  async deleteApp(name: string): Promise<'deleting' | 'absent'> {
    const res = await this.machines.request({
      method: 'DELETE',
      path: `/v1/apps/${enc(name)}`,
      query: { force: 'true' },
      accept: [404],
      operation: `delete app ${name}`,
    });
    return res.status === 404 ? 'absent' : 'deleting';
  }

  // --- IPs (§4.6) ---

  async listIps(app: string): Promise<IpAssignment[]> {
    const res = await this.machines.request({
      method: 'GET',
      path: `/v1/apps/${enc(app)}/ip_assignments`,
      operation: `list IPs of ${app}`,
    });
    return ((res.json as { ips?: IpAssignment[] } | undefined)?.ips ?? []).slice();
  }

  async assignIp(app: string, type: 'v6' | 'shared_v4', orgSlug: string): Promise<IpAssignment> {
    const res = await this.machines.request({
      method: 'POST',
      path: `/v1/apps/${enc(app)}/ip_assignments`,
      json: { type, org_slug: orgSlug, region: '', network: '', service_name: '' },
      idempotent: false,
      operation: `allocate ${type} IP for ${app}`,
    });
    return res.json as IpAssignment;
  }

  // --- secrets (§4.5) ---

  /** Sets (string) and unsets (null) secrets in one call; returns the new secrets version. */
  async setSecrets(app: string, values: Record<string, string | null>): Promise<SetSecretsResult> {
    const res = await this.machines.request({
      method: 'POST',
      path: `/v1/apps/${enc(app)}/secrets`,
      json: { values },
      // Setting the same values again is harmless (it only bumps the version).
      idempotent: true,
      operation: `set secrets of ${app}`,
    });
    const body = res.json as { version?: number; Version?: number; secrets?: SecretInfo[] } | undefined;
    const version = body?.version ?? body?.Version;
    if (typeof version !== 'number') {
      throw new RemoteError({
        remote: MACHINES_REMOTE,
        operation: `set secrets of ${app}`,
        status: res.status,
        detail: 'the answer has no secrets version',
      });
    }
    return { version, secrets: body?.secrets ?? [] };
  }

  /**
   * Names and digests of the app's secrets (never values). The secrets store is eventually
   * consistent: right after a write, pass the version it returned as `minVersion` so the answer
   * is at least that new (sent as `min_version` and as fly-go's `version`, fly.md §4.5.2).
   */
  async listSecrets(app: string, minVersion?: number): Promise<SecretInfo[]> {
    const res = await this.machines.request({
      method: 'GET',
      path: `/v1/apps/${enc(app)}/secrets`,
      query: minVersion === undefined ? {} : { min_version: minVersion, version: minVersion },
      operation: `list secrets of ${app}`,
    });
    return ((res.json as { secrets?: SecretInfo[] } | undefined)?.secrets ?? []).slice();
  }

  // --- machines (§4.7) ---

  async listMachines(app: string, metadata?: Record<string, string>): Promise<Machine[]> {
    const query: Record<string, string> = {};
    for (const [key, value] of Object.entries(metadata ?? {})) query[`metadata.${key}`] = value;
    const res = await this.machines.request({ method: 'GET', path: `/v1/apps/${enc(app)}/machines`, query });
    return Array.isArray(res.json) ? (res.json as Machine[]) : [];
  }

  async getMachine(app: string, id: string): Promise<Machine | undefined> {
    const res = await this.machines.request({
      method: 'GET',
      path: `/v1/apps/${enc(app)}/machines/${enc(id)}`,
      accept: [404],
    });
    return res.status === 404 ? undefined : (res.json as Machine);
  }

  /**
   * Creates a machine. Not retried on 408/5xx/network errors: those are ambiguous (the machine may
   * exist), and the caller reconciles by launch id (§3.4). 429 is retried (nothing was done).
   */
  async createMachine(app: string, body: MachineRequest, timeoutMs?: number): Promise<Machine> {
    const res = await this.machines.request({
      method: 'POST',
      path: `/v1/apps/${enc(app)}/machines`,
      json: body,
      idempotent: false,
      timeoutMs: timeoutMs ?? this.writeTimeoutMs,
      operation: `create machine in ${app}`,
    });
    return res.json as Machine;
  }

  /** Replaces a machine's config (full config; the nonce when leased). */
  async updateMachine(
    app: string,
    id: string,
    body: MachineRequest,
    nonce: string | undefined,
  ): Promise<Machine> {
    const res = await this.machines.request({
      method: 'POST',
      path: `/v1/apps/${enc(app)}/machines/${enc(id)}`,
      json: body,
      headers: nonce ? { 'fly-machine-lease-nonce': nonce } : {},
      // A repeat after a lost answer only restarts the machine once more (fly.md §4.7.4).
      idempotent: true,
      timeoutMs: this.writeTimeoutMs,
      operation: `update machine ${id}`,
    });
    return res.json as Machine;
  }

  async destroyMachine(app: string, id: string, nonce: string | undefined): Promise<void> {
    await this.machines.request({
      method: 'DELETE',
      path: `/v1/apps/${enc(app)}/machines/${enc(id)}`,
      query: { force: 'true', kill: 'true' },
      headers: nonce ? { 'fly-machine-lease-nonce': nonce } : {},
      accept: [404],
      operation: `destroy machine ${id}`,
    });
  }

  /** One call of the wait endpoint (timeout clamped to the API's 60 s maximum). */
  async waitForState(
    app: string,
    id: string,
    state: string,
    timeoutSeconds: number,
    version?: string,
  ): Promise<WaitOutcome> {
    const seconds = Math.max(1, Math.min(60, Math.floor(timeoutSeconds)));
    const res = await this.machines.request({
      method: 'GET',
      path: `/v1/apps/${enc(app)}/machines/${enc(id)}/wait`,
      query: { state, timeout: seconds, version },
      accept: [400, 404, 408],
      timeoutMs: (seconds + 15) * 1000,
      operation: `wait for machine ${id} to be ${state}`,
    });
    if (res.status === 200) return 'reached';
    if (res.status === 404) return 'missing';
    if (res.status === 408) return 'timeout';
    const detail = detailOf(res);
    if (/currently replaced|replaced/i.test(detail)) return 'replaced';
    throw new RemoteError({
      remote: MACHINES_REMOTE,
      operation: `wait for machine ${id}`,
      status: 400,
      detail,
    });
  }

  // --- leases (§4.8) ---

  /** Acquires (or, with `nonce`, refreshes) the lease; `held` when someone else holds it (409). */
  async acquireLease(
    app: string,
    id: string,
    ttlSeconds: number,
    description: string,
    nonce?: string,
  ): Promise<LeaseOutcome> {
    const res = await this.machines.request({
      method: 'POST',
      path: `/v1/apps/${enc(app)}/machines/${enc(id)}/lease`,
      // fly-go sends ?ttl=, the API reference a body: send both (fly.md §4.8).
      query: { ttl: ttlSeconds },
      json: { ttl: ttlSeconds, description },
      headers: nonce ? { 'fly-machine-lease-nonce': nonce } : {},
      idempotent: false,
      accept: [409],
      operation: `lease machine ${id}`,
    });
    if (res.status === 409) return { kind: 'held', detail: detailOf(res) };
    const lease = leaseOf(res.json);
    if (!lease)
      throw new RemoteError({
        remote: MACHINES_REMOTE,
        operation: `lease machine ${id}`,
        status: res.status,
        detail: 'the answer has no lease nonce',
      });
    return { kind: 'acquired', lease };
  }

  /** The current lease, or undefined when there is none. */
  async getLease(app: string, id: string): Promise<Lease | undefined> {
    const res = await this.machines.request({
      method: 'GET',
      path: `/v1/apps/${enc(app)}/machines/${enc(id)}/lease`,
      accept: [404],
    });
    return res.status === 404 ? undefined : leaseOf(res.json);
  }

  /** Releases a lease; a lease that already lapsed (`lease not found`) counts as released. */
  async releaseLease(app: string, id: string, nonce: string, timeoutMs?: number): Promise<void> {
    await this.machines.request({
      method: 'DELETE',
      path: `/v1/apps/${enc(app)}/machines/${enc(id)}/lease`,
      headers: { 'fly-machine-lease-nonce': nonce },
      accept: [400, 404, 410],
      ...(timeoutMs === undefined
        ? {}
        : { timeoutMs, retry: { ...FLY_RETRY, attempts: 2, deadlineMs: timeoutMs } }),
      operation: `release the lease of machine ${id}`,
    });
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function detailOf(res: HttpResponse): string {
  const body = res.json as { message?: unknown; error?: unknown } | undefined;
  const text = body?.message ?? body?.error;
  return typeof text === 'string' ? text : res.text.slice(0, 300);
}

/** Reads a lease in fly-go's wrapper `{status, data}` or as a bare object. */
function leaseOf(json: unknown): Lease | undefined {
  if (!json || typeof json !== 'object') return undefined;
  const record = json as { data?: unknown; nonce?: unknown };
  const data = (record.data && typeof record.data === 'object' ? record.data : record) as Partial<Lease>;
  return typeof data.nonce === 'string' && data.nonce ? (data as Lease) : undefined;
}

/** Logs `fly-request-id` of failed calls at debug level, so support can trace them. */
function logRequestIds(fetchFn: typeof fetch, logger: Logger): typeof fetch {
  return async (input, init) => {
    const response = await fetchFn(input, init);
    const id = response.headers.get('fly-request-id');
    if (id && response.status >= 400)
      logger.debug(`Fly: ${init?.method ?? 'GET'} answered ${response.status}, fly-request-id ${id}`);
    return response;
  };
}
