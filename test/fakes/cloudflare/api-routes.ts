/**
 * The v4 API routes of the Cloudflare stand-in, per shared/spec/cloudflare.md §4 and §8: token
 * verify, zones, R2 buckets (per account and jurisdiction), custom and managed domains, and the
 * object list/delete calls. Each handler returns the envelope's `result` (and `result_info`) or
 * throws a CfApiError; server.ts turns both into HTTP answers.
 *
 * Not modelled (they answer 404 `7000`): CORS, lifecycle, metrics, token creation, GraphQL.
 */
import { CF_CODES, CfApiError, cfErrors } from './envelope.js';
import {
  FAKE_JURISDICTIONS,
  FAKE_LOCATIONS,
  FAKE_STORAGE_CLASSES,
  PERMISSIONS,
  type DomainActivation,
  type FakeBucket,
  type FakeCloudflareState,
  type FakeCustomDomain,
  type FakeJurisdiction,
  type FakeMinTls,
  type FakeStorageClass,
  type FakeToken,
  type FakeZone,
} from './state.js';

/** Behaviour switches, mostly for the points the spec leaves unconfirmed. */
export interface ApiSettings {
  /** Status for a request without Authorization (400 or 401; code 10000 either way). */
  missingAuthStatus: 400 | 401;
  /** Status for a well-formed zone id the token cannot see. */
  unknownZoneStatus: 403 | 404;
  /** How new custom domains become active (a domain's own `activation` wins). */
  domainActivation: DomainActivation;
  /** Permissions needed, on top of "Workers R2 Storage Write", to create/update/delete a custom domain. */
  customDomainWritePermissions: string[];
  /** Reject unknown fields in JSON bodies with 400 `10040` (a deliberate strictness, spec §8.5). */
  rejectUnknownBodyFields: boolean;
  /** Accept X-Auth-Key / X-Auth-Email (legacy keys); otherwise 400 `6003`. */
  legacyKeys: boolean;
  /**
   * A create that carries both `cf-r2-jurisdiction` (not default) and a `locationHint`: refused
   * with 400, or accepted with the hint ignored (the bucket lands where the jurisdiction keeps
   * data). Which one the real API does is unconfirmed; the dashboard offers the two as
   * alternatives, so both are modelled and the client must send no hint with a jurisdiction.
   */
  jurisdictionWithLocationHint: 'reject' | 'ignore';
  /**
   * How the S3 endpoint answers an access key it does not know: as R2 does (`r2`: 400
   * `InvalidArgument` for a key id that is not 32 characters, 401 `Unauthorized` for an unknown
   * one, per R2's error-code reference), or with the AWS code `InvalidAccessKeyId` (403), which
   * other S3 servers send.
   */
  s3AuthErrors: 'r2' | 'aws';
  /** Codes for the answers whose real code is unknown. */
  codes: { customDomainExists: number; customDomainMissing: number; customDomainBadZone: number };
}

export function defaultApiSettings(): ApiSettings {
  return {
    missingAuthStatus: 401,
    unknownZoneStatus: 404,
    domainActivation: { afterGets: 2 },
    customDomainWritePermissions: [],
    rejectUnknownBodyFields: true,
    legacyKeys: false,
    jurisdictionWithLocationHint: 'reject',
    s3AuthErrors: 'r2',
    codes: {
      customDomainExists: CF_CODES.customDomainExists,
      customDomainMissing: CF_CODES.customDomainMissing,
      customDomainBadZone: CF_CODES.customDomainBadZone,
    },
  };
}

export interface ApiRequest {
  readonly method: string;
  /** Decoded path segments below the prefix. */
  readonly segments: readonly string[];
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Record<string, string>;
  /** The raw body text ('' when none). */
  readonly bodyText: string;
}

export interface ApiAnswer {
  readonly result: unknown;
  readonly result_info?: unknown;
  readonly messages?: unknown[];
}

const HEX32 = /^[0-9a-f]{32}$/;
const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const MIN_TLS: readonly string[] = ['1.0', '1.1', '1.2', '1.3'];

/** A "Write" group implies the matching "Read" group. */
function holds(token: FakeToken, permission: string): boolean {
  if (token.permissions.has(permission)) return true;
  const write = permission.replace(/ Read$/, ' Write');
  return write !== permission && token.permissions.has(write);
}

