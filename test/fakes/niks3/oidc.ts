/**
 * OIDC bearer-token validation as niks3 does it with go-oidc (spec §1.4, §2.3):
 * config validation, discovery at startup, lazily fetched JWKS, the six per-provider
 * checks (parse, iss, aud, exp without leeway, nbf with 5 min leeway, signature with
 * an allowed algorithm), then bound_claims and bound_subject against the matching
 * provider only, with niks3's byte-wise glob.
 */
import {
  createPublicKey,
  verify as cryptoVerify,
  constants,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';

/** One provider, as the fake's options give it. */
export interface OidcProviderOptions {
  issuer: string;
  audience: string;
  boundSubject?: string[];
  boundClaims?: Record<string, string[]>;
  /**
   * Skips discovery and fetches the signing keys from this URL (allowed algorithm:
   * RS256 only), like `jwks_url` of later niks3 versions. Without it, the issuer's
   * `/.well-known/openid-configuration` is fetched at startup, as niks3 1.7 does.
   */
  jwksUrl?: string;
  /** Name used in logs and in {@link OidcPrincipal}; defaults to `provider<N>`. */
  name?: string;
}

/** The niks3 OIDC config file (spec §1.4), for tests that check a generated config. */
export interface OidcConfigDocument {
  providers?: Record<
    string,
    {
      issuer?: string;
      audience?: string;
      bound_claims?: Record<string, string[]>;
      bound_subject?: string[];
      jwks_url?: string;
    }
  >;
  allow_insecure?: boolean;
}

/** Who a validated token belongs to. */
export interface OidcPrincipal {
  provider: string;
  issuer: string;
  subject: string | undefined;
  claims: Record<string, unknown>;
}

const SUPPORTED_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
];

/** Turns the config file form into provider options, validating it as niks3 does at startup. */
export function providersFromConfigDocument(doc: OidcConfigDocument | string): {
  providers: OidcProviderOptions[];
  allowInsecure: boolean;
} {
  const parsed = (typeof doc === 'string' ? JSON.parse(doc) : doc) as OidcConfigDocument;
  const providers = Object.entries(parsed.providers ?? {}).map(([name, p]) => {
    const opt: OidcProviderOptions = { name, issuer: p.issuer ?? '', audience: p.audience ?? '' };
    if (p.bound_claims !== undefined) opt.boundClaims = p.bound_claims;
    if (p.bound_subject !== undefined) opt.boundSubject = p.bound_subject;
    if (p.jwks_url !== undefined) opt.jwksUrl = p.jwks_url;
    return opt;
  });
  return { providers, allowInsecure: parsed.allow_insecure === true };
}

/** The startup checks of §1.4; throws with niks3's messages. */
export function validateOidcProviders(
  providers: readonly OidcProviderOptions[],
  allowInsecure: boolean,
): void {
  if (providers.length === 0) throw new Error('validating config: no providers configured');
  const seen = new Map<string, string>();
  providers.forEach((p, i) => {
    const name = p.name ?? `provider${i + 1}`;
    if (p.issuer === '') throw new Error(`validating config: provider "${name}": missing issuer`);
    let url: URL;
    try {
      url = new URL(p.issuer);
    } catch {
      throw new Error(
        `validating config: provider "${name}": issuer URL "${p.issuer}" must be absolute with scheme and host`,
      );
    }
    if (url.host === '') {
      throw new Error(
        `validating config: provider "${name}": issuer URL "${p.issuer}" must be absolute with scheme and host`,
      );
    }
    const scheme = url.protocol.replace(/:$/, '');
    if (scheme !== 'https' && !allowInsecure) {
      throw new Error(
        `validating config: provider "${name}": issuer URL "${p.issuer}" must use HTTPS (scheme is "${scheme}")`,
      );
    }
    if (p.audience === '') throw new Error(`validating config: provider "${name}": missing audience`);
    const existing = seen.get(p.issuer);
    if (existing !== undefined) {
      throw new Error(
        `validating config: provider "${name}": duplicate issuer (already used by "${existing}")`,
      );
    }
    seen.set(p.issuer, name);
  });
}

