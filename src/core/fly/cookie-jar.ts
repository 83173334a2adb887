/**
 * A tiny cookie jar for the Machines API (spec fly.md §3.1). The API may set path-scoped affinity
 * cookies (e.g. after creating an app, one scoped to `/v1/apps/<name>`) so that later requests for
 * that app reach the node that created it; fly-go keeps them in a jar, Node's fetch has none.
 *
 * Only what that needs: cookies keyed by name + path, sent to requests whose path is inside the
 * cookie's path on the same host, `Max-Age=0`/past `Expires` delete. Domain matching is host-only.
 */

interface StoredCookie {
  readonly name: string;
  readonly value: string;
  readonly host: string;
  readonly path: string;
  readonly expiresAt: number | undefined;
}

export class CookieJar {
  private readonly cookies = new Map<string, StoredCookie>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Stores the cookies of one `Set-Cookie` header value, set by a response to `url`. */
  store(url: string, setCookie: string): void {
    const target = new URL(url);
    const [pair = '', ...attributes] = setCookie.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = defaultPath(target.pathname);
    let expiresAt: number | undefined;
    for (const attribute of attributes) {
      const at = attribute.indexOf('=');
      const key = (at === -1 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
      const arg = at === -1 ? '' : attribute.slice(at + 1).trim();
      if (key === 'path' && arg.startsWith('/')) path = arg;
      else if (key === 'max-age' && /^-?\d+$/.test(arg)) expiresAt = this.now() + Number(arg) * 1000;
      else if (key === 'expires' && expiresAt === undefined) {
        const date = Date.parse(arg);
        if (!Number.isNaN(date)) expiresAt = date;
      }
    }
    const key = `${target.host}\u0000${path}\u0000${name}`;
    if (expiresAt !== undefined && expiresAt <= this.now()) this.cookies.delete(key);
    else this.cookies.set(key, { name, value, host: target.host, path, expiresAt });
  }

  /** The `Cookie` header for a request to `url`, or undefined when no cookie applies. */
  header(url: string): string | undefined {
    const target = new URL(url);
    const now = this.now();
    const matching = [...this.cookies.values()]
      .filter((c) => c.host === target.host && pathMatches(target.pathname, c.path))
      .filter((c) => c.expiresAt === undefined || c.expiresAt > now)
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length > 0 ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  /** A fetch that sends and stores this jar's cookies. */
  wrap(fetchFn: typeof fetch): typeof fetch {
    return async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url;
      const headers = new Headers(init?.headers);
      const cookie = this.header(url);
      if (cookie) headers.set('cookie', cookie);
      const response = await fetchFn(input, { ...init, headers });
      for (const value of response.headers.getSetCookie()) this.store(url, value);
      return response;
    };
  }
}

/** RFC 6265 §5.1.4 path matching. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/';
}

/** RFC 6265 §5.1.4 default path: the directory of the request path. */
function defaultPath(requestPath: string): string {
  const slash = requestPath.lastIndexOf('/');
  return slash <= 0 ? '/' : requestPath.slice(0, slash);
}
