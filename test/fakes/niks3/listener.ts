/**
 * One HTTP listener of the fake (API, S3 or public read side): records every request
 * in the shared request log, applies fault rules before the real handler runs, and
 * can be taken down (connections refused, state kept) and brought back on the same port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { s3ErrorForStatus, sendS3Error } from '../s3-store/s3-error.js';
import type { FaultAction } from '../faults.js';
import type { FaultTarget, Niks3Faults } from './faults.js';
import { httpError, statusText } from './http-io.js';

/** One logged request. */
export interface RequestLogEntry {
  target: FaultTarget;
  method: string;
  /** Raw request path (still percent-encoded), without the query. */
  path: string;
  /** Raw query string without `?` (may hold presigned-URL signatures). */
  query: string;
  /** Request headers, lower-case names (credentials included: this log is for tests). */
  headers: Record<string, string>;
  /** Response status; 0 while pending, or when the connection was dropped before an answer. */
  status: number;
  /** Arrival time on the fake's clock (ms). */
  at: number;
  /** Arrival time on the real clock (ms since the epoch), for timing assertions (back-off, Retry-After). */
  realAt: number;
  /** How the request authenticated (`token`, `oidc:<provider>:<sub>`), API only. */
  auth?: string;
  /** The kind of injected fault, if one hit this request. */
  fault?: string;
  /** The matched route pattern (API only), e.g. `POST /api/pending_closures/{id}/sign`. */
  route?: string;
}

/** What a listener hands to its handler. */
export type ListenerHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  entry: RequestLogEntry,
) => Promise<void>;

export interface ListenerOptions {
  target: FaultTarget;
  host: string;
  port: number;
  handler: ListenerHandler;
  log: RequestLogEntry[];
  faults: Niks3Faults;
  now: () => number;
  /** Logger for unexpected handler errors. */
  warn: (message: string) => void;
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && Number(len) > 0) || req.headers['transfer-encoding'] !== undefined;
}

/** Lets `res` send only about half of its body, then destroys the connection. */
function truncateResponse(res: ServerResponse): void {
  let declared: number | undefined;
  let budget: number | undefined;
  const origWriteHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  const origWrite = res.write.bind(res) as (chunk: unknown) => boolean;
  res.writeHead = (...args: unknown[]) => {
    for (const a of args) {
      if (a !== null && typeof a === 'object' && !Array.isArray(a)) {
        for (const [k, v] of Object.entries(a as Record<string, unknown>)) {
          if (k.toLowerCase() === 'content-length') declared = Number(v);
        }
      }
    }
    return origWriteHead(...args);
  };
  const take = (chunk: unknown): Buffer | undefined => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    if (budget === undefined) {
      const len = declared ?? Number(res.getHeader('content-length') ?? NaN);
      budget = Number.isFinite(len) ? Math.floor(len / 2) : Math.floor(buf.length / 2);
    }
    const part = buf.subarray(0, budget);
    budget -= part.length;
    return part;
  };
  const cut = (): void => {
    // Give the partial bytes a moment to leave, then drop the connection.
    setTimeout(() => res.socket?.destroy(), 20);
  };
  res.write = ((chunk: unknown) => {
    const part = take(chunk);
    if (part !== undefined && part.length > 0) origWrite(part);
    if (budget === 0) cut();
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown) => {
    const part = take(chunk);
    if (!res.headersSent) res.flushHeaders();
    if (part !== undefined && part.length > 0) origWrite(part);
    cut();
    return res;
  }) as typeof res.end;
}

export class FakeListener {
  private readonly opts: ListenerOptions;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private boundPort: number;
  private isDown = false;

  constructor(opts: ListenerOptions) {
    this.opts = opts;
    this.boundPort = opts.port;
  }

  get port(): number {
    return this.boundPort;
  }

