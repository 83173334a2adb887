/**
 * The difference between what the user asked for and what Cloudflare has, as a list of changes.
 * Pure: no I/O. Mutable drift (storage class, minimum TLS, enabled) becomes an update; immutable
 * drift (location, jurisdiction, a host held by another bucket) becomes a warning or a blocker that
 * says what to do; nothing that holds data is ever recreated.
 */
import {
  DESIRED_MIN_TLS,
  type R2Actual,
  type R2Change,
  type R2Config,
  type R2Plan,
  type R2Value,
  type ZoneInfo,
} from './r2-model.js';

export function planR2(config: R2Config, zone: ZoneInfo | undefined, actual: R2Actual): R2Plan {
  return config.mode === 'destroy' ? planDestroy(config, actual) : planApply(config, zone, actual);
}

function planApply(config: R2Config, zone: ZoneInfo | undefined, actual: R2Actual): R2Plan {
  const changes: R2Change[] = [];
  const warnings: string[] = [];
  const blockers: string[] = [];
  const notes: string[] = [...actual.notes];
  const B = config.bucketName;
  const host = config.cacheHost;

  if (!actual.bucket && actual.bucketInOtherJurisdiction) {
    blockers.push(
      `R2 bucket "${B}" exists in jurisdiction "${actual.bucketInOtherJurisdiction}", not in "${config.jurisdiction}" (r2-jurisdiction). ` +
        `A bucket's jurisdiction cannot change: set r2-jurisdiction: ${actual.bucketInOtherJurisdiction} to keep using it, ` +
        `or choose another r2-bucket-name (and copy the data over) for a bucket in "${config.jurisdiction}".`,
    );
  }
  if (actual.domainElsewhere) {
    blockers.push(
      `The cache host ${host} is attached to R2 bucket "${actual.domainElsewhere.bucket}" (jurisdiction ${actual.domainElsewhere.jurisdiction}), not to "${B}". ` +
        `Detach it there first (dashboard: R2 > ${actual.domainElsewhere.bucket} > Settings > Custom Domains, or destroy that stack), or choose another cache-subdomain.`,
    );
  }

  if (!actual.bucket) {
    changes.push({
      action: 'create',
      resource: 'r2-bucket',
      name: B,
      after: {
        jurisdiction: config.jurisdiction,
        ...(config.location ? { location: config.location } : {}),
        storageClass: config.storageClass,
      },
    });
  } else {
    // With a jurisdiction no hint is sent, so there is no location to compare with.
    const location = actual.bucket.location;
    if (config.location && location && location.toLowerCase() !== config.location) {
      warnings.push(
        `R2 bucket "${B}" is in location ${location.toLowerCase()}, not ${config.location} (r2-location). ` +
          'The location of an existing bucket cannot change (the hint only applies when a bucket is created), so it is left as it is; ' +
          'to move the data, create a bucket with another r2-bucket-name and copy it over, or set r2-location to match.',
      );
    }
    if (actual.bucket.storageClass !== undefined && actual.bucket.storageClass !== config.storageClass) {
      changes.push({
        action: 'update',
        resource: 'r2-bucket',
        name: B,
        before: { storageClass: actual.bucket.storageClass },
        after: { storageClass: config.storageClass },
      });
    }
  }

  const zoneId = zone?.id ?? '';
  const domain = actual.domain;
  if (!domain) {
    changes.push({
      action: 'create',
      resource: 'r2-custom-domain',
      name: host,
      after: { bucket: B, zoneId, enabled: true, minTLS: DESIRED_MIN_TLS },
    });
  } else if (domain.zoneId && zoneId && domain.zoneId !== zoneId) {
    // The zone cannot be updated in place; a domain holds no data, so it is detached and attached again.
    changes.push({
      action: 'replace',
      resource: 'r2-custom-domain',
      name: host,
      before: { zoneId: domain.zoneId },
      after: { zoneId },
    });
  } else {
    const before: Record<string, R2Value> = {};
    const after: Record<string, R2Value> = {};
    if (domain.enabled !== true) {
      before['enabled'] = domain.enabled;
      after['enabled'] = true;
    }
    if (domain.degraded) {
      notes.push(
        `Cloudflare answered a degraded status for ${host} (unknown/unknown); its TLS setting was not compared this time.`,
      );
    } else if (domain.minTLS !== undefined && domain.minTLS !== DESIRED_MIN_TLS) {
      before['minTLS'] = domain.minTLS;
      after['minTLS'] = DESIRED_MIN_TLS;
    }
    if (Object.keys(after).length > 0)
      changes.push({ action: 'update', resource: 'r2-custom-domain', name: host, before, after });
  }

  return { changes: blockers.length > 0 ? [] : changes, warnings, blockers, notes };
}

function planDestroy(config: R2Config, actual: R2Actual): R2Plan {
  const changes: R2Change[] = [];
  const notes: string[] = [...actual.notes];
  const B = config.bucketName;
  if (actual.domain) {
    changes.push({
      action: 'delete',
      resource: 'r2-custom-domain',
      name: config.cacheHost,
      before: { bucket: B, zoneId: actual.domain.zoneId ?? '', enabled: actual.domain.enabled },
    });
  }
  if (!actual.bucket) {
    notes.push(`R2 bucket "${B}" does not exist (jurisdiction ${config.jurisdiction}).`);
  } else if (config.deleteData) {
    if (actual.hasObjects !== false) changes.push({ action: 'empty', resource: 'r2-bucket', name: B });
    changes.push({
      action: 'delete',
      resource: 'r2-bucket',
      name: B,
      before: {
        jurisdiction: actual.bucket.jurisdiction,
        location: (actual.bucket.location ?? '').toLowerCase(),
        storageClass: actual.bucket.storageClass ?? '',
      },
    });
  } else {
    notes.push(
      `R2 bucket "${B}" is kept with its data (delete-data is false); set delete-data: true to empty and delete it.`,
    );
  }
  return { changes, warnings: [], blockers: [], notes };
}

/** One line per change, for logs and the summary. */
export function describeChange(change: R2Change): string {
  const what = change.resource === 'r2-bucket' ? `R2 bucket ${change.name}` : `custom domain ${change.name}`;
  const pairs = (values: Readonly<Record<string, R2Value>> | undefined): string =>
    Object.entries(values ?? {})
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', ');
  switch (change.action) {
    case 'create':
      return `create ${what} (${pairs(change.after)})`;
    case 'update':
      return `update ${what}: ${Object.keys(change.after ?? {})
        .map((k) => `${k} ${String(change.before?.[k] ?? '?')} → ${String(change.after?.[k])}`)
        .join(', ')}`;
    case 'replace':
      return `replace ${what} (zone ${String(change.before?.['zoneId'])} → ${String(change.after?.['zoneId'])}: detach and attach again)`;
    case 'delete':
      return `delete ${what}`;
    case 'empty':
      return `empty ${what} (delete every object)`;
  }
}