/** niks3's `GlobMatch`: byte-wise, case-sensitive, `*` any run (including `/`), `?` one byte. */
export function globMatch(pattern: string, str: string): boolean {
  if (pattern === '') return str === '';
  if (pattern === '*') return true;
  const p = Buffer.from(pattern, 'utf8');
  const s = Buffer.from(str, 'utf8');
  const STAR = 0x2a;
  const QUESTION = 0x3f;
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === QUESTION || p[pi] === s[si])) {
      pi++;
      si++;
    } else if (pi < p.length && p[pi] === STAR) {
      star = pi;
      mark = si;
      pi++;
    } else if (star !== -1) {
      pi = star + 1;
      mark++;
      si = mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === STAR) pi++;
  return pi === p.length;
}

/** Go's `%v` of a float64: shortest digits, exponent form when the exponent is < -4 or >= 6 (`42`, `1.234567e+06`). */
export function goFormatFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  // Shortest round-trip digits, as JS also produces them.
  const [mant, expPart] = f.toExponential().split('e') as [string, string];
  const exp = Number(expPart);
  if (exp < -4 || exp >= 6) {
    const sign = exp < 0 ? '-' : '+';
    return `${mant}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(f);
}

/** Go's `%v` of a decoded JSON value. */
function goFormatValue(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'number') return goFormatFloat(v);
  if (typeof v === 'boolean' || typeof v === 'string') return String(v);
  if (Array.isArray(v)) return `[${v.map(goFormatValue).join(' ')}]`;
  const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return `map[${entries.map(([k, x]) => `${k}:${goFormatValue(x)}`).join(' ')}]`;
}

function lookupClaim(claims: Record<string, unknown>, name: string): { found: boolean; value?: unknown } {
  if (Object.prototype.hasOwnProperty.call(claims, name)) return { found: true, value: claims[name] };
  const parts = name.split('.');
  if (parts.length === 1) return { found: false };
  let current: unknown = claims;
  for (const part of parts) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return { found: false };
    if (!Object.prototype.hasOwnProperty.call(current, part)) return { found: false };
    current = (current as Record<string, unknown>)[part];
  }
  return { found: true, value: current };
}

function claimStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((x): x is string => typeof x === 'string');
  return [goFormatValue(value)];
}

/** bound_claims: AND across claims, OR across patterns and values. Returns a reason or undefined. */
export function checkBoundClaims(
  claims: Record<string, unknown>,
  bound: Record<string, string[]>,
): string | undefined {
  for (const [name, patterns] of Object.entries(bound)) {
    const c = lookupClaim(claims, name);
    if (!c.found) return `required claim "${name}" not found`;
    const values = claimStrings(c.value);
    if (values.length === 0) return `claim "${name}" has no value`;
    if (!values.some((v) => patterns.some((p) => globMatch(p, v)))) {
      return `claim "${name}" value [${values.join(' ')}] not in allowed patterns [${patterns.join(' ')}]`;
    }
  }
  return undefined;
}

/** bound_subject: `sub` must be a non-empty string matching one pattern (when patterns are set). */
export function checkBoundSubject(
  claims: Record<string, unknown>,
  patterns: readonly string[],
): string | undefined {
  if (patterns.length === 0) return undefined;
  const sub = claims['sub'];
  if (typeof sub !== 'string' || sub === '') return "token missing 'sub' claim";
  if (!patterns.some((p) => globMatch(p, sub))) return `subject "${sub}" not in allowed patterns`;
  return undefined;
}

function b64urlJson(part: string): unknown {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error('malformed jwt: illegal base64 data');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** A JSON number as Go's jsonTime reads it (seconds, possibly fractional) → ms; undefined if absent. */
function jsonTimeMs(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw new Error('malformed jwt: time claim is not a number');
  return v * 1000;
}

function verifyJws(alg: string, key: KeyObject, data: Buffer, sig: Buffer): boolean {
  const kind = key.asymmetricKeyType;
  const digest = { '256': 'sha256', '384': 'sha384', '512': 'sha512' }[alg.slice(2)] ?? 'sha256';
  try {
    if (alg.startsWith('RS')) return kind === 'rsa' && cryptoVerify(digest, data, key, sig);
    if (alg.startsWith('PS')) {
      return (
        (kind === 'rsa' || kind === 'rsa-pss') &&
        cryptoVerify(
          digest,
          data,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 },
          sig,
        )
      );
    }
    if (alg.startsWith('ES')) {
      const curve = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }[alg];
      return (
        kind === 'ec' &&
        key.asymmetricKeyDetails?.namedCurve === curve &&
        cryptoVerify(digest, data, { key, dsaEncoding: 'ieee-p1363' }, sig)
      );
    }
    if (alg === 'EdDSA') return kind === 'ed25519' && cryptoVerify(null, data, key, sig);
  } catch {
    return false;
  }
  return false;
}

interface Jwk extends JsonWebKey {
  kid?: string;
}

/** One configured provider with its discovered metadata and cached keys. */
class Provider {
  readonly name: string;
  readonly opts: OidcProviderOptions;
  readonly jwksUri: string;
  readonly algs: readonly string[];
  private keys: Array<{ kid: string | undefined; key: KeyObject }> = [];

  constructor(name: string, opts: OidcProviderOptions, jwksUri: string, algs: readonly string[]) {
    this.name = name;
    this.opts = opts;
    this.jwksUri = jwksUri;
    this.algs = algs;
  }

  private async fetchKeys(): Promise<void> {
    const res = await fetch(this.jwksUri, { signal: AbortSignal.timeout(30_000) });
    if (res.status !== 200) throw new Error(`oidc: get keys failed: ${res.status}`);
    const body = (await res.json()) as { keys?: Jwk[] };
    const keys: Array<{ kid: string | undefined; key: KeyObject }> = [];
    for (const jwk of body.keys ?? []) {
      try {
        keys.push({ kid: jwk.kid, key: createPublicKey({ key: jwk, format: 'jwk' }) });
      } catch {
        // go-jose skips keys it cannot use
      }
    }
    this.keys = keys;
  }

  /** Checks the signature with a cached key, refreshing the key set once on failure (as go-oidc does). */
  async verifySignature(alg: string, kid: string | undefined, data: Buffer, sig: Buffer): Promise<boolean> {
    const attempt = (): boolean =>
      this.keys.some((k) => (kid === undefined || k.kid === kid) && verifyJws(alg, k.key, data, sig));
    if (attempt()) return true;
    try {
      await this.fetchKeys();
    } catch {
      return false;
    }
    return attempt();
  }
}

/** Validates bearer tokens against the configured providers. */
export class OidcValidator {
  private readonly providers: Provider[];
  private readonly now: () => number;
  /** The reason the last token was refused (never sent to clients; for test diagnostics). */
  lastFailure: string | undefined;

  private constructor(providers: Provider[], now: () => number) {
    this.providers = providers;
    this.now = now;
  }

  /** Validates the config and runs discovery for each provider (30 s timeout each), as niks3 does at startup. */
  static async create(
    options: readonly OidcProviderOptions[],
    allowInsecure: boolean,
    now: () => number,
  ): Promise<OidcValidator> {
    validateOidcProviders(options, allowInsecure);
    const providers: Provider[] = [];
    for (const [i, opts] of options.entries()) {
      const name = opts.name ?? `provider${i + 1}`;
      if (opts.jwksUrl !== undefined) {
        providers.push(new Provider(name, opts, opts.jwksUrl, ['RS256']));
        continue;
      }
      const wellKnown = opts.issuer.replace(/\/+$/, '') + '/.well-known/openid-configuration';
      let res: Response;
      try {
        res = await fetch(wellKnown, { signal: AbortSignal.timeout(30_000) });
      } catch (err) {
        throw new Error(`failed to create OIDC provider "${name}": ${(err as Error).message}`);
      }
      const text = await res.text();
      if (res.status !== 200)
        throw new Error(`failed to create OIDC provider "${name}": ${res.status}: ${text}`);
      const doc = JSON.parse(text) as {
        issuer?: string;
        jwks_uri?: string;
        id_token_signing_alg_values_supported?: string[];
      };
      if (doc.issuer !== opts.issuer) {
        throw new Error(
          `failed to create OIDC provider "${name}": oidc: issuer did not match the issuer returned by provider, expected "${opts.issuer}" got "${doc.issuer ?? ''}"`,
        );
      }
      const algs = (doc.id_token_signing_alg_values_supported ?? []).filter((a) =>
        SUPPORTED_ALGS.includes(a),
      );
      providers.push(new Provider(name, opts, doc.jwks_uri ?? '', algs.length > 0 ? algs : ['RS256']));
    }
    return new OidcValidator(providers, now);
  }

  /** The audience of the provider with exactly this issuer (for `/api/cache-config?issuer=`). */
  audienceFor(issuer: string): string | undefined {
    return this.providers.find((p) => p.opts.issuer === issuer)?.opts.audience;
  }

  /** Returns the principal, or undefined when the token is refused (the reason is in {@link lastFailure}). */
  async validate(token: string): Promise<OidcPrincipal | undefined> {
    const failures: string[] = [];
    for (const p of this.providers) {
      const r = await this.tryProvider(p, token);
      if (r.ok) {
        const claimFailure =
          checkBoundClaims(r.claims, p.opts.boundClaims ?? {}) ??
          checkBoundSubject(r.claims, p.opts.boundSubject ?? []);
        if (claimFailure !== undefined) {
          // A bound-claim or bound-subject failure ends validation: no other provider is tried.
          this.lastFailure = `${p.name}: ${claimFailure}`;
          return undefined;
        }
        this.lastFailure = undefined;
        const sub = r.claims['sub'];
        return {
          provider: p.name,
          issuer: p.opts.issuer,
          subject: typeof sub === 'string' ? sub : undefined,
          claims: r.claims,
        };
      }
      failures.push(`${p.name}: ${r.reason}`);
    }
    this.lastFailure = failures.join('; ');
    return undefined;
  }

  private async tryProvider(
    p: Provider,
    token: string,
  ): Promise<{ ok: true; claims: Record<string, unknown> } | { ok: false; reason: string }> {
    const parts = token.split('.');
    if (parts.length < 2) return { ok: false, reason: 'malformed jwt, expected 3 parts' };
    let claims: Record<string, unknown>;
    let expMs: number | undefined;
    let nbfMs: number | undefined;
    try {
      const payload = b64urlJson(parts[1]!);
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
        return { ok: false, reason: 'malformed jwt payload' };
      }
      claims = payload as Record<string, unknown>;
      expMs = jsonTimeMs(claims['exp']);
      nbfMs = jsonTimeMs(claims['nbf']);
    } catch (err) {
      return { ok: false, reason: `malformed jwt payload: ${(err as Error).message}` };
    }
    if (claims['iss'] !== p.opts.issuer)
      return { ok: false, reason: `id token issued by a different provider` };
    const aud = claims['aud'];
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!auds.includes(p.opts.audience))
      return { ok: false, reason: `expected audience "${p.opts.audience}"` };
    const now = this.now();
    if (expMs === undefined || expMs < now) return { ok: false, reason: 'token is expired' };
    if (nbfMs !== undefined && now + 5 * 60 * 1000 < nbfMs)
      return { ok: false, reason: 'current time before the nbf time' };

    if (parts.length !== 3)
      return { ok: false, reason: 'malformed jws: compact serialization needs 3 parts' };
    let header: { alg?: string; kid?: string };
    try {
      header = b64urlJson(parts[0]!) as { alg?: string; kid?: string };
    } catch {
      return { ok: false, reason: 'malformed jws header' };
    }
    const alg = header.alg ?? '';
    if (!p.algs.includes(alg))
      return { ok: false, reason: `id token signed with unsupported algorithm "${alg}"` };
    if (!/^[A-Za-z0-9_-]*$/.test(parts[2]!)) return { ok: false, reason: 'malformed jws signature' };
    const ok = await p.verifySignature(
      alg,
      header.kid,
      Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'),
      Buffer.from(parts[2]!, 'base64url'),
    );
    if (!ok) return { ok: false, reason: 'failed to verify signature' };
    return { ok: true, claims };
  }
}
