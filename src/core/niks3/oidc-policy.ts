/**
 * The niks3 OIDC policy file (spec niks3.md §1.4) for GitHub Actions tokens.
 *
 * Pushes are bound to immutable owner ids (`repository_owner_id`): name-based subject patterns stop
 * matching repositories created or renamed after GitHub's 2026 subject format change, ids do not.
 * Subject patterns are added on top when given. With neither, there is no policy at all, and the
 * caller must not set NIKS3_OIDC_CONFIG: the server refuses to start with an empty provider map.
 */

export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

export interface OidcPolicyInput {
  /** Audience the tokens must carry: the server URL. */
  readonly audience: string;
  /** Glob patterns for the `sub` claim, e.g. `repo:OWNER/*:*`. */
  readonly subjectPatterns: readonly string[];
  /** Numeric GitHub owner ids allowed to push. */
  readonly ownerIds: readonly string[];
}

export interface GithubProvider {
  readonly issuer: string;
  readonly audience: string;
  readonly bound_claims?: { readonly repository_owner_id: readonly string[] };
  readonly bound_subject?: readonly string[];
}

export interface OidcPolicy {
  readonly providers: { readonly github: GithubProvider };
}

/** The policy, or undefined when nothing would be allowed (then no OIDC config is deployed). */
export function githubOidcPolicy(input: OidcPolicyInput): OidcPolicy | undefined {
  const ownerIds = [...new Set(input.ownerIds)];
  const subjects = [...new Set(input.subjectPatterns)];
  if (ownerIds.length === 0 && subjects.length === 0) return undefined;
  const github: GithubProvider = {
    issuer: GITHUB_ACTIONS_ISSUER,
    audience: input.audience,
    ...(ownerIds.length > 0 ? { bound_claims: { repository_owner_id: ownerIds } } : {}),
    ...(subjects.length > 0 ? { bound_subject: subjects } : {}),
  };
  return { providers: { github } };
}

/** The file content written into the guest (stable, so its digest only changes with the policy). */
export function renderOidcPolicy(policy: OidcPolicy): string {
  return `${JSON.stringify(policy, null, 2)}\n`;
}
