/**
 * The in-memory state of the Cloudflare stand-in: accounts, API tokens, zones, R2 buckets (keyed by
 * account, jurisdiction and name), their custom and managed domains, and their objects. The HTTP
 * side (api-routes.ts) and the S3 side (s3-endpoint.ts) both read and change this one object, so a
 * bucket that holds objects written through S3 really blocks its deletion through the API.
 *
 * Tests, the demo and the CLI's local mode seed it with the `add*` methods and read it back directly.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Jurisdictions the API accepts in `cf-r2-jurisdiction` (the project uses default, eu, fedramp). */
export const FAKE_JURISDICTIONS = ['default', 'eu', 'us', 'fedramp', 'fedramp-high'] as const;
export type FakeJurisdiction = (typeof FAKE_JURISDICTIONS)[number];

export const FAKE_LOCATIONS = ['apac', 'eeur', 'enam', 'weur', 'wnam', 'oc'] as const;
export const FAKE_STORAGE_CLASSES = ['Standard', 'InfrequentAccess'] as const;
export type FakeStorageClass = (typeof FAKE_STORAGE_CLASSES)[number];
export type FakeMinTls = '1.0' | '1.1' | '1.2' | '1.3';

/** Permission group names, as Cloudflare's dashboard shows them. */
export const PERMISSIONS = {
  r2Read: 'Workers R2 Storage Read',
  r2Write: 'Workers R2 Storage Write',
  r2ItemRead: 'Workers R2 Storage Bucket Item Read',
  r2ItemWrite: 'Workers R2 Storage Bucket Item Write',
  zoneRead: 'Zone Read',
  zoneWrite: 'Zone Write',
  dnsWrite: 'DNS Write',
} as const;

/** What a freshly seeded "does everything the provision action needs" token holds. */
export const PROVISION_PERMISSIONS: readonly string[] = [PERMISSIONS.r2Write, PERMISSIONS.zoneRead];

export interface FakeAccount {
  readonly id: string;
  readonly name: string;
}

export interface FakeToken {
  /** 32 hex; also the R2 S3 access key id. */
  readonly id: string;
  /** The bearer value; sha256(value) in hex is the R2 S3 secret access key. */
  readonly value: string;
  /** `user` tokens verify on /user/tokens/verify, `account` tokens on /accounts/A/tokens/verify. */
  readonly kind: 'user' | 'account';
  status: 'active' | 'disabled' | 'expired';
  /** Permission group names (see PERMISSIONS). A "Write" group implies its "Read" group. */
  readonly permissions: Set<string>;
  /** Accounts the token may act on (an account token: exactly its own). */
  readonly accounts: Set<string>;
  /** When set, S3 access is limited to these bucket names (a bucket-scoped token). */
  readonly buckets?: Set<string> | undefined;
}

export interface FakeZone {
  readonly id: string;
  readonly name: string;
  readonly accountId: string;
  status: 'initializing' | 'pending' | 'active' | 'moved';
}

export interface FakeObject {
  readonly key: string;
  readonly body: Buffer;
  readonly etag: string;
  readonly lastModified: number;
  readonly contentType: string;
  readonly storageClass: FakeStorageClass;
}

/** An in-progress multipart upload (only its key and start time matter here). */
export interface FakeUpload {
  readonly uploadId: string;
  readonly key: string;
  readonly initiated: number;
}

export interface FakeBucket {
  readonly accountId: string;
  readonly jurisdiction: FakeJurisdiction;
  readonly name: string;
  readonly creationDate: string;
  /** Stored upper case, as the real API answers. */
  location: string;
  storageClass: FakeStorageClass;
  readonly objects: Map<string, FakeObject>;
  /** In-progress multipart uploads by upload id (they block deletion, as on R2). */
  readonly uploads: Map<string, FakeUpload>;
  /** Event notification rules (they block deletion too). */
  eventNotificationRules: number;
  /** The r2.dev managed domain. */
  readonly managed: { readonly bucketId: string; enabled: boolean };
}

