/**
 * Tokens the fake accepts and what each may do (spec fly.md §2, §8.1). A token is registered by its
 * text (e.g. `FlyV1 fm2_aaa,fm2_bbb`); a request matches it when its Authorization header carries
 * the same pieces in any accepted spelling: `FlyV1 <mac>`, `Bearer <mac>`, `Bearer FlyV1 <mac>`,
 * `Bearer <user token>`, comma lists in any order.
 */
export type FakeTokenKind = 'org' | 'deploy' | 'user' | 'readonly';

export interface FakeTokenSpec {
  readonly kind: FakeTokenKind;
  /** Org slug of an org, deploy or read-only token. */
  readonly org?: string;
  /** Orgs a user token sees (slugs). */
  readonly orgs?: readonly string[];
  /** Apps a deploy token may manage. */
  readonly apps?: readonly string[];
  /** Shown as `token_id` and in lease owners; generated when absent. */
  readonly id?: string;
}

export interface RegisteredToken extends FakeTokenSpec {
  readonly id: string;
  readonly text: string;
  readonly pieces: ReadonlySet<string>;
}

/** Splits a token or header value into its pieces, with any `FlyV1`/`Bearer` schemes removed. */
export function tokenPieces(text: string): string[] {
  let rest = text.trim();
  for (;;) {
    const stripped = rest.replace(/^(?:flyv1|bearer)\s+/i, '').trim();
    if (stripped === rest) break;
    rest = stripped;
  }
  return rest
    .split(',')
    .map((piece) => piece.trim())
    .filter(Boolean);
}

export class TokenRegistry {
  private readonly tokens: RegisteredToken[] = [];
  private counter = 0;

  add(text: string, spec: FakeTokenSpec): RegisteredToken {
    const pieces = new Set(tokenPieces(text));
    if (pieces.size === 0) throw new Error('fake fly: a token needs at least one piece');
    const token: RegisteredToken = {
      ...spec,
      id: spec.id ?? `tok_${(++this.counter).toString(16).padStart(8, '0')}`,
      text,
      pieces,
    };
    this.tokens.push(token);
    return token;
  }

  /** The token an Authorization header carries, or undefined (then the request gets 401). */
  match(header: string | undefined): RegisteredToken | undefined {
    if (!header) return undefined;
    const pieces = tokenPieces(header);
    if (pieces.length === 0) return undefined;
    return this.tokens.find(
      (token) => token.pieces.size === pieces.length && pieces.every((p) => token.pieces.has(p)),
    );
  }

  /** Org slugs a token can see. */
  static orgsOf(token: RegisteredToken): string[] {
    if (token.kind === 'user') return [...(token.orgs ?? [])];
    return token.org ? [token.org] : [];
  }
}
