/**
 * A small HTTP proxy on 127.0.0.1 in front of one of the fakes, for the two faults that not every
 * fake models: a connection reset in the middle of a response body (the upstream answers in full,
 * the client gets the head and about half of the body, then the connection is destroyed, so a write
 * that took effect loses its answer), and a remote that is down (the listener is closed, connections
 * are refused, and it comes back on the same port).
 *
 * ```ts
 * const proxy = await startCuttingProxy(fly.apiUrl);
 * const rule = proxy.cut({ method: 'POST', path: /\/machines$/, times: 1 });
 * // (matching and counting are those of the fakes' fault rules, `test/fakes/faults.ts`:
 * // `times` is unlimited unless given)
 * // point the action at proxy.url instead of the fake …
 * rule.hits();          // responses cut so far
 * await proxy.down();   // refuse connections, keep the fake running
 * await proxy.up();
 * await proxy.close();
 * ```
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FaultInjector, type FaultHandle, type FaultRule } from '../fakes/faults.js';

/**
 * Which responses to cut, matched and counted as a fault rule (`method`, `path` on the path without
 * the query, `query`, `skip`, `times` unlimited unless given, `probability`, `seed`).
 */
export interface CutRule extends Pick<
  FaultRule,
  'method' | 'path' | 'query' | 'skip' | 'times' | 'probability' | 'seed' | 'name'
> {
  /** Send nothing back at all (not even the head) once the upstream answered: a lost 204. */
  readonly drop?: boolean;
}

/** A cut is a fault after handling: `reset-mid-body` (half the body), or `reset` with `drop`. */
type ProxyRule = FaultRule<never, { readonly kind: 'reset' } | { readonly kind: 'reset-mid-body' }>;

export type CutHandle = FaultHandle<ProxyRule>;

export interface CuttingProxy {
  /** `http://127.0.0.1:PORT` (no trailing slash); paths and queries are forwarded unchanged. */
  readonly url: string;
  /** Cut the next matching responses after about half of their body. */
  cut(rule: CutRule): CutHandle;
  /** Drops every rule. */
  clear(): void;
  /** Closes the listener and every open connection: new connections are refused. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy that forwards to `upstream` (an `http://127.0.0.1:PORT` origin, any path ignored). */
export async function startCuttingProxy(upstream: string): Promise<CuttingProxy> {
  const target = new URL(upstream);
  const rules = new FaultInjector<ProxyRule>({
    fake: 'cutting proxy',
    support: { kinds: ['reset', 'reset-mid-body'], afterHandling: ['reset', 'reset-mid-body'] },
  });
  const sockets = new Set<Socket>();

  const pick = (req: IncomingMessage): ProxyRule | undefined => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    return rules.pick({
      method: req.method ?? 'GET',
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const headers = { ...req.headers, host: target.host };
    const forward = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
      (answer) => {
        const rule = pick(req);
        if (!rule) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        if (rule.action.kind === 'reset') {
          answer.resume();
          answer.on('end', () => res.socket?.destroy());
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          // The head promises the whole body (content-length as the upstream sent it).
          const head = { ...answer.headers, 'content-length': String(body.length) };
          delete head['transfer-encoding'];
          res.writeHead(answer.statusCode ?? 200, head);
          res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))), () => {
            res.socket?.destroy();
          });
        });
      },
    );
    forward.on('error', () => res.socket?.destroy());
    req.pipe(forward);
  };

  const server: Server = createServer(handle);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });

  await listen(0);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    cut({ drop, ...match }: CutRule): CutHandle {
      return rules.add({
        ...match,
        afterHandling: true,
        action: { kind: drop ? 'reset' : 'reset-mid-body' },
      });
    },
    clear(): void {
      rules.clear();
    },
    down: stop,
    up: async () => {
      if (!server.listening) await listen(port);
    },
    close: stop,
  };
}
