/** The status action's inputs as one typed object, with the cross-field checks made before any request. */
import { ConfigurationError } from '../../core/errors.js';
import type { InputReader } from '../../core/settings/input-reader.js';
import type { Prices } from '../../core/status/cost-estimate.js';

export interface StatusInputs {
  readonly serverUrl: string;
  readonly cacheUrl: string | undefined;
  readonly expectedPublicKey: string | undefined;
  readonly r2:
    | {
        readonly apiToken: string;
        readonly accountId: string;
        readonly bucket: string;
        readonly jurisdiction: 'default' | 'eu' | 'fedramp';
        readonly apiUrl: string;
        /** Host of the R2 custom domain to check; undefined: the host of the public read URL. */
        readonly domain: string | undefined;
      }
    | undefined;
  readonly fly: { readonly apiToken: string; readonly app: string; readonly apiUrl: string } | undefined;
  readonly prices: Prices;
  readonly timeoutMs: number;
}

export function readStatusInputs(inputs: InputReader): StatusInputs {
  const cloudflareToken = inputs.optional('cloudflare-api-token');
  let r2: StatusInputs['r2'];
  if (cloudflareToken) {
    const missing = ['cloudflare-account-id', 'r2-bucket-name'].filter((name) => !inputs.optional(name));
    if (missing.length > 0) {
      throw new ConfigurationError(
        `Input 'cloudflare-api-token' is given, so the R2 report also needs ${missing.map((name) => `'${name}'`).join(' and ')} (provision's inputs and output bucket-name).`,
      );
    }
    r2 = {
      apiToken: cloudflareToken,
      accountId: inputs.required('cloudflare-account-id'),
      bucket: inputs.required('r2-bucket-name'),
      jurisdiction: inputs.enum<'default' | 'eu' | 'fedramp'>('r2-jurisdiction'),
      apiUrl: inputs.requiredUrl('cloudflare-api-url'),
      domain: inputs.optional('cache-domain'),
    };
  }
  const flyToken = inputs.optional('fly-api-token');
  let fly: StatusInputs['fly'];
  if (flyToken) {
    if (!inputs.optional('fly-app-name')) {
      throw new ConfigurationError(
        "Input 'fly-api-token' is given, so the Fly report also needs 'fly-app-name'.",
      );
    }
    fly = {
      apiToken: flyToken,
      app: inputs.required('fly-app-name'),
      apiUrl: inputs.requiredUrl('fly-api-url'),
    };
  }
  return {
    serverUrl: inputs.requiredUrl('server-url'),
    cacheUrl: inputs.url('cache-url'),
    expectedPublicKey: inputs.optional('expected-public-key'),
    r2,
    fly,
    prices: {
      r2PerGbMonth: inputs.number('r2-price-per-gb-month'),
      r2FreeGb: inputs.number('r2-free-gb'),
      flyVmPerMonth: inputs.number('fly-vm-price-per-month'),
      neonPerMonth: inputs.number('neon-price-per-month'),
      date: inputs.required('prices-date'),
    },
    timeoutMs: inputs.integer('timeout') * 1000,
  };
}
