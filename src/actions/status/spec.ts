import type { ActionSpec } from '../../core/settings/input-spec.js';
import { SERVER_URL } from '../common-inputs.js';

export const STATUS_SPEC: ActionSpec = {
  name: 'status',
  title: 'nix-cache status',
  description: 'Check the cache end to end (health, config, public reads, signing key, usage) and estimate its monthly cost.',
  icon: 'activity',
  color: 'gray-dark',
  inputs: [
    SERVER_URL,
    { name: 'cache-url', description: 'Public read URL.', type: 'url', defaultText: 'the URL the server announces' },
    {
      name: 'expected-public-key',
      description: 'The public key (`name:base64`) the server must announce.',
      type: 'string',
      pattern: /^[^\s:]+:[A-Za-z0-9+/=]+$/,
      accepts: '`name:base64`',
    },
    { name: 'cloudflare-api-token', description: 'To report the R2 bucket.', type: 'string', secret: true },
    { name: 'cloudflare-account-id', description: 'For the R2 report.', type: 'string', pattern: /^[0-9a-f]{32}$/, accepts: 'a 32-character hex account id' },
    { name: 'r2-bucket-name', description: 'For the R2 report.', type: 'string' },
    { name: 'r2-jurisdiction', description: 'For the R2 report.', type: 'enum', values: ['default', 'eu', 'fedramp'], default: 'default' },
    { name: 'cloudflare-api-url', description: 'Cloudflare API base URL.', type: 'url', default: 'https://api.cloudflare.com/client/v4' },
    { name: 'fly-api-token', description: 'To report the Fly machine.', type: 'string', secret: true },
    { name: 'fly-app-name', description: 'For the Fly report.', type: 'string' },
    { name: 'fly-api-url', description: 'Fly Machines API base URL.', type: 'url', default: 'https://api.machines.dev' },
    { name: 'r2-price-per-gb-month', description: 'R2 Standard storage price above the free tier (USD).', type: 'number', default: '0.015', min: 0 },
    { name: 'r2-free-gb', description: 'R2 free storage per month (GB).', type: 'number', default: '10', min: 0 },
    { name: 'fly-vm-price-per-month', description: 'Fly VM price per month (USD; shared-cpu-1x 256 MB).', type: 'number', default: '1.94', min: 0 },
    { name: 'neon-price-per-month', description: 'Neon price per month (USD; Free plan).', type: 'number', default: '0', min: 0 },
    { name: 'prices-date', description: 'Date the prices were taken.', type: 'string', default: '2026-03-28' },
    { name: 'timeout', description: 'Seconds per check.', type: 'integer', default: '30', min: 1, max: 600 },
  ],
  outputs: [
    { name: 'healthy', description: '`true` when every check passed.' },
    { name: 'public-key', description: 'Public key the server announces.' },
    { name: 'cache-url', description: 'Public read URL.' },
    { name: 'objects', description: 'Objects in the cache (from /api/cache-stats).' },
    { name: 'bytes', description: 'Logical bytes in the cache.' },
    { name: 'monthly-cost', description: 'Estimated monthly cost in USD.' },
    { name: 'checks', description: 'JSON list of the checks and their results.' },
  ],
};
