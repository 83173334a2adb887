/**
 * Reads the live state of the R2 side: the zone of the cache host, the bucket (and, when it is
 * missing, whether the same name lives in another jurisdiction), the custom domain on the bucket
 * (and, when it is missing, whether another bucket holds the host). Only GET requests.
 */
import { ConfigurationError, RemoteError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { R2Api } from './r2-api.js';
import type { DomainElsewhere, R2Actual, R2Config, ZoneInfo } from './r2-model.js';
import { R2_JURISDICTIONS } from './r2-names.js';

/** At most this many other buckets are searched for the cache host. */
export const DOMAIN_SCAN_LIMIT = 50;

/**
 * The zone of the cache host: the given zone id (checked against zone-name and the account), or
 * the zone looked up by name in the account.
 */
export async function resolveZone(api: R2Api, config: R2Config, logger: Logger): Promise<ZoneInfo> {
  if (config.zoneId) {
    const zone = await api.zoneById(config.zoneId);
    if (!zone) {
      throw new ConfigurationError(
        `Input 'cloudflare-zone-id': zone ${config.zoneId} is not visible to this API token. Check the id (dashboard: the zone's Overview page), or leave cloudflare-zone-id empty to look the zone up from zone-name.`,
      );
    }
    if (zone.name.toLowerCase() !== config.zoneName.toLowerCase()) {
      throw new ConfigurationError(
        `Input 'cloudflare-zone-id': zone ${config.zoneId} is "${zone.name}", not zone-name "${config.zoneName}". Fix one of the two, or leave cloudflare-zone-id empty to look the zone up by name.`,
      );
    }
    if (zone.accountId && zone.accountId !== config.accountId) {
      throw new ConfigurationError(
        `Input 'cloudflare-zone-id': zone "${zone.name}" belongs to account ${zone.accountId}, not cloudflare-account-id ${config.accountId}. An R2 custom domain must be in a zone of the bucket's account.`,
      );
    }
    return warnInactive({ id: zone.id, name: zone.name, status: zone.status }, logger);
  }
  const zones = await api.zonesByName(config.zoneName);
  const zone = zones[0];
  if (!zone) {
    throw new ConfigurationError(
      `Input 'zone-name': no zone "${config.zoneName}" in account ${config.accountId} is visible to this API token. Add the zone to that account, fix zone-name, or give the token "Zone Read" on the zone.`,
    );
  }
  logger.info(`Zone ${zone.name}: ${zone.id} (${zone.status})`);
  return warnInactive(zone, logger);
}

function warnInactive(zone: ZoneInfo, logger: Logger): ZoneInfo {
  if (zone.status !== 'active') {
    logger.warn(
      `Zone ${zone.name} is ${zone.status}, not active: the custom domain cannot become active until the zone is.`,
    );
  }
  return zone;
}

/** Reads the bucket, the custom domain, and what is needed to explain immutable drift. */
export async function readR2Actual(api: R2Api, config: R2Config, logger: Logger): Promise<R2Actual> {
  const notes: string[] = [];
  const bucket = await api.getBucket(config.bucketName, config.jurisdiction);
  logger.info(
    bucket
      ? `R2 bucket ${config.bucketName}: exists (jurisdiction ${bucket.jurisdiction}, location ${bucket.location ?? '?'}, storage class ${bucket.storageClass ?? '?'})`
      : `R2 bucket ${config.bucketName}: absent (jurisdiction ${config.jurisdiction})`,
  );

  let bucketInOtherJurisdiction: string | undefined;
  if (!bucket && config.mode !== 'destroy') {
    for (const other of R2_JURISDICTIONS) {
      if (other === config.jurisdiction) continue;
      try {
        if (await api.getBucket(config.bucketName, other)) {
          bucketInOtherJurisdiction = other;
          break;
        }
      } catch (error) {
        // A jurisdiction the account may not use (403) says nothing about ours.
        if (!(error instanceof RemoteError && error.status !== undefined && error.status < 500)) throw error;
      }
    }
  }

  const domain = bucket
    ? await api.getDomain(config.bucketName, config.jurisdiction, config.cacheHost)
    : undefined;
  logger.info(
    domain
      ? `Custom domain ${config.cacheHost}: attached (enabled ${domain.enabled}, min TLS ${domain.minTLS ?? '?'}, ownership ${domain.status.ownership}, ssl ${domain.status.ssl})`
      : `Custom domain ${config.cacheHost}: not attached to ${config.bucketName}`,
  );

  let domainElsewhere: DomainElsewhere | undefined;
  if (!domain && config.mode !== 'destroy') {
    const names = (await api.listBucketNames(config.jurisdiction, DOMAIN_SCAN_LIMIT + 1)).filter(
      (n) => n !== config.bucketName,
    );
    if (names.length > DOMAIN_SCAN_LIMIT) {
      notes.push(`Only ${DOMAIN_SCAN_LIMIT} other buckets were searched for ${config.cacheHost}.`);
    }
    for (const name of names.slice(0, DOMAIN_SCAN_LIMIT)) {
      const domains = await api.listDomains(name, config.jurisdiction);
      if (domains.some((d) => d.host.toLowerCase() === config.cacheHost)) {
        domainElsewhere = { bucket: name, jurisdiction: config.jurisdiction };
        break;
      }
    }
  }

  let hasObjects: boolean | undefined;
  if (bucket && config.mode === 'destroy' && config.deleteData) {
    hasObjects = (await api.listObjectKeys(config.bucketName, config.jurisdiction, 1)).length > 0;
  }

  return { bucket, bucketInOtherJurisdiction, domain, domainElsewhere, hasObjects, notes };
}
