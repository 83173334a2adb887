/**
 * What the niks3 app on Fly should look like, computed from the settings alone (no request):
 * the app, its public IPs, its secrets and the machine config, plus the digests that let a re-run
 * see that nothing changed without ever storing a secret (only a keyed digest of them).
 */
import { createHash, createHmac } from 'node:crypto';
import {
  METADATA,
  SECRET_NAMES,
  niks3MachineConfig,
  type MachineConfig,
  type Niks3MachineSettings,
} from './machine-config.js';
import { githubOidcPolicy, renderOidcPolicy, type OidcPolicy } from '../niks3/oidc-policy.js';
import { VERSION } from '../version.js';

/** The secret values of the niks3 server (never printed, never stored outside the Fly vault). */
export interface Niks3Secrets {
  readonly apiToken: string;
  readonly db: string;
  readonly s3AccessKey: string;
  readonly s3SecretKey: string;
  /** The signing key text `name:base64`. */
  readonly signingKey: string;
}

export interface DeploySettings extends Niks3MachineSettings {
  readonly app: string;
  /** Organisation to create the app in; undefined: the only one the token can see. */
  readonly orgSlug: string | undefined;
  /** Public URL of the niks3 server (OIDC audience). */
  readonly serverUrl: string;
  readonly secrets: Niks3Secrets;
  readonly oidcSubjectPatterns: readonly string[];
  readonly oidcOwnerIds: readonly string[];
  /** Update the machine even when nothing changed, so a re-pushed image tag is pulled again. */
  readonly redeploy?: boolean;
}

export type IpType = 'v6' | 'shared_v4';

export interface DesiredState {
  readonly app: string;
  readonly orgSlug: string | undefined;
  readonly region: string;
  readonly image: string;
  readonly serverUrl: string;
  /** Public IPs `<app>.fly.dev` needs, in flyctl's order. */
  readonly ips: readonly IpType[];
  /** The OIDC policy, or undefined when none is deployed. */
  readonly oidcPolicy: OidcPolicy | undefined;
  /** Secret name -> value to set. */
  readonly secrets: Readonly<Record<string, string>>;
  /** Managed secret names that must not exist (e.g. the OIDC file when there is no policy). */
  readonly unsetSecrets: readonly string[];
  /** Machine config without the per-run metadata (hashes and launch id are added by the applier). */
  readonly config: MachineConfig;
  /** Digest of the config (image, env, services, …) and region. */
  readonly configHash: string;
  /** Keyed digest (HMAC) of the secret values: changes with any value, reveals none. */
  readonly secretsHash: string;
  /** Update the machine even when nothing changed (a re-pushed tag). */
  readonly redeploy: boolean;
}

export function desiredState(settings: DeploySettings): DesiredState {
  const oidcPolicy = githubOidcPolicy({
    audience: settings.serverUrl,
    subjectPatterns: settings.oidcSubjectPatterns,
    ownerIds: settings.oidcOwnerIds,
  });
  const machineSettings: Niks3MachineSettings = { ...settings, oidc: oidcPolicy !== undefined };
  const config = niks3MachineConfig(machineSettings, { [METADATA.toolVersion]: VERSION });
  const secrets: Record<string, string> = {
    [SECRET_NAMES.apiToken]: settings.secrets.apiToken,
    [SECRET_NAMES.db]: settings.secrets.db,
    [SECRET_NAMES.s3AccessKey]: settings.secrets.s3AccessKey,
    [SECRET_NAMES.s3SecretKey]: settings.secrets.s3SecretKey,
    [SECRET_NAMES.signingKeyFile]: Buffer.from(settings.secrets.signingKey.trim()).toString('base64'),
  };
  if (oidcPolicy)
    secrets[SECRET_NAMES.oidcConfigFile] = Buffer.from(renderOidcPolicy(oidcPolicy)).toString('base64');
  const unsetSecrets = oidcPolicy ? [] : [SECRET_NAMES.oidcConfigFile];
  return {
    app: settings.app,
    orgSlug: settings.orgSlug,
    region: settings.region,
    image: settings.image,
    serverUrl: settings.serverUrl,
    ips: ['v6', 'shared_v4'],
    oidcPolicy,
    secrets,
    unsetSecrets,
    config,
    configHash: configHash(config, settings.region),
    secretsHash: secretsHash(secrets, settings.secrets.apiToken),
    redeploy: settings.redeploy === true,
  };
}

/** JSON with object keys sorted at every level, so equal values always give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Metadata keys that are not part of the desired config (they describe a run, not the app). */
const VOLATILE_METADATA: readonly string[] = [
  METADATA.toolVersion,
  METADATA.configHash,
  METADATA.secretsHash,
  METADATA.secretsFingerprint,
  METADATA.secretsVersion,
  METADATA.launchId,
];

export function configHash(config: MachineConfig, region: string): string {
  const metadata = Object.fromEntries(
    Object.entries(config.metadata).filter(([key]) => !VOLATILE_METADATA.includes(key)),
  );
  const digest = createHash('sha256')
    .update(canonicalJson({ region, config: { ...config, metadata } }))
    .digest('hex');
  return `sha256:${digest}`;
}

/**
 * HMAC-SHA256 of the secret values, keyed by the niks3 API token (itself one of the secrets, at
 * least 36 random characters): equal secrets give equal digests, and the digest cannot be used to
 * guess a value offline by anyone who does not already hold the token.
 */
export function secretsHash(secrets: Readonly<Record<string, string>>, key: string): string {
  return `hmac-sha256:${createHmac('sha256', `nix-cache fly secrets\u0000${key}`).update(canonicalJson(secrets)).digest('hex')}`;
}

/**
 * A fingerprint of what the Fly vault holds for the managed names (its own opaque digests), so a
 * secret changed out of band (`fly secrets set`) is noticed on the next run.
 */
export function secretsFingerprint(
  digests: ReadonlyMap<string, string | undefined>,
  names: readonly string[],
): string {
  const pairs = [...names].sort().map((name) => [name, digests.get(name) ?? null]);
  return `sha256:${createHash('sha256').update(JSON.stringify(pairs)).digest('hex').slice(0, 32)}`;
}
