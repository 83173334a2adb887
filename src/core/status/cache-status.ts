/**
 * Reads the whole cache end to end, changing nothing: the write URL (`/health`,
 * `/api/cache-config`), the public read URL (`nix-cache-info`), the signing key the server
 * announces against the expected one, the cache size (`/api/cache-stats`), and, when their tokens
 * are given, the R2 bucket with its custom domain and the Fly app with its machines. Every check
 * reports (one failing does not hide the others), and the result carries a monthly cost estimate.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { CacheConfig, CacheStats } from '../niks3/api-types.js';
import { formatBytes, normaliseBaseUrl } from '../settings/values.js';
import { estimateMonthlyCost, type CostEstimate, type Prices } from './cost-estimate.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skipped';

export interface StatusCheck {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

/** What status needs of the niks3 client (Niks3Client has it). */
export interface StatusNiks3 {
  readonly serverUrl: string;
  connect(
    timeoutMs: number,
    connectTimeoutInput?: string,
  ): Promise<{ readonly config: CacheConfig | undefined }>;
  health(): Promise<boolean>;
  cacheStats(): Promise<CacheStats | undefined>;
}

/** Reads `<cache-url>/nix-cache-info`. */
export interface PublicCacheReader {
  cacheInfo(cacheUrl: string): Promise<{ readonly status: number; readonly text: string }>;
}

/** What status needs of the R2 API (R2Api has it). */
export interface StatusR2 {
  getBucket(
    name: string,
    jurisdiction: 'default' | 'eu' | 'fedramp',
  ): Promise<
    | {
        readonly location: string | undefined;
        readonly storageClass: string | undefined;
        readonly creationDate: string | undefined;
      }
    | undefined
  >;
  getDomain(
    bucket: string,
    jurisdiction: 'default' | 'eu' | 'fedramp',
    host: string,
  ): Promise<
    | {
        readonly enabled: boolean;
        readonly status: { readonly ownership: string; readonly ssl: string };
        readonly degraded: boolean;
      }
    | undefined
  >;
}

export interface StatusMachine {
  readonly id: string;
  readonly state: string;
  readonly region: string;
  readonly config?: {
    readonly image?: string;
    readonly guest?: { readonly cpu_kind?: string; readonly cpus?: number; readonly memory_mb?: number };
  };
}

/** What status needs of the Fly client (FlyClient has it). */
export interface StatusFly {
  getApp(
    name: string,
  ): Promise<
    | { readonly kind: 'found'; readonly app: { readonly status?: string } }
    | { readonly kind: 'missing' }
    | { readonly kind: 'forbidden'; readonly detail: string }
  >;
  listMachines(app: string): Promise<readonly StatusMachine[]>;
}

export interface CacheStatusOptions {
  readonly niks3: StatusNiks3;
  readonly publicCache: PublicCacheReader;
  readonly logger: Logger;
  /** The public read URL; default: the one the server announces. */
  readonly cacheUrl: string | undefined;
  readonly expectedPublicKey: string | undefined;
  /** Bound of the first contact (a sleeping server wakes up meanwhile). */
  readonly timeoutMs: number;
  readonly r2?: {
    readonly api: StatusR2;
    readonly bucket: string;
    readonly jurisdiction: 'default' | 'eu' | 'fedramp';
    /** Host of the custom domain to check; default: the host of the public read URL. */
    readonly domain?: string | undefined;
  };
  readonly fly?: { readonly api: StatusFly; readonly app: string };
  readonly prices: Prices;
}

export interface CacheStatus {
  readonly checks: readonly StatusCheck[];
  readonly healthy: boolean;
  readonly serverUrl: string;
  /** The public read URL used (given or announced), if any. */
  readonly cacheUrl: string | undefined;
  readonly publicKeys: readonly string[];
  readonly stats: CacheStats | undefined;
  readonly storageClass: string | undefined;
  readonly cost: CostEstimate;
}

const MARK: Record<'ok' | 'skipped', string> = { ok: 'ok  ', skipped: 'skip' };

