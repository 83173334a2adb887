/**
 * Bearer tokens for niks3: a static token, or a GitHub OIDC token minted for an audience and
 * minted again shortly before it expires (long pushes outlive the ~5 min tokens).
 */
import { ConfigurationError } from '../errors.js';
import { maskSecret, type Logger } from '../logger.js';

export interface TokenSource {
  /** A token valid for at least a minute more. */
  get(): Promise<string>;
  /** Drops a cached token (after a 401), so the next get() mints a new one. */
  invalidate(): void;
  readonly kind: 'oidc' | 'token';
}

export class StaticTokenSource implements TokenSource {
  readonly kind = 'token';
  private readonly token: string;
  constructor(token: string) {
    this.token = token;
  }
  get(): Promise<string> {
    return Promise.resolve(this.token);
  }
  invalidate(): void {}
}

/** Mints an OIDC token; in an action this is `core.getIDToken`. */
export type IdTokenMinter = (audience: string) => Promise<string>;

/** The `exp` claim of a JWT in ms, or undefined. The token is not verified (the server does that). */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export class OidcTokenSource implements TokenSource {
  readonly kind = 'oidc';
  private token: string | undefined;
  private expiresAt = 0;
  private pending: Promise<string> | undefined;
  private readonly audience: string;
  private readonly mint: IdTokenMinter;
  private readonly logger: Logger;
  private readonly now: () => number;
  /** Mint again when less than this is left. */
  private readonly refreshMarginMs: number;

  constructor(options: {
    audience: string;
    mint: IdTokenMinter;
    logger: Logger;
    now?: () => number;
    refreshMarginMs?: number;
  }) {
    this.audience = options.audience;
    this.mint = options.mint;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.refreshMarginMs = options.refreshMarginMs ?? 90_000;
  }

  async get(): Promise<string> {
    if (this.token && this.now() < this.expiresAt - this.refreshMarginMs) return this.token;
    this.pending ??= this.fetchToken().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  invalidate(): void {
    this.token = undefined;
    this.expiresAt = 0;
  }

  private async fetchToken(): Promise<string> {
    const token = await this.mint(this.audience);
    maskSecret(this.logger, token);
    this.token = token;
    this.expiresAt = jwtExpiry(token) ?? this.now() + 5 * 60_000;
    this.logger.debug(`minted a GitHub OIDC token for audience ${this.audience}`);
    return token;
  }
}

/**
 * Why no OIDC token can be had in this job, or undefined when one can. GitHub gives the request
 * variables only to jobs with `permissions: id-token: write`, and never to fork pull requests.
 */
export function oidcUnavailableReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env['ACTIONS_ID_TOKEN_REQUEST_URL'] && env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']) return undefined;
  const fork = env['GITHUB_EVENT_NAME'] === 'pull_request' ? ' (pull requests from forks never get one)' : '';
  return (
    `no GitHub OIDC token is available in this job${fork}. ` +
    'Give the job `permissions: { contents: read, id-token: write }`, or use `auth: token` with a niks3 token.'
  );
}

export function requireOidc(env: NodeJS.ProcessEnv = process.env): void {
  const reason = oidcUnavailableReason(env);
  if (reason) throw new ConfigurationError(reason);
}