function requireAny(token: FakeToken, permissions: readonly string[]): void {
  if (!permissions.some((p) => holds(token, p))) throw cfErrors.authentication(403);
}

export class ApiRoutes {
  readonly state: FakeCloudflareState;
  readonly settings: ApiSettings;

  constructor(state: FakeCloudflareState, settings: ApiSettings) {
    this.state = state;
    this.settings = settings;
  }

  handle(req: ApiRequest): ApiAnswer {
    const s = req.segments;
    const m = req.method;
    // Verify endpoints answer for tokens of any status.
    if (m === 'GET' && s.length === 3 && s[0] === 'user' && s[1] === 'tokens' && s[2] === 'verify') {
      const token = this.authenticate(req, { anyStatus: true });
      if (token.kind !== 'user') throw cfErrors.authentication(403);
      return this.verified(token);
    }
    if (m === 'GET' && s.length === 4 && s[0] === 'accounts' && s[2] === 'tokens' && s[3] === 'verify') {
      const token = this.authenticate(req, { anyStatus: true });
      if (token.kind !== 'account' || !token.accounts.has(s[1] ?? '')) throw cfErrors.authentication(401);
      return this.verified(token);
    }
    const token = this.authenticate(req, { anyStatus: false });
    if (s[0] === 'zones') return this.zones(req, token);
    if (s[0] === 'accounts' && s[2] === 'r2' && s[3] === 'buckets') {
      const accountId = s[1] ?? '';
      if (!this.state.accounts.has(accountId) || !token.accounts.has(accountId))
        throw cfErrors.authentication(403);
      return this.r2(req, token, accountId, s.slice(4));
    }
    throw cfErrors.noRoute();
  }

  // --- auth -------------------------------------------------------------------------------------

  private authenticate(req: ApiRequest, options: { anyStatus: boolean }): FakeToken {
    if (
      (req.headers['x-auth-key'] !== undefined || req.headers['x-auth-email'] !== undefined) &&
      !this.settings.legacyKeys
    ) {
      throw cfErrors.malformedAuthorization();
    }
    const header = req.headers['authorization'];
    if (header === undefined) throw cfErrors.authentication(this.settings.missingAuthStatus);
    const match = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(header);
    if (!match) throw cfErrors.malformedAuthorization();
    const token = this.state.tokenByValue(match[1] ?? '');
    if (!token) throw cfErrors.authentication(401);
    if (!options.anyStatus && token.status !== 'active') throw cfErrors.authentication(401);
    return token;
  }

  private verified(token: FakeToken): ApiAnswer {
    return {
      result: { id: token.id, status: token.status },
      messages: [
        {
          code: 10000,
          message:
            token.status === 'active'
              ? 'This API Token is valid and active'
              : `This API Token is ${token.status}`,
          type: null,
        },
      ],
    };
  }

  // --- zones ------------------------------------------------------------------------------------

  private zones(req: ApiRequest, token: FakeToken): ApiAnswer {
    if (req.method !== 'GET') throw cfErrors.noRoute();
    requireAny(token, [PERMISSIONS.zoneRead]);
    const visible = [...this.state.zones.values()].filter((z) => token.accounts.has(z.accountId));
    if (req.segments.length === 2) {
      const id = req.segments[1] ?? '';
      if (!HEX32.test(id)) throw cfErrors.badZoneId(`/client/v4/zones/${id}`);
      const zone = visible.find((z) => z.id === id);
      if (!zone) {
        if (this.settings.unknownZoneStatus === 403) throw cfErrors.authentication(403);
        throw new CfApiError(404, { code: 1001, message: 'Invalid zone identifier' });
      }
      return { result: this.zoneView(zone) };
    }
    if (req.segments.length !== 1) throw cfErrors.noRoute();
    let zones = visible;
    const name = req.query.get('name');
    if (name !== null) zones = zones.filter((z) => nameFilter(name)(z.name));
    const accountId = req.query.get('account.id');
    if (accountId !== null) zones = zones.filter((z) => z.accountId === accountId);
    const status = req.query.get('status');
    if (status !== null) zones = zones.filter((z) => z.status === status);
    zones.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const perPage = clamp(Number(req.query.get('per_page') ?? 20) || 20, 5, 50);
    const page = Math.max(1, Number(req.query.get('page') ?? 1) || 1);
    const slice = zones.slice((page - 1) * perPage, page * perPage);
    return {
      result: slice.map((z) => this.zoneView(z)),
      result_info: {
        page,
        per_page: perPage,
        count: slice.length,
        total_count: zones.length,
        total_pages: Math.max(1, Math.ceil(zones.length / perPage)),
      },
    };
  }

