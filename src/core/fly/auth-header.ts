/**
 * Fly API tokens and the Authorization headers built from them (spec fly.md §2.1–§2.2, mirroring
 * fly-go's `tokens.Parse`, `FlapsHeader` and `GraphQLHeader`).
 *
 * A token as printed by `fly tokens create` is `FlyV1 fm2_…,fm2_…`: a scheme word and one or more
 * comma-separated macaroons. Pieces whose prefix (text before the first `_`) is `fm1r`, `fm1a` or
 * `fm2` are macaroons; anything else is a user (OAuth) token.
 */

const MACAROON_PREFIXES = new Set(['fm1r', 'fm1a', 'fm2']);

export interface FlyToken {
  readonly macaroons: readonly string[];
  readonly userTokens: readonly string[];
}

/** Parses a token the way fly-go does: leading `FlyV1 `/`Bearer ` schemes stripped, pieces classified. */
export function parseFlyToken(text: string): FlyToken {
  let rest = text.trim();
  for (;;) {
    const stripped = rest.replace(/^(?:flyv1|bearer)\s+/i, '');
    if (stripped === rest) break;
    rest = stripped.trim();
  }
  const macaroons: string[] = [];
  const userTokens: string[] = [];
  for (const raw of rest.split(',')) {
    const piece = raw.trim();
    if (!piece) continue;
    const prefix = piece.includes('_') ? piece.slice(0, piece.indexOf('_')) : '';
    if (MACAROON_PREFIXES.has(prefix)) macaroons.push(piece);
    else userTokens.push(piece);
  }
  return { macaroons, userTokens };
}

/** The Authorization header for the Machines API: macaroons only with `FlyV1`, else user tokens with `Bearer`. */
export function machinesAuthorization(token: FlyToken): string {
  if (token.macaroons.length > 0) return `FlyV1 ${token.macaroons.join(',')}`;
  return `Bearer ${token.userTokens.join(',')}`;
}

/** The Authorization header for GraphQL: `FlyV1 <macaroons…,user tokens…>` when any macaroon, else `Bearer`. */
export function graphqlAuthorization(token: FlyToken): string {
  if (token.macaroons.length > 0) return `FlyV1 ${[...token.macaroons, ...token.userTokens].join(',')}`;
  return `Bearer ${token.userTokens.join(',')}`;
}

/** Every piece of the token that must be masked in logs (each macaroon and user token on its own, too). */
export function tokenPieces(token: FlyToken): string[] {
  return [...token.macaroons, ...token.userTokens];
}

/** Removes anything that looks like a Fly macaroon from a text (defence in depth for error details). */
export function redactMacaroons(text: string): string {
  return text.replace(/fm[12][ar]?_[A-Za-z0-9+/=_-]+/g, 'fm2_[redacted]');
}
