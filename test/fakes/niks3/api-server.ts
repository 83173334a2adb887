/**
 * The niks3 API listener: routing (Go ServeMux rules), authentication (static token
 * or OIDC, spec §2), the public endpoints (`/health`, `/metrics`, `/api/cache-config`,
 * `/api/cache-stats`, `/`) and, when enabled, the read proxy (spec §1.7). Also the
 * handler of the public read URL (the R2 custom domain in production).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Niks3Context } from './context.js';
import { gcStatus, getClosure, startGc } from './gc.js';
import { GoMux } from './go-mux.js';
import { drainBody, httpError, notFound, redirect, writeJson } from './http-io.js';
import type { RequestLogEntry } from './listener.js';
import { serveObject } from './object-serving.js';
import { createPin, deletePin, listPins } from './pins.js';
import { isReadableKey } from './upload-keys.js';
import {
  cleanupPendingClosures,
  completeMultipart,
  completePendingClosure,
  createPendingClosure,
  headObject,
  requestParts,
  signPendingClosure,
  type RouteHandler,
} from './uploads.js';

interface Route {
  handler: RouteHandler;
  protected: boolean;
}

/** Checks `Authorization: Bearer <token>`; returns how it authenticated, or undefined (→ 401). */
async function authenticate(ctx: Niks3Context, req: IncomingMessage): Promise<string | undefined> {
  const header = req.headers.authorization;
  if (header === undefined || !header.startsWith('Bearer ')) return undefined;
  const token = header.slice('Bearer '.length);
  const a = Buffer.from(token, 'utf8');
  const b = Buffer.from(ctx.config.apiToken, 'utf8');
  if (a.length === b.length && timingSafeEqual(a, b)) return 'token';
  if (ctx.oidc !== undefined) {
    const principal = await ctx.oidc.validate(token);
    if (principal !== undefined) return `oidc:${principal.provider}:${principal.subject ?? ''}`;
    ctx.log(`auth: OIDC token refused: ${ctx.oidc.lastFailure ?? 'unknown reason'}`);
  }
  return undefined;
}

const health: RouteHandler = async (_ctx, req, res) => {
  await drainBody(req);
  // No content type set by the server; Go's sniffing gives text/plain.
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '2' });
  res.end(req.method === 'HEAD' ? undefined : 'OK');
};

const cacheConfig: RouteHandler = async (ctx, req, res, _params, url) => {
  await drainBody(req);
  const body: Record<string, unknown> = {
    substituter_url: ctx.config.cacheUrl,
    public_keys: ctx.keys.map((k) => k.publicKey),
  };
  const issuer = url.searchParams.get('issuer');
  const audience = issuer === null ? undefined : ctx.oidc?.audienceFor(issuer);
  if (audience !== undefined && audience !== '') body['oidc_audience'] = audience;
  writeJson(res, 200, body);
};

const cacheStats: RouteHandler = async (ctx, req, res) => {
  await drainBody(req);
  const s = ctx.state.stats();
  writeJson(
    res,
    200,
    { objects: s.objects, logical_bytes: s.logicalBytes },
    { 'Access-Control-Allow-Origin': '*' },
  );
};

/** `GET /` and every GET/HEAD no other route takes (without the read proxy). */
const root: RouteHandler = async (ctx, req, res, _params, url) => {
  await drainBody(req);
  if (url.pathname !== '/') return notFound(res);
  if (ctx.config.cacheUrl === '') {
    const body = 'niks3 binary cache server\n';
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(body.length),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  redirect(res, ctx.config.readProxy ? '/index.html' : ctx.config.cacheUrl);
};

/** The read proxy's catch-all (spec §1.7). */
const readProxy: RouteHandler = async (ctx, req, res, params, url) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    await drainBody(req);
    return httpError(res, 'Method Not Allowed', 405, { Allow: 'GET, HEAD' });
  }
  if (url.pathname === '/') return root(ctx, req, res, params, url);
  await drainBody(req);
  let key: string;
  try {
    key = decodeURIComponent(url.pathname.slice(1));
  } catch {
    return notFound(res);
  }
  if (!isReadableKey(key)) return notFound(res);
  await serveObject(req, res, ctx.store, key, 'proxy', () => notFound(res));
};

