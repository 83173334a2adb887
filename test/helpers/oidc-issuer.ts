/**
 * A local stand-in for GitHub's OIDC service: the runner's token endpoint
 * (ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN) plus the issuer's discovery document and JWKS, minting
 * RS256 JWTs with GitHub's claim set from its own issuer URL (http://127.0.0.1:PORT).
 */
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface OidcClaims {
  repository: string;
  repository_owner: string;
  repository_owner_id: string;
  repository_id: string;
  ref: string;
  ref_type: string;
  sha: string;
  workflow: string;
  event_name: string;
  actor: string;
  [claim: string]: unknown;
}

export interface OidcIssuer {
  /** Issuer URL (also the discovery base). */
  readonly issuer: string;
  /** ACTIONS_ID_TOKEN_REQUEST_URL (audience is appended as &audience=). */
  readonly requestUrl: string;
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN. */
  readonly requestToken: string;
  /** Tokens minted so far (for secret scans). */
  readonly minted: string[];
  /** How many token requests were made. */
  requests: number;
  /** Lifetime of minted tokens in seconds (GitHub: ~5 min; default 300). */
  lifetimeSeconds: number;
  /** Makes the token endpoint fail with this status (undefined = normal). */
  failWith: number | undefined;
  /** Claims of the next tokens (merged over the defaults). */
  claims: Partial<OidcClaims>;
  mint(audience: string, extra?: Record<string, unknown>): string;
  /** Env variables a runner sets for a job with id-token: write. */
  env(): Record<string, string>;
  close(): Promise<void>;
}

export async function startOidcIssuer(): Promise<OidcIssuer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  const requestToken = randomBytes(24).toString('hex');
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const state: OidcIssuer = {
    issuer,
    requestUrl: `${issuer}/token?api-version=2.0`,
    requestToken,
    minted: [],
    requests: 0,
    lifetimeSeconds: 300,
    failWith: undefined,
    claims: {},
    mint(audience, extra = {}) {
      const token = mintJwt(
        privateKey,
        kid,
        issuer,
        audience,
        { ...state.claims, ...extra },
        state.lifetimeSeconds,
      );
      state.minted.push(token);
      return token;
    },
    env() {
      return { ACTIONS_ID_TOKEN_REQUEST_URL: state.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      send(200, {
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks`,
        subject_types_supported: ['public', 'pairwise'],
        response_types_supported: ['id_token'],
        claims_supported: [
          'sub',
          'aud',
          'exp',
          'iat',
          'iss',
          'jti',
          'nbf',
          'ref',
          'repository',
          'repository_id',
          'repository_owner',
          'repository_owner_id',
          'run_id',
          'actor',
          'workflow',
          'event_name',
          'ref_type',
          'job_workflow_ref',
        ],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid'],
      });
      return;
    }
    if (url.pathname === '/.well-known/jwks') {
      const jwk = publicKey.export({ format: 'jwk' });
      send(200, { keys: [{ ...jwk, kid, use: 'sig', alg: 'RS256' }] });
      return;
    }
    if (url.pathname === '/token') {
      state.requests += 1;
      if (req.headers.authorization !== `Bearer ${requestToken}`) {
        send(401, { message: 'bad request token' });
        return;
      }
      if (state.failWith !== undefined) {
        send(state.failWith, { message: 'token service failure (injected)' });
        return;
      }
      const audience = url.searchParams.get('audience') ?? 'https://github.com/OWNER';
      send(200, { value: state.mint(audience) });
      return;
    }
    send(404, { message: 'not found' });
  });
  return state;
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function mintJwt(
  key: KeyObject,
  kid: string,
  issuer: string,
  audience: string,
  extra: Record<string, unknown>,
  lifetime: number,
): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    jti: randomUUID(),
    sub: 'repo:octo-org/octo-repo:ref:refs/heads/main',
    aud: audience,
    ref: 'refs/heads/main',
    sha: 'a'.repeat(40),
    repository: 'octo-org/octo-repo',
    repository_owner: 'octo-org',
    repository_owner_id: '1000001',
    repository_id: '2000002',
    repository_visibility: 'private',
    run_id: '3000003',
    run_number: '7',
    run_attempt: '1',
    actor: 'octocat',
    actor_id: '4000004',
    workflow: 'ci',
    workflow_ref: 'octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main',
    job_workflow_ref: 'octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main',
    head_ref: '',
    base_ref: '',
    event_name: 'push',
    ref_type: 'branch',
    ref_protected: 'false',
    runner_environment: 'github-hosted',
    iss: issuer,
    nbf: now - 5,
    exp: now + lifetime,
    iat: now - 5,
    ...extra,
  };
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid, x5t: kid }));
  const payload = b64url(JSON.stringify(claims));
  const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), key);
  return `${header}.${payload}.${b64url(signature)}`;
}
