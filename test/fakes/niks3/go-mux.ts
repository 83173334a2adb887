/**
 * Request routing with the observable behaviour of Go 1.22's `http.ServeMux`
 * (spec §0.3), which niks3 uses:
 *
 * - patterns `[METHOD ]/literal/{name}/{rest...}`; a pattern ending in `/` is a
 *   subtree that matches every path below it;
 * - `GET` patterns also match `HEAD`; a pattern without a method matches all methods;
 * - the most specific matching pattern wins (here: an exact pattern beats a subtree);
 * - a path that some pattern matches, but not with this method, gives `405` with an
 *   `Allow` header listing (sorted) every method that would match; otherwise `404`;
 * - wildcards match one non-empty segment (`{name}`) or the rest of the path, possibly
 *   empty (`{name...}`); segments are matched percent-decoded, so `%2F` inside a
 *   segment is a literal slash;
 * - an unclean path (`//`, `/./`, `/../`) is redirected (`301`) to its clean form.
 */

type Segment =
  { kind: 'literal'; value: string } | { kind: 'wild'; name: string } | { kind: 'rest'; name: string };

interface Pattern<H> {
  method: string | undefined;
  segments: Segment[];
  subtree: boolean;
  text: string;
  handler: H;
}

/** The result of routing one request. */
export type MuxMatch<H> =
  | { kind: 'handler'; handler: H; params: Record<string, string>; pattern: string }
  | { kind: 'redirect'; location: string }
  | { kind: 'method-not-allowed'; allow: string }
  | { kind: 'not-found' };

function parsePattern(text: string): { method: string | undefined; segments: Segment[]; subtree: boolean } {
  const space = text.indexOf(' ');
  const method = space < 0 ? undefined : text.slice(0, space);
  const path = space < 0 ? text : text.slice(space + 1);
  if (!path.startsWith('/')) throw new Error(`bad pattern ${text}`);
  const subtree = path.endsWith('/');
  const parts = path.split('/').slice(1);
  if (subtree) parts.pop();
  const segments = parts.map((p): Segment => {
    const m = /^\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}$/.exec(p);
    if (m === null) return { kind: 'literal', value: p };
    return m[2] === undefined ? { kind: 'wild', name: m[1]! } : { kind: 'rest', name: m[1]! };
  });
  return { method, segments, subtree };
}

/** Go's `path.Clean`, keeping a trailing slash (as `cleanPath` in net/http does). */
export function cleanPath(p: string): string {
  if (p === '') return '/';
  const rooted = p.startsWith('/') ? p : '/' + p;
  const out: string[] = [];
  for (const seg of rooted.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  let clean = '/' + out.join('/');
  if (rooted.endsWith('/') && clean !== '/') clean += '/';
  return clean;
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A router over handlers of type `H`. */
export class GoMux<H> {
  private readonly patterns: Array<Pattern<H>> = [];

  /** Registers `"[METHOD ]/path"`. */
  handle(text: string, handler: H): this {
    const p = parsePattern(text);
    this.patterns.push({ ...p, text, handler });
    return this;
  }

  private matchPath(p: Pattern<H>, segs: string[]): Record<string, string> | undefined {
    const params: Record<string, string> = {};
    let i = 0;
    for (const seg of p.segments) {
      if (i >= segs.length) return undefined;
      if (seg.kind === 'rest') {
        params[seg.name] = segs.slice(i).map(decodeSegment).join('/');
        return params;
      }
      const s = segs[i]!;
      if (seg.kind === 'literal') {
        if (decodeSegment(s) !== seg.value) return undefined;
      } else {
        if (s === '') return undefined;
        params[seg.name] = decodeSegment(s);
      }
      i++;
    }
    if (p.subtree) return i < segs.length ? params : undefined; // "/a/" needs at least the slash
    return i === segs.length ? params : undefined;
  }

  private methodMatches(p: Pattern<H>, method: string): boolean {
    return p.method === undefined || p.method === method || (p.method === 'GET' && method === 'HEAD');
  }

  /** Go's `exactMatch`: the pattern matches the path itself, not as part of a subtree. */
  private static exact<H>(p: Pattern<H>, path: string): boolean {
    const last = p.segments[p.segments.length - 1];
    const slashes = path.split('/').length - 1;
    if (p.subtree) return path.endsWith('/') && p.segments.length + 1 === slashes;
    if (last?.kind === 'rest') return path.endsWith('/') && p.segments.length === slashes;
    return true;
  }

  private candidates(method: string, path: string): Array<{ p: Pattern<H>; params: Record<string, string> }> {
    // "/a/b" → ["a", "b"]; "/a/" → ["a", ""]; "/" → [""]
    const segs = path.split('/').slice(1);
    return (
      this.patterns
        .map((p) => ({ p, params: this.matchPath(p, segs) }))
        .filter((c): c is { p: Pattern<H>; params: Record<string, string> } => c.params !== undefined)
        // Exact patterns are more specific than subtrees; longer patterns beat shorter ones;
        // for the same path, a pattern naming the method beats a GET pattern serving HEAD.
        .sort(
          (a, b) =>
            Number(a.p.subtree) - Number(b.p.subtree) ||
            b.p.segments.length - a.p.segments.length ||
            Number(b.p.method === method) - Number(a.p.method === method),
        )
    );
  }

  /** Routes `method` + the raw (still percent-encoded) request path. */
  match(method: string, rawPath: string, rawQuery = ''): MuxMatch<H> {
    const query = rawQuery === '' ? '' : '?' + rawQuery;
    const clean = cleanPath(rawPath);
    const all = this.candidates(method, clean);
    const hit = all.find((c) => this.methodMatches(c.p, method));
    // Trailing-slash redirect: "/x" goes to "/x/" when only "/x/…" matches exactly.
    if ((hit === undefined || !GoMux.exact(hit.p, clean)) && !clean.endsWith('/')) {
      const withSlash = this.candidates(method, clean + '/').find((c) => this.methodMatches(c.p, method));
      if (withSlash !== undefined && GoMux.exact(withSlash.p, clean + '/')) {
        return { kind: 'redirect', location: clean + '/' + query };
      }
    }
    if (clean !== rawPath) return { kind: 'redirect', location: clean + query };
    if (hit !== undefined)
      return { kind: 'handler', handler: hit.p.handler, params: hit.params, pattern: hit.p.text };
    if (all.length === 0) return { kind: 'not-found' };
    const allowed = new Set<string>();
    const alsoWithSlash = clean.endsWith('/') ? [] : this.candidates(method, clean + '/');
    for (const c of [...all, ...alsoWithSlash]) if (c.p.method !== undefined) allowed.add(c.p.method);
    if (allowed.has('GET')) allowed.add('HEAD');
    return { kind: 'method-not-allowed', allow: [...allowed].sort().join(', ') };
  }
}