export async function readCacheStatus(options: CacheStatusOptions): Promise<CacheStatus> {
  const { niks3, logger } = options;
  const checks: StatusCheck[] = [];
  const add = (name: string, status: CheckStatus, detail: string): void => {
    checks.push({ name, status, detail });
    // Failures and warnings are annotations (their level shows); other lines carry a mark.
    if (status === 'fail') logger.error(`${name}: ${detail}`);
    else if (status === 'warn') logger.warn(`${name}: ${detail}`);
    else logger.info(`${MARK[status === 'ok' ? 'ok' : 'skipped']} ${name}: ${detail}`);
  };

  let config: CacheConfig | undefined;
  let reachable = false;
  let stats: CacheStats | undefined;
  await logger.group(`niks3 server ${niks3.serverUrl}`, async () => {
    try {
      config = (await niks3.connect(options.timeoutMs, 'timeout')).config;
      reachable = true;
    } catch (error) {
      add('write URL', 'fail', errorMessage(error));
    }
    if (!reachable) {
      add('health', 'skipped', 'the server did not answer');
      add('cache config', 'skipped', 'the server did not answer');
      return;
    }
    add('write URL', 'ok', `${niks3.serverUrl} answers`);
    try {
      const healthy = await niks3.health();
      add(
        'health',
        healthy ? 'ok' : 'fail',
        healthy
          ? '/health answers 200'
          : `niks3: GET ${niks3.serverUrl}/health does not answer 200: the server runs but reports itself unhealthy; check its logs (fly logs) and run status again`,
      );
    } catch (error) {
      add('health', 'fail', errorMessage(error));
    }
    if (config) {
      add(
        'cache config',
        'ok',
        `substituter ${config.substituterUrl || '(none announced)'}, ${config.publicKeys.length} public key(s)`,
      );
    } else {
      add('cache config', 'warn', 'the server has no /api/cache-config (niks3 older than v1.5.0)');
    }
  });

  const publicKeys = config?.publicKeys ?? [];
  const expected = options.expectedPublicKey;
  if (!reachable || !config) {
    add('public key', 'skipped', 'the server does not announce its keys');
  } else if (publicKeys.length === 0) {
    add(
      'public key',
      'fail',
      'the server announces no public key: it has no signing key, so nothing it serves is signed',
    );
  } else if (!expected) {
    add(
      'public key',
      'ok',
      `announced: ${publicKeys.join(', ')} (no expected-public-key given to compare with)`,
    );
  } else if (publicKeys.includes(expected)) {
    add('public key', 'ok', `the server announces the expected key ${expected}`);
  } else {
    add(
      'public key',
      'fail',
      `expected ${expected}, but the server announces ${publicKeys.join(', ')}: consumers that trust the expected key will refuse what this server signs (a changed NIKS3_SIGNING_KEY?)`,
    );
  }

  const announced = config?.substituterUrl ? normaliseBaseUrl(config.substituterUrl) : undefined;
  const cacheUrl = options.cacheUrl ?? announced;
  await logger.group('Public cache', async () => {
    if (!cacheUrl) {
      add(
        'public read URL',
        'fail',
        'no cache-url given and the server announces none; set input cache-url (provision output `cache-url`)',
      );
      return;
    }
    if (options.cacheUrl && announced && announced !== options.cacheUrl) {
      add(
        'announced URL',
        'warn',
        `the server announces ${announced}, not ${options.cacheUrl}: NIKS3_CACHE_URL differs from cache-url`,
      );
    }
    try {
      const info = await options.publicCache.cacheInfo(cacheUrl);
      const storeDir = /^StoreDir:\s*(\S+)/m.exec(info.text)?.[1];
      if (info.status === 200 && storeDir) {
        const priority = /^Priority:\s*(\d+)/m.exec(info.text)?.[1];
        add(
          'public read URL',
          'ok',
          `${cacheUrl}/nix-cache-info: StoreDir ${storeDir}${priority ? `, Priority ${priority}` : ''}`,
        );
      } else if (info.status === 200) {
        add(
          'public read URL',
          'fail',
          `${cacheUrl}/nix-cache-info answers 200 but is not a nix-cache-info (no StoreDir line)`,
        );
      } else {
        add(
          'public read URL',
          'fail',
          `${cacheUrl}/nix-cache-info answers HTTP ${info.status}: check the R2 custom domain (provision) and that niks3 initialised the bucket`,
        );
      }
    } catch (error) {
      add('public read URL', 'fail', errorMessage(error));
    }
  });

  if (reachable) {
    try {
      stats = await niks3.cacheStats();
      if (stats)
        add('cache stats', 'ok', `${stats.objects} objects, ${formatBytes(stats.logicalBytes)} (NAR size)`);
      else
        add(
          'cache stats',
          'warn',
          'the server has no /api/cache-stats (niks3 v1.7.0 and older); the cost estimate leaves storage out',
        );
    } catch (error) {
      add('cache stats', 'fail', errorMessage(error));
    }
  } else {
    add('cache stats', 'skipped', 'the server did not answer');
  }

  let storageClass: string | undefined;
  if (options.r2) {
    const { api, bucket, jurisdiction, domain: domainHost } = options.r2;
    await logger.group(`Cloudflare R2 bucket ${bucket}`, async () => {
      try {
        const found = await api.getBucket(bucket, jurisdiction);
        if (found) {
          storageClass = found.storageClass;
          add(
            'R2 bucket',
            'ok',
            `${bucket} (jurisdiction ${jurisdiction}, location ${found.location ?? '?'}, ${found.storageClass ?? '?'}${found.creationDate ? `, created ${found.creationDate}` : ''})`,
          );
        } else {
          add('R2 bucket', 'fail', `${bucket} does not exist in jurisdiction ${jurisdiction}`);
        }
      } catch (error) {
        add('R2 bucket', 'fail', errorMessage(error));
      }
      const host = domainHost ?? (cacheUrl ? new URL(cacheUrl).hostname : undefined);
      if (!host) return;
      try {
        const domain = await api.getDomain(bucket, jurisdiction, host);
        if (!domain) add('R2 custom domain', 'fail', `${host} is not attached to bucket ${bucket}`);
        else if (domain.degraded)
          add('R2 custom domain', 'warn', `${host}: Cloudflare reports its status as unknown (transient)`);
        else if (!domain.enabled) add('R2 custom domain', 'fail', `${host} is attached but disabled`);
        else if (domain.status.ownership === 'active' && domain.status.ssl === 'active')
          add('R2 custom domain', 'ok', `${host} active (ownership and TLS)`);
        else
          add(
            'R2 custom domain',
            'warn',
            `${host}: ownership ${domain.status.ownership}, TLS ${domain.status.ssl} (not active yet)`,
          );
      } catch (error) {
        add('R2 custom domain', 'fail', errorMessage(error));
      }
    });
  }

  if (!options.r2) add('R2 bucket', 'skipped', 'no cloudflare-api-token given');
  if (options.fly) {
    const { api, app } = options.fly;
    await logger.group(`Fly app ${app}`, async () => {
      try {
        const lookup = await api.getApp(app);
        if (lookup.kind === 'missing') {
          add('Fly app', 'fail', `${app} does not exist (or the token cannot see it)`);
          return;
        }
        if (lookup.kind === 'forbidden') {
          add('Fly app', 'fail', `${app}: the token may not read it (${lookup.detail})`);
          return;
        }
        add('Fly app', 'ok', `${app}${lookup.app.status ? ` (${lookup.app.status})` : ''}`);
        const machines = await api.listMachines(app);
        const usable = machines.filter((m) =>
          ['started', 'stopped', 'suspended', 'starting', 'created'].includes(m.state),
        );
        const describe = (m: StatusMachine): string => {
          const guest = m.config?.guest;
          const size = guest
            ? `, ${guest.cpu_kind ?? ''}-cpu-${guest.cpus ?? '?'}x ${guest.memory_mb ?? '?'} MB`
            : '';
          return `${m.id} ${m.state} in ${m.region}${m.config?.image ? `, ${m.config.image}` : ''}${size}`;
        };
        if (machines.length === 0) add('Fly machine', 'fail', `${app} has no machine: run deploy`);
        else if (usable.length === 0) add('Fly machine', 'fail', machines.map(describe).join('; '));
        else
          add(
            'Fly machine',
            'ok',
            `${machines.map(describe).join('; ')}${usable.some((m) => m.state !== 'started') ? ' (a stopped machine starts on the next request)' : ''}`,
          );
      } catch (error) {
        add('Fly app', 'fail', errorMessage(error));
      }
    });
  }

  if (!options.fly) add('Fly app', 'skipped', 'no fly-api-token given');

  const cost = estimateMonthlyCost({
    storageBytes: stats?.logicalBytes,
    storageSource:
      'uncompressed NAR size from /api/cache-stats; R2 holds them zstd-compressed, so this is an upper bound',
    prices: options.prices,
    storageClass,
  });
  return {
    checks,
    healthy: checks.every((check) => check.status !== 'fail'),
    serverUrl: niks3.serverUrl,
    cacheUrl,
    publicKeys,
    stats,
    storageClass,
    cost,
  };
}
