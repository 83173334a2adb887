/** The planner alone: desired vs actual -> changes, warnings and blockers (no I/O). */
import type { ActualDomain, R2Actual, R2Config } from '../../src/core/cloudflare/r2-model.js';
import { describeChange, planR2 } from '../../src/core/cloudflare/r2-planner.js';
import {
  bucketNameProblem,
  defaultBucketName,
  s3EndpointHost,
  stackSlug,
} from '../../src/core/cloudflare/r2-names.js';

const config: R2Config = {
  accountId: 'a'.repeat(32),
  zoneName: 'example.dev',
  zoneId: undefined,
  cacheSubdomain: 'cache',
  cacheHost: 'cache.example.dev',
  bucketName: 'c-niks3',
  location: 'enam',
  jurisdiction: 'default',
  storageClass: 'Standard',
  mode: 'apply',
  deleteData: false,
  domainWaitMs: 0,
};
const zone = { id: 'z'.repeat(32), name: 'example.dev', status: 'active' };
const empty: R2Actual = {
  bucket: undefined,
  bucketInOtherJurisdiction: undefined,
  domain: undefined,
  domainElsewhere: undefined,
  hasObjects: undefined,
  notes: [],
};
const bucket = {
  name: 'c-niks3',
  jurisdiction: 'default',
  location: 'ENAM',
  storageClass: 'Standard',
  creationDate: undefined,
};
const domain: ActualDomain = {
  host: 'cache.example.dev',
  enabled: true,
  minTLS: '1.2',
  zoneId: zone.id,
  zoneName: 'example.dev',
  status: { ownership: 'active', ssl: 'active' },
  degraded: false,
};

describe('planR2', () => {
  it('plans nothing when everything matches (location compared case-insensitively)', () => {
    expect(planR2(config, zone, { ...empty, bucket, domain })).toEqual({
      changes: [],
      warnings: [],
      blockers: [],
      notes: [],
    });
  });

  it('creates what is missing, in order: bucket, then domain', () => {
    const plan = planR2(config, zone, empty);
    expect(plan.changes.map(describeChange)).toEqual([
      'create R2 bucket c-niks3 (jurisdiction default, location enam, storageClass Standard)',
      `create custom domain cache.example.dev (bucket c-niks3, zoneId ${zone.id}, enabled true, minTLS 1.2)`,
    ]);
  });

  it('never plans a bucket delete or re-create in apply, whatever drifted', () => {
    const plan = planR2(config, zone, {
      ...empty,
      bucket: { ...bucket, location: 'APAC', storageClass: 'InfrequentAccess' },
      domain,
    });
    expect(plan.changes.every((c) => c.resource !== 'r2-bucket' || c.action === 'update')).toBe(true);
    expect(plan.warnings).toHaveLength(1);
  });

  it('with a jurisdiction: no hint in the create and no location comparison', () => {
    const eu: R2Config = { ...config, jurisdiction: 'eu', location: undefined };
    expect(planR2(eu, zone, empty).changes[0]?.after).toEqual({
      jurisdiction: 'eu',
      storageClass: 'Standard',
    });
    const existing = planR2(eu, zone, {
      ...empty,
      bucket: { ...bucket, jurisdiction: 'eu', location: 'WEUR' },
      domain,
    });
    expect(existing).toEqual({ changes: [], warnings: [], blockers: [], notes: [] });
  });

  it('blocks everything when the host is held elsewhere or the bucket is in another jurisdiction', () => {
    expect(
      planR2(config, zone, { ...empty, domainElsewhere: { bucket: 'x', jurisdiction: 'default' } }),
    ).toMatchObject({ changes: [], blockers: [expect.stringContaining('"x"')] });
    expect(planR2(config, zone, { ...empty, bucketInOtherJurisdiction: 'eu' }).blockers).toHaveLength(1);
  });

  it('destroy: domain first, bucket only with delete-data, nothing for what is gone', () => {
    const destroy = { ...config, mode: 'destroy' as const };
    expect(
      planR2(destroy, undefined, { ...empty, bucket, domain }).changes.map(
        (c) => `${c.action} ${c.resource}`,
      ),
    ).toEqual(['delete r2-custom-domain']);
    expect(
      planR2({ ...destroy, deleteData: true }, undefined, {
        ...empty,
        bucket,
        domain,
        hasObjects: true,
      }).changes.map((c) => `${c.action} ${c.resource}`),
    ).toEqual(['delete r2-custom-domain', 'empty r2-bucket', 'delete r2-bucket']);
    expect(
      planR2({ ...destroy, deleteData: true }, undefined, {
        ...empty,
        bucket,
        hasObjects: false,
      }).changes.map((c) => c.action),
    ).toEqual(['delete']);
    expect(planR2({ ...destroy, deleteData: true }, undefined, empty).changes).toEqual([]);
  });
});

describe('R2 names', () => {
  it('derives the slug, bucket name and S3 endpoint as the original stack did', () => {
    expect(stackSlug('My Cache.v2_x')).toBe('my-cache-v2-x');
    expect(defaultBucketName('My Cache')).toBe('my-cache-niks3');
    expect(bucketNameProblem('ab')).toMatch(/shorter/);
    expect(bucketNameProblem('a'.repeat(64))).toMatch(/longer/);
    expect(bucketNameProblem('ok-name')).toBeUndefined();
    expect(s3EndpointHost('acc', 'default')).toBe('acc.r2.cloudflarestorage.com');
    expect(s3EndpointHost('acc', 'eu')).toBe('acc.eu.r2.cloudflarestorage.com');
    expect(s3EndpointHost('acc', 'fedramp')).toBe('acc.fedramp.r2.cloudflarestorage.com');
  });
});