  private zoneView(zone: FakeZone): Record<string, unknown> {
    const account = this.state.accounts.get(zone.accountId);
    return {
      id: zone.id,
      name: zone.name,
      status: zone.status,
      type: 'full',
      paused: false,
      account: { id: zone.accountId, name: account?.name ?? '' },
      name_servers: ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com'],
      original_name_servers: null,
      original_registrar: null,
      original_dnshost: null,
      owner: { id: null, type: 'user', name: null },
      plan: { id: '0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee', name: 'Free Website' },
      meta: { step: 2 },
      development_mode: 0,
      activated_on: '2026-01-02T03:04:05Z',
      created_on: '2026-01-01T00:00:00Z',
      modified_on: '2026-01-02T03:04:05Z',
    };
  }

  // --- R2 ---------------------------------------------------------------------------------------

  private r2(req: ApiRequest, token: FakeToken, accountId: string, rest: readonly string[]): ApiAnswer {
    const jurisdiction = this.jurisdiction(req);
    const read = [PERMISSIONS.r2Read];
    const write = [PERMISSIONS.r2Write];
    const m = req.method;
    if (rest.length === 0) {
      if (m === 'GET') {
        requireAny(token, read);
        return this.listBuckets(req, accountId, jurisdiction);
      }
      if (m === 'POST') {
        requireAny(token, write);
        return { result: this.createBucket(req, accountId, jurisdiction) };
      }
      throw cfErrors.noRoute();
    }
    const name = rest[0] ?? '';
    const bucket = (): FakeBucket => {
      const found = this.state.bucket(accountId, jurisdiction, name);
      if (!found) throw cfErrors.noSuchBucket();
      return found;
    };
    if (rest.length === 1) {
      if (m === 'GET') {
        requireAny(token, read);
        return { result: bucketView(bucket()) };
      }
      if (m === 'PATCH') {
        requireAny(token, write);
        const b = bucket();
        const storageClass = req.headers['cf-r2-storage-class'];
        if (!isStorageClass(storageClass))
          throw cfErrors.badJson('cf-r2-storage-class must be Standard or InfrequentAccess');
        b.storageClass = storageClass;
        return { result: bucketView(b) };
      }
      if (m === 'DELETE') {
        requireAny(token, write);
        const b = bucket();
        if (b.objects.size > 0 || b.uploads.size > 0 || b.eventNotificationRules > 0)
          throw cfErrors.bucketNotEmpty();
        this.state.deleteBucket(b);
        return { result: {} };
      }
      throw cfErrors.noRoute();
    }
    if (rest[1] === 'domains' && rest[2] === 'custom') {
      const target = rest.slice(3).join('/').toLowerCase();
      if (m === 'GET') {
        requireAny(token, read);
        const b = bucket();
        if (!target) return { result: { domains: this.state.domainsOf(b).map((d) => this.domainView(d)) } };
        return { result: this.domainView(this.attached(b, target)) };
      }
      requireAny(token, write);
      if (this.settings.customDomainWritePermissions.length > 0) {
        for (const permission of this.settings.customDomainWritePermissions) requireAny(token, [permission]);
      }
      if (m === 'POST' && !target) return { result: this.createDomain(req, bucket()) };
      if (m === 'PUT' && target) return { result: this.updateDomain(req, this.attached(bucket(), target)) };
      if (m === 'DELETE' && target) {
        const domain = this.attached(bucket(), target);
        this.state.domains.delete(domain.domain);
        return { result: { domain: domain.domain } };
      }
      throw cfErrors.noRoute();
    }
    if (rest[1] === 'domains' && rest[2] === 'managed' && rest.length === 3) {
      if (m === 'GET') {
        requireAny(token, read);
        return { result: managedView(bucket()) };
      }
      if (m === 'PUT') {
        requireAny(token, write);
        const b = bucket();
        const body = this.json(req, ['enabled']);
        if (typeof body['enabled'] !== 'boolean') throw cfErrors.badJson('enabled must be a boolean');
        b.managed.enabled = body['enabled'];
        return { result: managedView(b) };
      }
      throw cfErrors.noRoute();
    }
    if (rest[1] === 'objects') {
      if (m === 'GET' && rest.length === 2) {
        requireAny(token, read);
        return this.listObjects(req, bucket());
      }
      if (m === 'DELETE' && rest.length >= 3) {
        requireAny(token, write);
        const key = rest.slice(2).join('/');
        bucket().objects.delete(key);
        return { result: { key } };
      }
    }
    throw cfErrors.noRoute();
  }

