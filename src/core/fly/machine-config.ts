/**
 * The Machine config of the niks3 app: the JSON form of the original stack's fly.toml (spec
 * stack.md "The niks3 app on Fly", mapped as flyctl maps fly.toml, fly.md §5.1–§5.2).
 */

/** One port of a service. */
export interface MachinePort {
  readonly port: number;
  readonly handlers: readonly string[];
  readonly force_https?: boolean;
}

/** A health check of a service (durations as Go duration strings). */
export interface ServiceCheck {
  readonly type: 'http' | 'tcp';
  readonly interval: string;
  readonly timeout: string;
  readonly grace_period: string;
  readonly method?: string;
  readonly path?: string;
}

export interface MachineService {
  readonly protocol: 'tcp' | 'udp';
  readonly internal_port: number;
  /** `"stop"`/`"suspend"`/`"off"`; the API answers booleans for stop/off. */
  readonly autostop?: string | boolean;
  readonly autostart?: boolean;
  readonly min_machines_running?: number;
  readonly ports: readonly MachinePort[];
  readonly concurrency?: {
    readonly type: 'requests' | 'connections';
    readonly soft_limit: number;
    readonly hard_limit: number;
  };
  readonly checks?: readonly ServiceCheck[];
}

/** A file written into the guest at boot; `secret_name` values are base64 of the content. */
export interface MachineFile {
  readonly guest_path: string;
  readonly secret_name?: string;
  readonly raw_value?: string;
  readonly mode?: number;
}

export interface MachineGuest {
  readonly cpu_kind: 'shared' | 'performance';
  readonly cpus: number;
  readonly memory_mb: number;
}

export interface MachineConfig {
  readonly image: string;
  readonly env: Readonly<Record<string, string>>;
  readonly init?: { readonly swap_size_mb?: number };
  readonly guest: MachineGuest;
  readonly services: readonly MachineService[];
  readonly files?: readonly MachineFile[];
  readonly stop_config?: { readonly signal: string; readonly timeout: string };
  readonly restart?: { readonly policy: 'no' | 'always' | 'on-failure'; readonly max_retries?: number };
  readonly metadata: Readonly<Record<string, string>>;
  readonly checks?: Readonly<Record<string, unknown>>;
}

/** niks3 listens here (NIKS3_HTTP_ADDR). */
export const NIKS3_PORT = 5751;
export const SIGNING_KEY_GUEST_PATH = '/run/secrets/niks3-signing-key';
export const OIDC_CONFIG_GUEST_PATH = '/run/secrets/niks3-oidc-config';

/** The app secrets (stack.md): env on the guest, and the two base64 ones also become files. */
export const SECRET_NAMES = {
  apiToken: 'NIKS3_API_TOKEN',
  db: 'NIKS3_DB',
  s3AccessKey: 'NIKS3_S3_ACCESS_KEY',
  s3SecretKey: 'NIKS3_S3_SECRET_KEY',
  signingKeyFile: 'NIKS3_SIGNING_KEY_FILE_B64',
  oidcConfigFile: 'NIKS3_OIDC_CONFIG_B64',
} as const;

/** Every secret name this suite manages on the app. */
export const MANAGED_SECRET_NAMES: readonly string[] = Object.values(SECRET_NAMES);

/** Machine metadata keys. The fly_* ones make it a Fly Launch machine that flyctl would update. */
export const METADATA = {
  platformVersion: 'fly_platform_version',
  processGroup: 'fly_process_group',
  toolVersion: 'niks3_action_version',
  configHash: 'niks3_config_hash',
  secretsHash: 'niks3_secrets_hash',
  secretsFingerprint: 'niks3_secrets_fingerprint',
  secretsVersion: 'niks3_secrets_version',
  launchId: 'niks3_launch_id',
} as const;

/** What the machine config is made from (all non-secret). */
export interface Niks3MachineSettings {
  readonly region: string;
  readonly image: string;
  readonly cpuKind: 'shared' | 'performance';
  readonly cpus: number;
  readonly memoryMb: number;
  readonly swapMb: number;
  /** Public cache URL (NIKS3_CACHE_URL). */
  readonly cacheUrl: string;
  readonly bucket: string;
  /** S3 endpoint host without scheme. */
  readonly s3Endpoint: string;
  readonly s3Region: string;
  readonly s3Concurrency: number;
  readonly readProxy: boolean;
  /** Whether an OIDC policy file is written (no policy: no NIKS3_OIDC_CONFIG, no file). */
  readonly oidc: boolean;
}

