import type { ActionSpec } from '../../core/settings/input-spec.js';
import { R2_JURISDICTIONS, R2_LOCATIONS, R2_STORAGE_CLASSES } from '../../core/cloudflare/r2-names.js';
import { MODE } from '../common-inputs.js';

export { R2_JURISDICTIONS, R2_LOCATIONS, R2_STORAGE_CLASSES };

export const PROVISION_SPEC: ActionSpec = {
  name: 'provision',
  title: 'nix-cache provision',
  description:
    'Create or converge the Cloudflare R2 side of the cache (bucket and custom domain), plan it, or destroy it.',
  icon: 'database',
  color: 'orange',
  inputs: [
    {
      name: 'cloudflare-api-token',
      description:
        'Cloudflare API token that can manage R2 buckets and R2 custom domains (CLOUDFLARE_API_TOKEN).',
      type: 'string',
      required: true,
      secret: true,
      pattern: /^[A-Za-z0-9_\-.]{8,200}$/,
      accepts: 'a Cloudflare API token (letters, digits, `_`, `-`, `.`; 8 to 200 characters)',
      invalid: ['short', 'has spaces in it 0123456789', 'quote"0123456789012345678'],
    },
    {
      name: 'cloudflare-account-id',
      description: 'Cloudflare account that owns R2.',
      type: 'string',
      required: true,
      pattern: /^[0-9a-f]{32}$/,
      accepts: 'a 32-character hex account id',
      invalid: ['0123', '0123456789ABCDEF0123456789ABCDEF', 'g123456789abcdef0123456789abcdef'],
      example: '0123456789abcdef0123456789abcdef',
    },
    {
      name: 'zone-name',
      description: 'DNS zone of the public cache host name, e.g. `example.dev`.',
      type: 'string',
      required: true,
      pattern: /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/,
      accepts: 'a lower-case DNS zone name such as `example.dev`',
      invalid: ['Example.dev', 'localhost', '-bad.dev', 'https://example.dev', 'example.dev.'],
      example: 'example.dev',
    },
    {
      name: 'cloudflare-zone-id',
      description: 'Zone id of `zone-name`.',
      type: 'string',
      defaultText: 'looked up from zone-name',
      pattern: /^[0-9a-f]{32}$/,
      accepts: 'a 32-character hex zone id',
      invalid: ['123', 'zone-example-dev'],
    },
    {
      name: 'stack-name',
      description:
        'Short id of this cache; its slug (lower-case, every character outside `[a-z0-9-]` replaced by `-`) names the bucket.',
      type: 'string',
      required: true,
      pattern: /^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$/,
      accepts: 'a short name (letters, digits, space, `.`, `_`, `-`; at most 63 characters)',
      invalid: ['-lead', 'a/b', 'x'.repeat(64)],
      example: 'my-cache',
    },
    {
      name: 'cache-subdomain',
      description: 'Public host is `<cache-subdomain>.<zone-name>`.',
      type: 'string',
      default: 'cache',
      pattern: /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/,
      accepts: 'a lower-case DNS label such as `cache`',
      invalid: ['Cache', '-cache', 'ca_che', 'cache.'],
    },
    {
      name: 'r2-bucket-name',
      description: 'R2 bucket name (3 to 63 of `a-z 0-9 -`, starting and ending with a letter or digit).',
      type: 'string',
      defaultText: '`<slug>-niks3`',
      pattern: /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/,
      accepts: '3 to 63 characters of `a-z`, `0-9` and `-`, starting and ending with a letter or digit',
      invalid: ['UPPER', 'ab', '-lead', 'trail-', 'under_score'],
    },
    {
      name: 'r2-location',
      description:
        'Location hint of a new bucket. Not sent when `r2-jurisdiction` is set (the jurisdiction decides where the data lives); a hint outside the jurisdiction is refused.',
      type: 'enum',
      values: R2_LOCATIONS,
      default: 'enam',
    },
    {
      name: 'r2-jurisdiction',
      description:
        'R2 jurisdiction of the bucket (cannot change later); `eu`, `us` and `fedramp` buckets have their own S3 endpoint.',
      type: 'enum',
      values: R2_JURISDICTIONS,
      default: 'default',
    },
    {
      name: 'r2-storage-class',
      description: 'Default storage class of the bucket.',
      type: 'enum',
      values: R2_STORAGE_CLASSES,
      default: 'Standard',
    },
    MODE,
    {
      name: 'confirm',
      description: 'For `mode: destroy`: must equal the bucket name.',
      type: 'string',
    },
    {
      name: 'delete-data',
      description: 'For `mode: destroy`: also empty and delete the bucket (otherwise it is kept).',
      type: 'boolean',
      default: 'false',
    },
    {
      name: 's3-access-key',
      description:
        'R2 S3 access key id (NIKS3_S3_ACCESS_KEY): checked with `check-s3-credentials`, and used by `mode: destroy` with `delete-data` to empty the bucket 1000 objects per request (without it, the API deletes one object per request).',
      type: 'string',
      secret: true,
    },
    {
      name: 's3-secret-key',
      description: 'R2 S3 secret access key (NIKS3_S3_SECRET_KEY).',
      type: 'string',
      secret: true,
    },
    {
      name: 'check-s3-credentials',
      description:
        'When the S3 keys are given: PUT, GET and DELETE a probe object through the R2 S3 endpoint, so bad keys fail here, not at the first push.',
      type: 'boolean',
      defaultText: '`true` when both S3 keys are given',
    },
    {
      name: 's3-endpoint-url',
      description:
        'Override of the R2 S3 endpoint used by the S3 check and by destroy to empty the bucket (a local stand-in in tests and the demo).',
      type: 'url',
      defaultText: 'https://<account>.r2.cloudflarestorage.com (per jurisdiction)',
    },
    {
      name: 'database-url',
      description: 'PostgreSQL connection string (NIKS3_DB), to check with `check-database`.',
      type: 'string',
      secret: true,
      pattern: /^postgres(ql)?:\/\/\S+$/,
      accepts: 'a postgres:// or postgresql:// URL',
      invalid: ['mysql://u:p@h/db', 'postgresql://has space@h/db'],
    },
    {
      name: 'check-database',
      description: 'When `database-url` is given: connect and run `SELECT 1` (TLS as the URL says).',
      type: 'boolean',
      defaultText: '`true` when database-url is given',
    },
    {
      name: 'cloudflare-api-url',
      description: 'Cloudflare API base URL (proxies, and the local stand-in in tests and the demo).',
      type: 'url',
      default: 'https://api.cloudflare.com/client/v4',
    },
    {
      name: 'domain-wait',
      description: 'Seconds to wait for the custom domain to become active.',
      type: 'integer',
      default: '120',
      min: 0,
      max: 3600,
    },
  ],
  outputs: [
    { name: 'bucket-name', description: 'R2 bucket name.' },
    { name: 'cache-url', description: 'Public cache URL, `https://<subdomain>.<zone>`.' },
    { name: 's3-endpoint', description: 'R2 S3 endpoint host (no scheme), per jurisdiction.' },
    { name: 'zone-id', description: 'Zone id of the cache host.' },
    {
      name: 'custom-domain-status',
      description: 'Status of the custom domain (e.g. `active`, `pending`, `absent`).',
    },
    { name: 'changed', description: '`true` when anything was (or, in plan mode, would be) changed.' },
    {
      name: 'plan',
      description: 'JSON list of the changes made (apply/destroy) or that apply would make (plan).',
    },
  ],
};