  private jurisdiction(req: ApiRequest): FakeJurisdiction {
    const value = req.headers['cf-r2-jurisdiction'];
    if (value === undefined) return 'default';
    if (!(FAKE_JURISDICTIONS as readonly string[]).includes(value)) {
      throw cfErrors.badRequest(CF_CODES.badJson, `Invalid jurisdiction "${value}"`);
    }
    return value as FakeJurisdiction;
  }

  /** Parses a JSON object body, refusing unknown fields when the setting says so. */
  private json(req: ApiRequest, allowed: readonly string[]): Record<string, unknown> {
    let body: unknown;
    try {
      body = req.bodyText ? JSON.parse(req.bodyText) : {};
    } catch {
      throw cfErrors.badJson('not JSON');
    }
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw cfErrors.badJson('expected an object');
    const record = body as Record<string, unknown>;
    if (this.settings.rejectUnknownBodyFields) {
      const unknown = Object.keys(record).filter((k) => !allowed.includes(k));
      if (unknown.length > 0) throw cfErrors.badJson(`unknown field(s) ${unknown.join(', ')}`);
    }
    return record;
  }

  private listBuckets(req: ApiRequest, accountId: string, jurisdiction: FakeJurisdiction): ApiAnswer {
    let buckets = [...this.state.buckets.values()].filter(
      (b) => b.accountId === accountId && b.jurisdiction === jurisdiction,
    );
    const contains = req.query.get('name_contains');
    if (contains) buckets = buckets.filter((b) => b.name.includes(contains));
    buckets.sort((a, b) => (a.name < b.name ? -1 : 1));
    if (req.query.get('direction') === 'desc') buckets.reverse();
    const after = req.query.get('cursor')
      ? decodeCursor(req.query.get('cursor') ?? '')
      : req.query.get('start_after');
    if (after) {
      const desc = req.query.get('direction') === 'desc';
      buckets = buckets.filter((b) => (desc ? b.name < after : b.name > after));
    }
    const perPage = clamp(Number(req.query.get('per_page') ?? 20) || 20, 1, 1000);
    const page = buckets.slice(0, perPage);
    const more = buckets.length > perPage;
    return {
      result: { buckets: page.map(bucketView) },
      result_info: { cursor: more ? encodeCursor(page[page.length - 1]?.name ?? '') : '', per_page: perPage },
    };
  }

  private createBucket(
    req: ApiRequest,
    accountId: string,
    jurisdiction: FakeJurisdiction,
  ): Record<string, unknown> {
    const body = this.json(req, ['name', 'locationHint', 'storageClass']);
    const name = body['name'];
    if (typeof name !== 'string') throw cfErrors.badJson('name must be a string');
    if (!BUCKET_NAME.test(name)) throw cfErrors.invalidBucketName();
    const hint = body['locationHint'];
    if (
      hint !== undefined &&
      (typeof hint !== 'string' || !(FAKE_LOCATIONS as readonly string[]).includes(hint.toLowerCase()))
    ) {
      throw cfErrors.badJson('locationHint must be one of apac, eeur, enam, weur, wnam, oc');
    }
    const storageClass = body['storageClass'];
    if (storageClass !== undefined && !isStorageClass(storageClass))
      throw cfErrors.badJson('storageClass must be Standard or InfrequentAccess');
    if (jurisdiction !== 'default' && typeof hint === 'string') {
      if (this.settings.jurisdictionWithLocationHint === 'reject')
        throw cfErrors.badJson(`locationHint cannot be combined with jurisdiction ${jurisdiction}`);
    }
    if (this.state.bucket(accountId, jurisdiction, name)) throw cfErrors.bucketExists();
    const location =
      jurisdiction !== 'default'
        ? this.state.jurisdictionLocations[jurisdiction]
        : typeof hint === 'string'
          ? hint
          : undefined;
    const bucket = this.state.addBucket({
      accountId,
      name,
      jurisdiction,
      ...(location !== undefined ? { location } : {}),
      ...(isStorageClass(storageClass) ? { storageClass } : {}),
    });
    return bucketView(bucket);
  }

