/**
 * Every Cloudflare API call of the R2 side, in one place: which SDK method, which route, which
 * permission it needs, whether it is retried, and which error answers mean "not there". The
 * `cf-r2-jurisdiction` parameter is sent on every `r2.buckets.*` call, `default` included.
 */
import type { CustomGetResponse } from 'cloudflare/resources/r2/buckets/domains/custom';
import type { Bucket } from 'cloudflare/resources/r2/buckets/buckets';
import { ConfigurationError } from '../errors.js';
import {
  CF_PERMISSIONS,
  CloudflareCalls,
  apiStatus,
  isApiStatus,
  type CfOperation,
} from './cloudflare-calls.js';
import type { CloudflareClient } from './cloudflare-client.js';
import { DESIRED_MIN_TLS, type ActualBucket, type ActualDomain, type ZoneInfo } from './r2-model.js';
import type { R2Jurisdiction, R2Location, R2StorageClass } from './r2-names.js';

/** Error codes the R2 API uses (shared/spec/cloudflare.md, error catalogue). */
export const R2_CODES = { noSuchBucket: 10006, bucketExists: [10004, 10073], bucketNotEmpty: 10008 } as const;

const DOMAIN_PERMISSION = `${CF_PERMISSIONS.r2Write}" (custom domains may also need rights on the zone, e.g. "${CF_PERMISSIONS.zoneRead}`;

const notFound = (error: unknown): null | undefined => (apiStatus(error) === 404 ? null : undefined);
const exists = (error: unknown): 'exists' | undefined => (apiStatus(error) === 409 ? 'exists' : undefined);

export interface TokenIdentity {
  readonly id: string;
  readonly status: string;
  readonly owner: 'account' | 'user';
}

export class R2Api {
  readonly client: CloudflareClient;
  readonly calls: CloudflareCalls;
  readonly accountId: string;

  constructor(client: CloudflareClient, calls: CloudflareCalls, accountId: string) {
    this.client = client;
    this.calls = calls;
    this.accountId = accountId;
  }

  private bucketsRoute(method: string, rest = ''): string {
    return `${method} /accounts/${this.accountId}/r2/buckets${rest}`;
  }

  /** A create, sent once: 'created', or 'exists' when Cloudflare answers 409 (made meanwhile). */
  private async createOnce(op: CfOperation, create: () => Promise<unknown>): Promise<'created' | 'exists'> {
    const result = await this.calls.once(op, create, exists);
    return result === 'exists' ? 'exists' : 'created';
  }

  // --- token ------------------------------------------------------------------------------------

  /**
   * Verifies the token: as an account-owned token of the account first, then as a user token.
   * Fails with a ConfigurationError when neither accepts it or it is not active.
   */
  async verifyToken(): Promise<TokenIdentity> {
    const asAccount = await this.calls.retried(
      {
        what: 'verify the API token (account-owned)',
        route: `GET /accounts/${this.accountId}/tokens/verify`,
      },
      () => this.client.accounts.tokens.verify({ account_id: this.accountId }),
      (error) =>
        apiStatus(error) === 401 || apiStatus(error) === 403 || apiStatus(error) === 404 ? null : undefined,
    );
    let identity: TokenIdentity | undefined = asAccount
      ? { id: asAccount.id, status: asAccount.status, owner: 'account' }
      : undefined;
    if (!identity) {
      const asUser = await this.calls.retried(
        { what: 'verify the API token (user)', route: 'GET /user/tokens/verify' },
        () => this.client.user.tokens.verify(),
        (error) => (apiStatus(error) === 401 || apiStatus(error) === 403 ? null : undefined),
      );
      if (asUser) identity = { id: asUser.id, status: asUser.status, owner: 'user' };
    }
    if (!identity) {
      throw new ConfigurationError(
        `Input 'cloudflare-api-token': Cloudflare does not accept this token (neither as an account-owned token of account ${this.accountId} nor as a user token). Create an API token with "${CF_PERMISSIONS.r2Write}" and "${CF_PERMISSIONS.zoneRead}" and pass it from a secret.`,
      );
    }
    if (identity.status !== 'active') {
      throw new ConfigurationError(
        `Input 'cloudflare-api-token': the token ${identity.id} is ${identity.status}. Re-enable it or roll a new one in the Cloudflare dashboard (My Profile > API Tokens).`,
      );
    }
    return identity;
  }

  // --- zones ------------------------------------------------------------------------------------

  async zoneById(zoneId: string): Promise<(ZoneInfo & { accountId: string }) | undefined> {
    const zone = await this.calls.retried(
      { what: `read zone ${zoneId}`, route: `GET /zones/${zoneId}`, permission: CF_PERMISSIONS.zoneRead },
      () => this.client.zones.get({ zone_id: zoneId }),
      (error) => (apiStatus(error) === 404 || apiStatus(error) === 400 ? null : undefined),
    );
    if (!zone) return undefined;
    return {
      id: zone.id,
      name: zone.name,
      status: zone.status ?? 'unknown',
      accountId: zone.account.id ?? '',
    };
  }