  /** `http://host:port` (no trailing slash). */
  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${this.boundPort}`;
  }

  get down(): boolean {
    return this.isDown;
  }

  async start(): Promise<void> {
    // Idle keep-alive connections live 120 s, as with niks3's IdleTimeout.
    const server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => this.onRequest(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('clientError', (_err, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (server.address() as AddressInfo).port;
    this.server = server;
    this.isDown = false;
  }

  /** Stops listening and drops every open connection. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    server.closeAllConnections();
    await closed;
  }

  /** Takes the listener down (connection refused) until {@link up}. */
  async takeDown(): Promise<void> {
    await this.stop();
    this.isDown = true;
  }

  /** Listens again on the same port. */
  async bringUp(): Promise<void> {
    if (this.server !== undefined) return;
    await this.start();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const entry: RequestLogEntry = {
      target: this.opts.target,
      method: req.method ?? 'GET',
      path: q < 0 ? raw : raw.slice(0, q),
      query: q < 0 ? '' : raw.slice(q + 1),
      headers: flatHeaders(req),
      status: 0,
      at: this.opts.now(),
      realAt: Date.now(),
    };
    this.opts.log.push(entry);
    res.on('finish', () => {
      if (entry.fault !== 'reset-mid-body') entry.status = res.statusCode;
    });
    void this.dispatch(req, res, entry);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry): Promise<void> {
    const action = this.opts.faults.pick({
      target: this.opts.target,
      method: entry.method,
      path: entry.path,
      query: entry.query,
    })?.action;
    if (action !== undefined) {
      entry.fault = 'status' in action ? `status:${action.status}` : action.kind;
      const handled = await this.applyFault(action, req, res);
      if (handled) return;
    }
    try {
      await this.opts.handler(req, res, entry);
    } catch (err) {
      this.opts.warn(
        `${this.opts.target} ${entry.method} ${entry.path}: ${(err as Error).stack ?? String(err)}`,
      );
      if (!res.headersSent) httpError(res, `internal error: ${(err as Error).message}`, 500);
      else res.destroy();
    }
  }

  /** Applies a fault; returns true when the request is finished with. */
  private async applyFault(action: FaultAction, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    if ('status' in action) {
      req.resume();
      const headers: Record<string, string> = { ...action.headers };
      if (action.status === 429 && !Object.keys(headers).some((h) => h.toLowerCase() === 'retry-after')) {
        headers['Retry-After'] = '2';
      }
      if (this.opts.target === 's3' && action.body === undefined) {
        sendS3Error(res, s3ErrorForStatus(action.status), undefined, headers);
      } else {
        const body =
          action.body ??
          (action.status === 429 && this.opts.target === 'api'
            ? 'S3 rate limit exceeded, please retry'
            : statusText(action.status));
        httpError(res, body, action.status, headers);
      }
      return true;
    }
    switch (action.kind) {
      case 'reset':
        req.socket.destroy();
        return true;
      case 'hang':
        req.resume();
        if (action.ms !== undefined) setTimeout(() => req.socket.destroy(), action.ms).unref();
        return true;
      case 'delay': {
        let timer: NodeJS.Timeout | undefined;
        const elapsed = new Promise((r) => (timer = setTimeout(r, action.ms)));
        await (action.until ? Promise.race([elapsed, action.until.catch(() => undefined)]) : elapsed);
        clearTimeout(timer);
        return false;
      }
      case 'reset-mid-body': {
        if (!hasBody(req)) {
          truncateResponse(res);
          return false;
        }
        const declared = Number(req.headers['content-length'] ?? NaN);
        const half = Number.isFinite(declared) ? Math.max(1, Math.floor(declared / 2)) : 1;
        let seen = 0;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            req.off('data', onData);
            req.socket.destroy();
            resolve();
          };
          const onData = (chunk: Buffer): void => {
            seen += chunk.length;
            if (seen >= half) done();
          };
          req.on('data', onData);
          req.on('end', done);
          req.on('error', done);
        });
        return true;
      }
    }
  }
}