  private attached(bucket: FakeBucket, host: string): FakeCustomDomain {
    const domain = this.state.domains.get(host);
    if (
      !domain ||
      domain.accountId !== bucket.accountId ||
      domain.jurisdiction !== bucket.jurisdiction ||
      domain.bucket !== bucket.name
    ) {
      throw new CfApiError(404, {
        code: this.settings.codes.customDomainMissing,
        message: 'The custom domain does not exist on this bucket.',
      });
    }
    return domain;
  }

  private createDomain(req: ApiRequest, bucket: FakeBucket): Record<string, unknown> {
    const body = this.json(req, ['domain', 'zoneId', 'enabled', 'minTLS', 'ciphers']);
    const { domain, zoneId, enabled, minTLS, ciphers } = body;
    if (typeof domain !== 'string' || !domain) throw cfErrors.badJson('domain must be a string');
    if (typeof zoneId !== 'string') throw cfErrors.badJson('zoneId must be a string');
    if (typeof enabled !== 'boolean') throw cfErrors.badJson('enabled must be a boolean');
    if (minTLS !== undefined && (typeof minTLS !== 'string' || !MIN_TLS.includes(minTLS)))
      throw cfErrors.badJson('minTLS must be 1.0, 1.1, 1.2 or 1.3');
    if (ciphers !== undefined && (!Array.isArray(ciphers) || ciphers.some((c) => typeof c !== 'string')))
      throw cfErrors.badJson('ciphers must be strings');
    const host = domain.toLowerCase();
    const zone = this.state.zones.get(zoneId);
    if (
      !zone ||
      zone.accountId !== bucket.accountId ||
      (host !== zone.name && !host.endsWith(`.${zone.name}`))
    ) {
      throw new CfApiError(400, {
        code: this.settings.codes.customDomainBadZone,
        message: 'The domain is not within the given zone of this account.',
      });
    }
    if (this.state.domains.has(host)) {
      throw new CfApiError(409, {
        code: this.settings.codes.customDomainExists,
        message: 'The custom domain is already in use.',
      });
    }
    const created = this.state.addCustomDomain({
      bucket,
      domain: host,
      zoneId,
      enabled,
      ...(minTLS ? { minTLS: minTLS as FakeMinTls } : {}),
    });
    if (Array.isArray(ciphers)) created.ciphers = ciphers as string[];
    return {
      domain: created.domain,
      enabled: created.enabled,
      zoneId: created.zoneId,
      minTLS: created.minTLS,
      ...(created.ciphers ? { ciphers: created.ciphers } : {}),
    };
  }

  private updateDomain(req: ApiRequest, domain: FakeCustomDomain): Record<string, unknown> {
    const body = this.json(req, ['enabled', 'minTLS', 'ciphers']);
    const { enabled, minTLS, ciphers } = body;
    if (enabled !== undefined && typeof enabled !== 'boolean')
      throw cfErrors.badJson('enabled must be a boolean');
    if (minTLS !== undefined && (typeof minTLS !== 'string' || !MIN_TLS.includes(minTLS)))
      throw cfErrors.badJson('minTLS must be 1.0, 1.1, 1.2 or 1.3');
    if (typeof enabled === 'boolean') domain.enabled = enabled;
    if (typeof minTLS === 'string') domain.minTLS = minTLS as FakeMinTls;
    if (Array.isArray(ciphers)) domain.ciphers = ciphers as string[];
    return {
      domain: domain.domain,
      enabled: domain.enabled,
      minTLS: domain.minTLS,
      ...(domain.ciphers ? { ciphers: domain.ciphers } : {}),
    };
  }