  /** The zones of the account whose name equals `name` (case-insensitive). */
  async zonesByName(name: string): Promise<ZoneInfo[]> {
    const found: ZoneInfo[] = [];
    for (let page = 1; page <= 100; page++) {
      const result = await this.calls.retried(
        { what: `look up zone "${name}"`, route: 'GET /zones', permission: CF_PERMISSIONS.zoneRead },
        () => this.client.zones.list({ name, account: { id: this.accountId }, per_page: 50, page }),
      );
      const items = result.getPaginatedItems();
      for (const zone of items) {
        if (zone.name.toLowerCase() === name.toLowerCase())
          found.push({ id: zone.id, name: zone.name, status: zone.status ?? 'unknown' });
      }
      if (items.length < 50) break;
    }
    return found;
  }

  // --- buckets ----------------------------------------------------------------------------------

  async getBucket(name: string, jurisdiction: R2Jurisdiction): Promise<ActualBucket | undefined> {
    const bucket = await this.calls.retried(
      {
        what: `read R2 bucket "${name}"`,
        route: this.bucketsRoute('GET', `/${name}`),
        permission: CF_PERMISSIONS.r2Read,
      },
      () =>
        this.client.r2.buckets.get(name, { account_id: this.accountId, 'cf-r2-jurisdiction': jurisdiction }),
      notFound,
    );
    return bucket ? toActualBucket(bucket, name, jurisdiction) : undefined;
  }

  /** Names of the account's buckets in a jurisdiction (first `limit` only). */
  async listBucketNames(jurisdiction: R2Jurisdiction, limit: number): Promise<string[]> {
    const result = await this.calls.retried(
      { what: 'list R2 buckets', route: this.bucketsRoute('GET'), permission: CF_PERMISSIONS.r2Read },
      () =>
        this.client.r2.buckets.list({
          account_id: this.accountId,
          per_page: limit,
          'cf-r2-jurisdiction': jurisdiction,
        }),
    );
    return (result.buckets ?? []).map((b) => b.name ?? '').filter(Boolean);
  }

  /** Creates the bucket, sent once. Answers 'exists' on 409 (someone created it meanwhile). */
  async createBucket(
    name: string,
    jurisdiction: R2Jurisdiction,
    location: R2Location | undefined,
    storageClass: R2StorageClass,
  ): Promise<'created' | 'exists'> {
    return this.createOnce(
      {
        what: `create R2 bucket "${name}"`,
        route: this.bucketsRoute('POST'),
        permission: CF_PERMISSIONS.r2Write,
      },
      () =>
        this.client.r2.buckets.create(
          {
            account_id: this.accountId,
            name,
            // No hint with a jurisdiction: the jurisdiction decides where the data lives.
            ...(location ? { locationHint: location } : {}),
            storageClass,
            'cf-r2-jurisdiction': jurisdiction,
          },
          { maxRetries: 0 },
        ),
    );
  }

  async setStorageClass(
    name: string,
    jurisdiction: R2Jurisdiction,
    storageClass: R2StorageClass,
  ): Promise<void> {
    await this.calls.retried(
      {
        what: `set the storage class of R2 bucket "${name}"`,
        route: this.bucketsRoute('PATCH', `/${name}`),
        permission: CF_PERMISSIONS.r2Write,
      },
      () =>
        this.client.r2.buckets.edit(name, {
          account_id: this.accountId,
          storage_class: storageClass,
          'cf-r2-jurisdiction': jurisdiction,
        }),
    );
  }

  /** Deletes the bucket, sent once per call. Answers 'absent' on 404, 'not-empty' on 409 10008. */
  async deleteBucket(
    name: string,
    jurisdiction: R2Jurisdiction,
  ): Promise<'deleted' | 'absent' | 'not-empty'> {
    const result = await this.calls.retried(
      {
        what: `delete R2 bucket "${name}"`,
        route: this.bucketsRoute('DELETE', `/${name}`),
        permission: CF_PERMISSIONS.r2Write,
      },
      () =>
        this.client.r2.buckets.delete(
          name,
          { account_id: this.accountId, 'cf-r2-jurisdiction': jurisdiction },
          { maxRetries: 0 },
        ),
      (error) =>
        apiStatus(error) === 404
          ? ('absent' as const)
          : isApiStatus(error, 409)
            ? ('not-empty' as const)
            : undefined,
    );
    return result === 'absent' || result === 'not-empty' ? result : 'deleted';
  }

  // --- custom domains ---------------------------------------------------------------------------

  async getDomain(
    bucket: string,
    jurisdiction: R2Jurisdiction,
    host: string,
  ): Promise<ActualDomain | undefined> {
    const domain = await this.calls.retried(
      {
        what: `read custom domain ${host}`,
        route: this.bucketsRoute('GET', `/${bucket}/domains/custom/${host}`),
        permission: CF_PERMISSIONS.r2Read,
      },
      () =>
        this.client.r2.buckets.domains.custom.get(host, {
          account_id: this.accountId,
          bucket_name: bucket,
          'cf-r2-jurisdiction': jurisdiction,
        }),
      notFound,
    );
    return domain ? toActualDomain(domain) : undefined;
  }