/**
 * How a custom domain's status advances: active after this many GETs of the domain (get or list)
 * or this many milliseconds after creation, whichever comes first; or one of the fixed behaviours
 * (`stuck`: pending forever; `error`: ownership error; `degraded`: the `unknown/unknown` answer
 * without zoneName/minTLS/ciphers that Cloudflare gives when its SSL backend is unreachable).
 */
export type DomainActivation =
  { readonly afterGets?: number; readonly afterMs?: number } | 'stuck' | 'error' | 'degraded';

export interface FakeCustomDomain {
  readonly accountId: string;
  readonly jurisdiction: FakeJurisdiction;
  readonly bucket: string;
  readonly domain: string;
  readonly zoneId: string;
  enabled: boolean;
  minTLS: FakeMinTls;
  ciphers: string[] | undefined;
  readonly createdAt: number;
  /** GETs answered so far (they advance the status). */
  gets: number;
  /** Overrides the server-wide activation setting for this domain. */
  activation?: DomainActivation | undefined;
}

export function randomHex(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}

/** A token value as Cloudflare issues them: 40 characters of [A-Za-z0-9_-]. */
export function randomTokenValue(prefix = ''): string {
  return prefix + randomBytes(30).toString('base64url').slice(0, 40);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function bucketKey(accountId: string, jurisdiction: string, name: string): string {
  return `${accountId}/${jurisdiction}/${name}`;
}

/** The state object. Everything is public so tests can read and tweak it. */
export class FakeCloudflareState {
  readonly accounts = new Map<string, FakeAccount>();
  readonly tokens = new Map<string, FakeToken>();
  readonly zones = new Map<string, FakeZone>();
  readonly buckets = new Map<string, FakeBucket>();
  /** Custom domains by host name: a host is attached to at most one bucket. */
  readonly domains = new Map<string, FakeCustomDomain>();
  /** Default location of a bucket created without a hint (upper case). */
  defaultLocation = 'ENAM';
  /** Where a bucket of a jurisdiction lives (hints do not apply there). */
  jurisdictionLocations: Record<Exclude<FakeJurisdiction, 'default'>, string> = {
    eu: 'WEUR',
    us: 'ENAM',
    fedramp: 'ENAM',
    'fedramp-high': 'ENAM',
  };
  readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  addAccount(options: { id?: string; name?: string } = {}): FakeAccount {
    const account = { id: options.id ?? randomHex(), name: options.name ?? 'nix-cache test account' };
    this.accounts.set(account.id, account);
    return account;
  }

  /**
   * Adds an API token. Default: an active account-owned token of every known account (or of
   * `accounts`) holding PROVISION_PERMISSIONS.
   */
  addToken(
    options: {
      value?: string;
      id?: string;
      kind?: 'user' | 'account';
      status?: FakeToken['status'];
      permissions?: readonly string[];
      accounts?: readonly string[];
      buckets?: readonly string[];
    } = {},
  ): FakeToken {
    const kind = options.kind ?? 'account';
    const token: FakeToken = {
      id: options.id ?? randomHex(),
      value: options.value ?? randomTokenValue(kind === 'account' ? 'cfat_' : ''),
      kind,
      status: options.status ?? 'active',
      permissions: new Set(options.permissions ?? PROVISION_PERMISSIONS),
      accounts: new Set(options.accounts ?? [...this.accounts.keys()]),
      buckets: options.buckets ? new Set(options.buckets) : undefined,
    };
    this.tokens.set(token.value, token);
    return token;
  }

  tokenByValue(value: string): FakeToken | undefined {
    return this.tokens.get(value);
  }

  tokenById(id: string): FakeToken | undefined {
    for (const token of this.tokens.values()) if (token.id === id) return token;
    return undefined;
  }

  /** R2 S3 credentials derived from a token, as Cloudflare derives them. */
  s3Credentials(token: FakeToken): { accessKeyId: string; secretAccessKey: string } {
    return { accessKeyId: token.id, secretAccessKey: sha256Hex(token.value) };
  }

  addZone(options: { name: string; accountId: string; id?: string; status?: FakeZone['status'] }): FakeZone {
    const zone: FakeZone = {
      id: options.id ?? randomHex(),
      name: options.name.toLowerCase(),
      accountId: options.accountId,
      status: options.status ?? 'active',
    };
    this.zones.set(zone.id, zone);
    return zone;
  }

  addBucket(options: {
    accountId: string;
    name: string;
    jurisdiction?: FakeJurisdiction;
    location?: string;
    storageClass?: FakeStorageClass;
  }): FakeBucket {
    const jurisdiction = options.jurisdiction ?? 'default';
    const bucket: FakeBucket = {
      accountId: options.accountId,
      jurisdiction,
      name: options.name,
      creationDate: new Date(this.now()).toISOString(),
      location: (options.location ?? this.defaultLocation).toUpperCase(),
      storageClass: options.storageClass ?? 'Standard',
      objects: new Map(),
      uploads: new Map(),
      eventNotificationRules: 0,
      managed: { bucketId: randomHex(), enabled: false },
    };
    this.buckets.set(bucketKey(options.accountId, jurisdiction, options.name), bucket);
    return bucket;
  }

  bucket(accountId: string, jurisdiction: string, name: string): FakeBucket | undefined {
    return this.buckets.get(bucketKey(accountId, jurisdiction, name));
  }

  /** Removes a bucket and every custom domain attached to it. */
  deleteBucket(bucket: FakeBucket): void {
    this.buckets.delete(bucketKey(bucket.accountId, bucket.jurisdiction, bucket.name));
    for (const [host, domain] of this.domains) {
      if (
        domain.accountId === bucket.accountId &&
        domain.jurisdiction === bucket.jurisdiction &&
        domain.bucket === bucket.name
      ) {
        this.domains.delete(host);
      }
    }
  }

  addCustomDomain(options: {
    bucket: FakeBucket;
    domain: string;
    zoneId: string;
    enabled?: boolean;
    minTLS?: FakeMinTls;
    activation?: DomainActivation;
  }): FakeCustomDomain {
    const domain: FakeCustomDomain = {
      accountId: options.bucket.accountId,
      jurisdiction: options.bucket.jurisdiction,
      bucket: options.bucket.name,
      domain: options.domain.toLowerCase(),
      zoneId: options.zoneId,
      enabled: options.enabled ?? true,
      minTLS: options.minTLS ?? '1.0',
      ciphers: undefined,
      createdAt: this.now(),
      gets: 0,
      activation: options.activation,
    };
    this.domains.set(domain.domain, domain);
    return domain;
  }

  /** The custom domains attached to a bucket. */
  domainsOf(bucket: FakeBucket): FakeCustomDomain[] {
    return [...this.domains.values()].filter(
      (d) =>
        d.accountId === bucket.accountId &&
        d.jurisdiction === bucket.jurisdiction &&
        d.bucket === bucket.name,
    );
  }

  /** Starts a multipart upload (as an S3 CreateMultipartUpload would); returns its id. */
  addMultipartUpload(bucket: FakeBucket, key: string): FakeUpload {
    const upload = { uploadId: randomHex(24), key, initiated: this.now() };
    bucket.uploads.set(upload.uploadId, upload);
    return upload;
  }

  /** Stores an object (as an S3 PUT would). */
  putObject(
    bucket: FakeBucket,
    key: string,
    body: Buffer | string,
    contentType = 'application/octet-stream',
  ): FakeObject {
    const bytes = Buffer.from(body);
    const object: FakeObject = {
      key,
      body: bytes,
      etag: `"${createHash('md5').update(bytes).digest('hex')}"`,
      lastModified: this.now(),
      contentType,
      storageClass: bucket.storageClass,
    };
    bucket.objects.set(key, object);
    return object;
  }
}