/** The niks3 server environment (non-secret), sorted by name as the original template rendered it. */
export function niks3Env(settings: Niks3MachineSettings): Record<string, string> {
  const env: Record<string, string> = {
    // flyctl adds these two to every Fly Launch machine (fly.md §5.1).
    FLY_PROCESS_GROUP: 'app',
    PRIMARY_REGION: settings.region,
    NIKS3_CACHE_URL: settings.cacheUrl,
    NIKS3_ENABLE_READ_PROXY: settings.readProxy ? 'true' : 'false',
    NIKS3_HTTP_ADDR: `:${NIKS3_PORT}`,
    NIKS3_S3_BUCKET: settings.bucket,
    NIKS3_S3_CONCURRENCY: String(settings.s3Concurrency),
    NIKS3_S3_ENDPOINT: settings.s3Endpoint,
    NIKS3_S3_REGION: settings.s3Region,
    NIKS3_S3_USE_SSL: 'true',
    NIKS3_SIGN_KEY_PATHS: SIGNING_KEY_GUEST_PATH,
  };
  if (settings.oidc) env['NIKS3_OIDC_CONFIG'] = OIDC_CONFIG_GUEST_PATH;
  return sortedRecord(env);
}

/** The files written into the guest from secrets. */
export function niks3Files(settings: Niks3MachineSettings): MachineFile[] {
  const files: MachineFile[] = [
    { guest_path: SIGNING_KEY_GUEST_PATH, secret_name: SECRET_NAMES.signingKeyFile },
  ];
  if (settings.oidc)
    files.push({ guest_path: OIDC_CONFIG_GUEST_PATH, secret_name: SECRET_NAMES.oidcConfigFile });
  return files;
}

/** The health check of the HTTP service (stack.md: GET /health, grace 20 s, interval 15 s, timeout 5 s). */
export const HEALTH_CHECK: ServiceCheck = {
  type: 'http',
  interval: '15s',
  timeout: '5s',
  grace_period: '20s',
  method: 'GET',
  path: '/health',
};

/**
 * The complete machine config (the Machines API has no partial updates). `metadata` holds the
 * Fly Launch keys plus whatever the caller adds (hashes, launch id).
 */
export function niks3MachineConfig(
  settings: Niks3MachineSettings,
  metadata: Record<string, string> = {},
): MachineConfig {
  return {
    image: settings.image,
    env: niks3Env(settings),
    init: { swap_size_mb: settings.swapMb },
    guest: { cpu_kind: settings.cpuKind, cpus: settings.cpus, memory_mb: settings.memoryMb },
    services: [
      {
        protocol: 'tcp',
        internal_port: NIKS3_PORT,
        autostop: 'stop',
        autostart: true,
        min_machines_running: 0,
        ports: [
          { port: 80, handlers: ['http'], force_https: true },
          { port: 443, handlers: ['http', 'tls'] },
        ],
        concurrency: { type: 'requests', soft_limit: 25, hard_limit: 50 },
        checks: [HEALTH_CHECK],
      },
    ],
    files: niks3Files(settings),
    stop_config: { signal: 'SIGTERM', timeout: '30s' },
    // The platform default, written out so the machine does not depend on it (fly.md §5.1).
    restart: { policy: 'on-failure', max_retries: 10 },
    metadata: sortedRecord({ [METADATA.platformVersion]: 'v2', [METADATA.processGroup]: 'app', ...metadata }),
  };
}

/** How many health checks a config defines (top-level plus per service), fly.md §7.2. */
export function configuredCheckCount(config: Pick<MachineConfig, 'checks' | 'services'> | undefined): number {
  if (!config) return 0;
  return (
    Object.keys(config.checks ?? {}).length +
    (config.services ?? []).reduce((n, s) => n + (s.checks?.length ?? 0), 0)
  );
}

/** Parses a memory size such as `256mb`, `1gb` or `512` (megabytes) into MB, or undefined. */
export function parseMemoryMb(text: string): number | undefined {
  const match = /^(\d+)\s*(mb|gb)?$/i.exec(text.trim());
  if (!match) return undefined;
  const n = Number(match[1]);
  return (match[2] ?? 'mb').toLowerCase() === 'gb' ? n * 1024 : n;
}

/**
 * Checks a VM size against Fly's presets: memory a multiple of 256 MB; shared CPUs 256–2048 MB
 * each, performance CPUs 2048–8192 MB each. Returns a problem or undefined.
 */
export function vmSizeProblem(
  cpuKind: 'shared' | 'performance',
  cpus: number,
  memoryMb: number,
): string | undefined {
  if (memoryMb <= 0 || memoryMb % 256 !== 0) return `${memoryMb} MB is not a multiple of 256 MB`;
  const [min, max] = cpuKind === 'shared' ? [256 * cpus, 2048 * cpus] : [2048 * cpus, 8192 * cpus];
  if (memoryMb < min || memoryMb > max) {
    return `${cpus} ${cpuKind} CPU${cpus === 1 ? '' : 's'} take${cpus === 1 ? 's' : ''} ${min}–${max} MB, not ${memoryMb} MB`;
  }
  return undefined;
}

export function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