  async listDomains(bucket: string, jurisdiction: R2Jurisdiction): Promise<ActualDomain[]> {
    const result = await this.calls.retried(
      {
        what: `list the custom domains of R2 bucket "${bucket}"`,
        route: this.bucketsRoute('GET', `/${bucket}/domains/custom`),
        permission: CF_PERMISSIONS.r2Read,
      },
      () =>
        this.client.r2.buckets.domains.custom.list(bucket, {
          account_id: this.accountId,
          'cf-r2-jurisdiction': jurisdiction,
        }),
      notFound,
    );
    return (result?.domains ?? []).map((d) => toActualDomain(d));
  }

  /** Attaches the host, sent once. Answers 'exists' on 409. */
  async createDomain(
    bucket: string,
    jurisdiction: R2Jurisdiction,
    host: string,
    zoneId: string,
  ): Promise<'created' | 'exists'> {
    return this.createOnce(
      {
        what: `attach custom domain ${host}`,
        route: this.bucketsRoute('POST', `/${bucket}/domains/custom`),
        permission: DOMAIN_PERMISSION,
      },
      () =>
        this.client.r2.buckets.domains.custom.create(
          bucket,
          {
            account_id: this.accountId,
            domain: host,
            zoneId,
            enabled: true,
            minTLS: DESIRED_MIN_TLS,
            'cf-r2-jurisdiction': jurisdiction,
          },
          { maxRetries: 0 },
        ),
    );
  }

  async updateDomain(
    bucket: string,
    jurisdiction: R2Jurisdiction,
    host: string,
    settings: { enabled?: boolean; minTLS?: '1.0' | '1.1' | '1.2' | '1.3' },
  ): Promise<void> {
    await this.calls.retried(
      {
        what: `update custom domain ${host}`,
        route: this.bucketsRoute('PUT', `/${bucket}/domains/custom/${host}`),
        permission: DOMAIN_PERMISSION,
      },
      () =>
        this.client.r2.buckets.domains.custom.update(host, {
          account_id: this.accountId,
          bucket_name: bucket,
          ...settings,
          'cf-r2-jurisdiction': jurisdiction,
        }),
    );
  }

  /** Detaches the host. Answers 'absent' on 404. */
  async deleteDomain(
    bucket: string,
    jurisdiction: R2Jurisdiction,
    host: string,
  ): Promise<'deleted' | 'absent'> {
    const result = await this.calls.retried(
      {
        what: `detach custom domain ${host}`,
        route: this.bucketsRoute('DELETE', `/${bucket}/domains/custom/${host}`),
        permission: DOMAIN_PERMISSION,
      },
      () =>
        this.client.r2.buckets.domains.custom.delete(host, {
          account_id: this.accountId,
          bucket_name: bucket,
          'cf-r2-jurisdiction': jurisdiction,
        }),
      (error) => (apiStatus(error) === 404 ? ('absent' as const) : undefined),
    );
    return result === 'absent' ? 'absent' : 'deleted';
  }

  // --- objects ----------------------------------------------------------------------------------

  /** The first `perPage` keys of the bucket (the REST API; small buckets only). */
  async listObjectKeys(bucket: string, jurisdiction: R2Jurisdiction, perPage: number): Promise<string[]> {
    const page = await this.calls.retried(
      {
        what: `list objects of R2 bucket "${bucket}"`,
        route: this.bucketsRoute('GET', `/${bucket}/objects`),
        permission: CF_PERMISSIONS.r2Read,
      },
      () =>
        this.client.r2.buckets.objects.list(bucket, {
          account_id: this.accountId,
          per_page: perPage,
          'cf-r2-jurisdiction': jurisdiction,
        }),
      notFound,
    );
    return (page?.getPaginatedItems() ?? []).map((o) => o.key ?? '').filter(Boolean);
  }

  async deleteObject(bucket: string, jurisdiction: R2Jurisdiction, key: string): Promise<void> {
    await this.calls.retried(
      {
        what: `delete object "${key}"`,
        route: this.bucketsRoute('DELETE', `/${bucket}/objects/…`),
        permission: CF_PERMISSIONS.r2Write,
      },
      () =>
        this.client.r2.buckets.objects.delete(key, {
          account_id: this.accountId,
          bucket_name: bucket,
          'cf-r2-jurisdiction': jurisdiction,
        }),
      notFound,
    );
  }
}

function toActualBucket(bucket: Bucket, name: string, jurisdiction: string): ActualBucket {
  return {
    name: bucket.name ?? name,
    jurisdiction: bucket.jurisdiction ?? jurisdiction,
    location: bucket.location,
    storageClass: bucket.storage_class,
    creationDate: bucket.creation_date,
  };
}

function toActualDomain(domain: CustomGetResponse): ActualDomain {
  const status = { ownership: domain.status?.ownership ?? 'unknown', ssl: domain.status?.ssl ?? 'unknown' };
  return {
    host: domain.domain,
    enabled: domain.enabled,
    minTLS: domain.minTLS,
    zoneId: domain.zoneId,
    zoneName: domain.zoneName,
    status,
    degraded: status.ownership === 'unknown' && status.ssl === 'unknown',
  };
}