/** Prometheus text for `GET /metrics` [post-1.7.0]: the niks3_* series of spec §3.14. */
function metricsText(ctx: Niks3Context, log: readonly RequestLogEntry[]): string {
  const s = ctx.state.stats();
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
  };
  gauge('niks3_cache_objects', 'Number of live cache objects.', s.objects);
  gauge('niks3_cache_logical_bytes', 'Sum of the sizes of live cache objects.', s.logicalBytes);
  gauge('niks3_pending_closures', 'Number of pending closures.', ctx.state.pending.size);
  gauge('niks3_db_connections_in_use', 'Database connections in use.', 0);
  gauge('niks3_db_connections_max', 'Maximum database connections.', 0);
  const counts = new Map<string, number>();
  let inFlight = 0;
  for (const e of log) {
    if (e.target !== 'api') continue;
    if (e.status === 0) {
      inFlight++;
      continue;
    }
    const k = `method="${e.method}",route="${e.route ?? 'unmatched'}",status="${e.status}"`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  lines.push(
    '# HELP niks3_http_requests_total Total HTTP requests.',
    '# TYPE niks3_http_requests_total counter',
  );
  for (const [k, n] of [...counts].sort()) lines.push(`niks3_http_requests_total{${k}} ${n}`);
  gauge('niks3_http_requests_in_flight', 'HTTP requests being served.', Math.max(0, inFlight - 1));
  const task = ctx.state.gc.task;
  lines.push('# HELP niks3_gc_runs_total Garbage collection runs.', '# TYPE niks3_gc_runs_total counter');
  if (task !== undefined && task.state !== 'running') {
    lines.push(
      `niks3_gc_runs_total{result="${task.state === 'succeeded' ? 'success' : 'failure'}"} ${ctx.state.gc.runs}`,
    );
    gauge(
      'niks3_gc_last_run_timestamp_seconds',
      'End of the last GC run.',
      Math.floor((task.finishedAt ?? 0) / 1000),
    );
  }
  return lines.join('\n') + '\n';
}

/** Builds the API listener's handler. */
export function apiHandler(ctx: Niks3Context, log: readonly RequestLogEntry[]) {
  const mux = new GoMux<Route>();
  const open = (handler: RouteHandler): Route => ({ handler, protected: false });
  const auth = (handler: RouteHandler): Route => ({ handler, protected: true });
  const f = ctx.config.features;

  mux.handle('GET /health', open(health));
  mux.handle('GET /api/cache-config', open(cacheConfig));
  if (f.statsRoutes) {
    mux.handle('GET /api/cache-stats', open(cacheStats));
    mux.handle(
      'GET /metrics',
      open(async (c, req, res) => {
        await drainBody(req);
        const body = metricsText(c, log);
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(req.method === 'HEAD' ? undefined : body);
      }),
    );
  }
  mux.handle('POST /api/pending_closures', auth(createPendingClosure));
  mux.handle('DELETE /api/pending_closures', auth(cleanupPendingClosures));
  mux.handle('POST /api/pending_closures/{id}/sign', auth(signPendingClosure));
  mux.handle('POST /api/pending_closures/{id}/complete', auth(completePendingClosure));
  mux.handle('POST /api/multipart/request-parts', auth(requestParts));
  mux.handle('POST /api/multipart/complete', auth(completeMultipart));
  if (f.objectExistsRoute) mux.handle('HEAD /api/objects/{key...}', auth(headObject));
  mux.handle('GET /api/closures/{key}', auth(getClosure));
  mux.handle('DELETE /api/closures', auth(startGc));
  mux.handle('GET /api/gc/status', auth(gcStatus));
  mux.handle('GET /api/pins', auth(listPins));
  mux.handle('POST /api/pins/{name}', auth(createPin));
  mux.handle('DELETE /api/pins/{name}', auth(deletePin));
  if (ctx.config.readProxy) mux.handle('/', open(readProxy));
  else mux.handle('GET /', open(root));

  return async (req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const rawPath = entry.path;
    const m = mux.match(req.method ?? 'GET', rawPath, entry.query);
    switch (m.kind) {
      case 'redirect':
        await drainBody(req);
        return redirect(res, m.location);
      case 'not-found':
        await drainBody(req);
        return notFound(res);
      case 'method-not-allowed':
        await drainBody(req);
        return httpError(res, 'Method Not Allowed', 405, { Allow: m.allow });
      case 'handler': {
        entry.route = m.pattern;
        if (m.handler.protected) {
          const who = await authenticate(ctx, req);
          if (who === undefined) {
            await drainBody(req);
            return httpError(res, 'Unauthorized', 401);
          }
          entry.auth = who;
        }
        return m.handler.handler(ctx, req, res, m.params, url);
      }
    }
  };
}

/** The public read URL: anonymous GET/HEAD of any stored key; `404` when missing. */
export function publicHandler(ctx: Niks3Context) {
  return async (req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry): Promise<void> => {
    await drainBody(req);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return httpError(res, 'Method Not Allowed', 405, { Allow: 'GET, HEAD' });
    }
    let key: string;
    try {
      key = decodeURIComponent(entry.path.slice(1));
    } catch {
      return httpError(res, 'Not Found', 404);
    }
    if (key === '') return httpError(res, 'Not Found', 404);
    await serveObject(req, res, ctx.store, key, 'public', () => httpError(res, 'Not Found', 404));
  };
}