  /** The GET/list view of a custom domain; each view advances its status. */
  private domainView(domain: FakeCustomDomain): Record<string, unknown> {
    domain.gets += 1;
    const activation = domain.activation ?? this.settings.domainActivation;
    const zone = this.state.zones.get(domain.zoneId);
    if (activation === 'degraded') {
      return {
        domain: domain.domain,
        enabled: domain.enabled,
        status: { ownership: 'unknown', ssl: 'unknown' },
        zoneId: domain.zoneId,
      };
    }
    let status: { ownership: string; ssl: string };
    if (activation === 'stuck') status = { ownership: 'pending', ssl: 'pending' };
    else if (activation === 'error') status = { ownership: 'error', ssl: 'error' };
    else {
      const byGets = activation.afterGets !== undefined && domain.gets >= activation.afterGets;
      const byTime =
        activation.afterMs !== undefined && this.state.now() - domain.createdAt >= activation.afterMs;
      status =
        byGets || byTime
          ? { ownership: 'active', ssl: 'active' }
          : { ownership: 'pending', ssl: 'initializing' };
    }
    return {
      domain: domain.domain,
      enabled: domain.enabled,
      status,
      minTLS: domain.minTLS,
      zoneId: domain.zoneId,
      zoneName: zone?.name ?? '',
      ...(domain.ciphers ? { ciphers: domain.ciphers } : {}),
    };
  }

  private listObjects(req: ApiRequest, bucket: FakeBucket): ApiAnswer {
    const prefix = req.query.get('prefix') ?? '';
    const after = req.query.get('cursor')
      ? decodeCursor(req.query.get('cursor') ?? '')
      : (req.query.get('start_after') ?? '');
    const perPage = clamp(Number(req.query.get('per_page') ?? 1000) || 1000, 1, 1000);
    const keys = [...bucket.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const page = keys.slice(0, perPage);
    const more = keys.length > perPage;
    return {
      result: page.map((key) => {
        const o = bucket.objects.get(key)!;
        return {
          key,
          size: o.body.length,
          etag: o.etag.replace(/"/g, ''),
          last_modified: new Date(o.lastModified).toISOString(),
          storage_class: o.storageClass,
          http_metadata: { contentType: o.contentType },
        };
      }),
      result_info: {
        cursor: more ? encodeCursor(page[page.length - 1] ?? '') : '',
        is_truncated: more,
        per_page: perPage,
      },
    };
  }
}

function bucketView(bucket: FakeBucket): Record<string, unknown> {
  return {
    name: bucket.name,
    creation_date: bucket.creationDate,
    location: bucket.location,
    storage_class: bucket.storageClass,
    jurisdiction: bucket.jurisdiction,
  };
}

function managedView(bucket: FakeBucket): Record<string, unknown> {
  return {
    bucketId: bucket.managed.bucketId,
    domain: `pub-${bucket.managed.bucketId}.r2.dev`,
    enabled: bucket.managed.enabled,
  };
}

function isStorageClass(value: unknown): value is FakeStorageClass {
  return typeof value === 'string' && (FAKE_STORAGE_CLASSES as readonly string[]).includes(value);
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.trunc(n)));
}

function encodeCursor(last: string): string {
  return Buffer.from(last, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

/** The zone `name` filter: exact (case-insensitive), or `contains:` / `starts_with:` / `ends_with:` / `not_equal:`. */
function nameFilter(value: string): (name: string) => boolean {
  const match = /^(contains|starts_with|ends_with|not_equal|equal):(.*)$/.exec(value);
  const wanted = (match ? (match[2] ?? '') : value).toLowerCase();
  switch (match?.[1]) {
    case 'contains':
      return (n) => n.includes(wanted);
    case 'starts_with':
      return (n) => n.startsWith(wanted);
    case 'ends_with':
      return (n) => n.endsWith(wanted);
    case 'not_equal':
      return (n) => n !== wanted;
    default:
      return (n) => n === wanted;
  }
}
