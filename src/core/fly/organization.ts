/**
 * Which Fly organisation to create the app in (spec fly.md §4.1): the given slug; else the org of
 * the token (`GET /v1/tokens/current`); else the organisations GraphQL lists for the token. Exactly
 * one candidate is used (whatever its type, a deliberate relaxation of flyctl's "personal only");
 * several without a slug is an error that names them.
 */
import { ConfigurationError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TokenInfo } from './fly-api-types.js';
import type { FlyClient } from './fly-client.js';

export interface OrgResolution {
  readonly slug: string;
  /** Where the slug came from, for the log. */
  readonly source: 'input' | 'token' | 'organizations';
}

/** Apps a deploy token is limited to, or undefined when the token is not app-scoped (or unknown). */
export function appScope(tokens: readonly TokenInfo[] | undefined): string[] | undefined {
  if (!tokens || tokens.length === 0) return undefined;
  const scoped = tokens.filter((t) => (t.apps?.length ?? 0) > 0);
  return scoped.length === tokens.length ? [...new Set(scoped.flatMap((t) => t.apps ?? []))] : undefined;
}

export async function resolveOrganization(
  client: FlyClient,
  logger: Logger,
  input: string | undefined,
  tokens: readonly TokenInfo[] | undefined,
): Promise<OrgResolution> {
  if (input) return { slug: input, source: 'input' };
  const fromToken = [...new Set((tokens ?? []).map((t) => t.org_slug ?? '').filter(Boolean))];
  if (fromToken.length === 1 && fromToken[0]) {
    logger.info(`Using the organisation of the token: ${fromToken[0]}`);
    return { slug: fromToken[0], source: 'token' };
  }
  if (fromToken.length > 1) throw severalOrgs(fromToken);
  const orgs = await client.organizations();
  if (orgs.length === 1 && orgs[0]) {
    logger.info(`Using the only organisation the token can see: ${orgs[0].slug}`);
    return { slug: orgs[0].slug, source: 'organizations' };
  }
  if (orgs.length === 0) {
    throw new ConfigurationError(
      "Input 'fly-org-slug' is not set and the Fly token sees no organisation. Set `fly-org-slug`, or use an org token (`fly tokens create org`).",
    );
  }
  throw severalOrgs(orgs.map((o) => (o.name && o.name !== o.slug ? `${o.slug} (${o.name})` : o.slug)));
}

function severalOrgs(names: readonly string[]): ConfigurationError {
  return new ConfigurationError(
    `Input 'fly-org-slug' is not set and the Fly token can see several organisations: ${names.join(', ')}. Set \`fly-org-slug\` to the one that should own the app.`,
  );
}
