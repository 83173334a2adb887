/**
 * A local stand-in for the parts of the Cloudflare API that nix-cache uses (shared/spec/cloudflare.md
 * §8), plus R2's S3 endpoint. Real HTTP on 127.0.0.1 (ephemeral ports), driven by the real
 * `cloudflare` SDK; used by the tests, the demo and the CLI's local mode.
 *
 * ```ts
 * const cf = await startFakeCloudflare();
 * const account = cf.state.addAccount();
 * const zone = cf.state.addZone({ name: 'example.dev', accountId: account.id });
 * const token = cf.state.addToken();              // R2 write + zone read on every account
 * // SDK: new Cloudflare({ apiToken: token.value, baseURL: cf.url, ... })
 * // S3:  endpoint cf.s3Url('default'), keys cf.state.s3Credentials(token)
 * cf.faults.add({ path: '/r2/buckets', times: 1, action: { status: 429, headers: { 'retry-after': '1' } } });
 * cf.log.writes();                                // requests that could change something
 * await cf.close();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiRoutes, defaultApiSettings, type ApiSettings } from './api-routes.js';
import { CfApiError, send, sendError, sendResult } from './envelope.js';
import { CloudflareFaults, defaultErrors, type CloudflareAnswer, type FaultService } from './faults.js';
import { RequestLog, type LoggedRequest } from './request-log.js';
import { S3Endpoint } from './s3-endpoint.js';
import { sendS3Error, s3ErrorForStatus } from '../s3-store/s3-error.js';
import { FakeCloudflareState, type FakeJurisdiction } from './state.js';

export * from './state.js';
export { CF_CODES, CfApiError } from './envelope.js';
export {
  CloudflareFaults,
  HTML_502,
  type CloudflareFaultAction,
  type CloudflareFaultRule,
  type RateLimitSetting,
} from './faults.js';
export { RequestLog, type LoggedRequest } from './request-log.js';
export type { ApiSettings } from './api-routes.js';

export interface FakeCloudflareOptions {
  /** Path prefix of the API routes (default `/client/v4`); requests without it are accepted too. */
  readonly prefix?: string;
  /** Clock in ms (for custom-domain activation, creation dates and S3 signature times). */
  readonly now?: () => number;
  /** Changes to the default API behaviour switches (see ApiSettings). */
  readonly settings?: Partial<ApiSettings>;
  /** Jurisdictions that get an S3 listener (default: default, eu, us, fedramp). */
  readonly s3Jurisdictions?: readonly FakeJurisdiction[];
}

export interface FakeCloudflare {
  /** API base URL including the prefix, e.g. `http://127.0.0.1:41234/client/v4`: the SDK's baseURL. */
  readonly url: string;
  readonly origin: string;
  readonly state: FakeCloudflareState;
  /** Behaviour switches; may be changed while running. */
  readonly settings: ApiSettings;
  readonly log: RequestLog;
  readonly faults: CloudflareFaults;
  /** The S3 endpoint URL of a jurisdiction (path-style, no trailing slash). */
  s3Url(jurisdiction?: FakeJurisdiction): string;
  close(): Promise<void>;
}

function lowerHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function queryRecord(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    out[key] = all.length === 1 ? (all[0] ?? '') : all;
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  const text = body.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export async function startFakeCloudflare(options: FakeCloudflareOptions = {}): Promise<FakeCloudflare> {
  const prefix = (options.prefix ?? '/client/v4').replace(/\/+$/, '');
  const now = options.now ?? Date.now;
  const state = new FakeCloudflareState(now);
  const settings: ApiSettings = { ...defaultApiSettings(), ...options.settings };
  const log = new RequestLog();
  const faults = new CloudflareFaults(now);
  const routes = new ApiRoutes(state, settings);
  const servers: Server[] = [];

  /** Sends an injected `status` answer: an S3 error, a raw body or an envelope. */
  function answer(
    service: FaultService,
    entry: LoggedRequest,
    res: ServerResponse,
    a: CloudflareAnswer,
  ): void {
    const headers = { ...a.headers };
    entry.fault = `status ${a.status}`;
    entry.status = a.status;
    if (service === 's3') {
      sendS3Error(res, s3ErrorForStatus(a.status), entry.path, headers);
    } else if (a.body !== undefined) {
      send(res, a.status, a.body, headers, a.contentType ?? 'text/html');
    } else {
      sendError(res, new CfApiError(a.status, a.errors ?? defaultErrors(a.status), headers));
    }
  }

  /**
   * Applies the global rate limit and the fault rules; returns true when the request was answered
   * (or dropped) by them. `handle` runs the request for real first when a rule says `afterHandling`.
   */
  async function applyFault(
    service: FaultService,
    entry: LoggedRequest,
    res: ServerResponse,
    req: IncomingMessage,
    handle?: () => void,
  ): Promise<boolean> {
    const limited = service === 'api' ? faults.rateLimitAnswer() : undefined;
    if (limited) {
      answer(service, entry, res, limited);
      return true;
    }
    const query = new URL(entry.rawUrl, 'http://cf.local').search.slice(1);
    const rule = faults.pick({ target: service, method: entry.method, path: entry.path, query });
    if (rule === undefined) return false;
    const action = rule.action;
    if (rule.afterHandling && handle) {
      try {
        handle();
      } catch {
        // The fault's answer replaces whatever the route said.
      }
    }
    if ('status' in action) {
      answer(service, entry, res, action);
      return true;
    }
    switch (action.kind) {
      case 'delay':
        entry.fault = `delay ${action.ms} ms`;
        await new Promise((resolve) => setTimeout(resolve, action.ms));
        return false;
      case 'hang':
        entry.fault = 'hang';
        if (action.ms !== undefined) setTimeout(() => req.socket.destroy(), action.ms).unref();
        return true;
      case 'reset':
        entry.fault = 'reset';
        req.socket.destroy();
        return true;
    }
  }

  const api = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://api.local');
      let rawPath = url.pathname;
      if (rawPath === prefix || rawPath.startsWith(`${prefix}/`)) rawPath = rawPath.slice(prefix.length);
      let segments: string[];
      try {
        segments = rawPath
          .split('/')
          .filter((s) => s !== '')
          .map((s) => decodeURIComponent(s));
      } catch {
        segments = [];
      }
      const headers = lowerHeaders(req);
      const entry = log.add({
        service: 'api',
        method: req.method ?? 'GET',
        path: `/${segments.join('/')}`,
        rawUrl: req.url ?? '/',
        query: queryRecord(url.searchParams),
        headers,
        body: parseBody(body),
        at: now(),
      });
      const request = {
        method: entry.method,
        segments,
        path: entry.path,
        query: url.searchParams,
        headers,
        bodyText: body.toString('utf8'),
      };
      if (await applyFault('api', entry, res, req, () => routes.handle(request))) return;
      try {
        const answer = routes.handle(request);
        entry.status = 200;
        sendResult(res, answer.result, {
          ...(answer.result_info !== undefined ? { result_info: answer.result_info } : {}),
          ...(answer.messages !== undefined ? { messages: answer.messages } : {}),
        });
      } catch (error) {
        const cfError =
          error instanceof CfApiError
            ? error
            : new CfApiError(500, { code: 10001, message: `fake: ${String(error)}` });
        entry.status = cfError.status;
        sendError(res, cfError);
      }
    })();
  });
  servers.push(api);
  const port = await listen(api);

  const s3Urls = new Map<FakeJurisdiction, string>();
  for (const jurisdiction of options.s3Jurisdictions ?? (['default', 'eu', 'us', 'fedramp'] as const)) {
    const endpoint = new S3Endpoint(state, jurisdiction, settings);
    const server = createServer((req, res) => {
      void (async () => {
        const body = await readBody(req);
        const url = new URL(req.url ?? '/', 'http://s3.local');
        const headers = lowerHeaders(req);
        const entry = log.add({
          service: 's3',
          method: req.method ?? 'GET',
          path: url.pathname,
          rawUrl: req.url ?? '/',
          query: queryRecord(url.searchParams),
          headers,
          body: body.length > 0 ? `<${body.length} bytes>` : undefined,
          at: now(),
        });
        if (await applyFault('s3', entry, res, req)) return;
        res.on('finish', () => (entry.status = res.statusCode));
        endpoint.handle(req, res, body, headers);
      })();
    });
    servers.push(server);
    s3Urls.set(jurisdiction, `http://127.0.0.1:${await listen(server)}`);
  }

  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    origin: `http://127.0.0.1:${port}`,
    state,
    settings,
    log,
    faults,
    s3Url(jurisdiction = 'default') {
      const url = s3Urls.get(jurisdiction);
      if (!url) throw new Error(`fake Cloudflare: no S3 endpoint for jurisdiction ${jurisdiction}`);
      return url;
    },
    async close() {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      );
    },
  };
}
