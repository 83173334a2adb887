/**
 * The stack file (`nix-cache.json`): the non-secret settings of one cache, with the keys and
 * defaults of the original stack. Secrets never live here; they come from the environment.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigurationError } from '../core/errors.js';

export interface StackSetting {
  /** Key in nix-cache.json (the original's name). */
  readonly key: string;
  /** Input names it feeds, per action. */
  readonly inputs: readonly string[];
  readonly default: string | number | boolean | readonly string[] | null;
  readonly example: string | number | boolean | readonly string[] | null;
}

export const STACK_SETTINGS: readonly StackSetting[] = [
  { key: 'stack_name', inputs: ['stack-name'], default: null, example: 'my-cache' },
  {
    key: 'cloudflare_account_id',
    inputs: ['cloudflare-account-id'],
    default: null,
    example: '0123456789abcdef0123456789abcdef',
  },
  {
    key: 'cloudflare_zone_id',
    inputs: ['cloudflare-zone-id'],
    default: null,
    example: 'fedcba9876543210fedcba9876543210',
  },
  { key: 'zone_name', inputs: ['zone-name'], default: null, example: 'example.dev' },
  { key: 'cache_subdomain', inputs: ['cache-subdomain'], default: 'cache', example: 'cache' },
  { key: 'r2_bucket_name', inputs: ['r2-bucket-name'], default: null, example: null },
  { key: 'r2_location', inputs: ['r2-location'], default: 'enam', example: 'enam' },
  { key: 'r2_jurisdiction', inputs: ['r2-jurisdiction'], default: 'default', example: 'default' },
  { key: 'r2_storage_class', inputs: ['r2-storage-class'], default: 'Standard', example: 'Standard' },
  { key: 'r2_s3_region', inputs: ['r2-s3-region'], default: 'auto', example: 'auto' },
  { key: 'fly_app_name', inputs: ['fly-app-name'], default: null, example: 'my-niks3' },
  { key: 'fly_org_slug', inputs: ['fly-org-slug'], default: null, example: null },
  { key: 'fly_primary_region', inputs: ['fly-primary-region'], default: 'iad', example: 'iad' },
  { key: 'fly_vm_cpu_kind', inputs: ['fly-vm-cpu-kind'], default: 'shared', example: 'shared' },
  { key: 'fly_vm_cpus', inputs: ['fly-vm-cpus'], default: 1, example: 1 },
  { key: 'fly_vm_memory', inputs: ['fly-vm-memory'], default: '256mb', example: '256mb' },
  { key: 'fly_swap_size_mb', inputs: ['fly-swap-size-mb'], default: 512, example: 512 },
  { key: 'niks3_s3_concurrency', inputs: ['niks3-s3-concurrency'], default: 20, example: 20 },
  { key: 'niks3_enable_read_proxy', inputs: ['niks3-enable-read-proxy'], default: false, example: false },
  {
    key: 'niks3_image',
    inputs: ['niks3-image'],
    default: 'ghcr.io/mic92/niks3:v1.7.0',
    example: 'ghcr.io/mic92/niks3:v1.7.0',
  },
  {
    key: 'oidc_github_subject_patterns',
    inputs: ['oidc-github-subject-patterns'],
    default: [],
    example: ['repo:OWNER/*:*'],
  },
  { key: 'oidc_github_owner_ids', inputs: ['oidc-github-owner-ids'], default: [], example: [] },
  // Endpoints: the real APIs by default; the demo points them at the local stand-ins.
  { key: 'cloudflare_api_url', inputs: ['cloudflare-api-url'], default: null, example: null },
  { key: 'fly_api_url', inputs: ['fly-api-url'], default: null, example: null },
  { key: 'fly_graphql_url', inputs: ['fly-graphql-url'], default: null, example: null },
  { key: 'server_url', inputs: ['server-url'], default: null, example: null },
  { key: 's3_endpoint_url', inputs: ['s3-endpoint-url'], default: null, example: null },
];

export type StackFile = Record<string, unknown>;

export function readStackFile(path: string, required: boolean): StackFile {
  if (!existsSync(path)) {
    if (required) {
      throw new ConfigurationError(
        `no stack file at ${path}: run \`nix-cache init-config\` and fill it in, or pass --stack FILE`,
      );
    }
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigurationError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigurationError(`${path} must hold a JSON object of settings`);
  }
  const known = new Set(STACK_SETTINGS.map((s) => s.key));
  const unknown = Object.keys(parsed).filter(
    (key) => !known.has(key) && !key.startsWith('$') && !key.startsWith('_'),
  );
  if (unknown.length > 0) {
    throw new ConfigurationError(
      `${path} has unknown settings: ${unknown.join(', ')} (known: ${[...known].join(', ')})`,
    );
  }
  for (const setting of STACK_SETTINGS) {
    const value = (parsed as Record<string, unknown>)[setting.key];
    if (value === undefined || value === null) continue;
    const list = Array.isArray(setting.default);
    const ok = list
      ? Array.isArray(value) && value.every((item) => typeof item === 'string')
      : typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
    if (!ok) {
      throw new ConfigurationError(
        `${path}: setting ${setting.key} must be ${list ? 'a list of strings' : 'a string, number or boolean'} (or null for the default), not ${JSON.stringify(value)}`,
      );
    }
  }
  return parsed as StackFile;
}

/** A stack value as an input string (arrays become lines; null is unset). */
export function stackValue(stack: StackFile, key: string): string | undefined {
  const value = stack[key];
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((item) => String(item as string)).join('\n');
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  return undefined;
}

/** Settings that still hold the example's placeholders (values nobody can really have). */
export function placeholderSettings(stack: StackFile): string[] {
  const found: string[] = [];
  for (const key of ['cloudflare_account_id', 'cloudflare_zone_id']) {
    const example = STACK_SETTINGS.find((s) => s.key === key)?.example;
    if (example !== null && stack[key] === example) found.push(key);
  }
  const patterns = stack['oidc_github_subject_patterns'];
  if (Array.isArray(patterns) && patterns.some((p) => typeof p === 'string' && p.includes('OWNER')))
    found.push('oidc_github_subject_patterns');
  return found;
}

export function exampleStackFile(): string {
  const example: Record<string, unknown> = {};
  for (const setting of STACK_SETTINGS) example[setting.key] = setting.example;
  return `${JSON.stringify(example, null, 2)}\n`;
}
