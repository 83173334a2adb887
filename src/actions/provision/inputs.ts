/**
 * The provision inputs as one readonly typed object. Single values are validated by the spec
 * (InputReader); the checks across inputs are here, and all of them run before any request.
 */
import type { ProvisionMode } from '../../core/cloudflare/r2-model.js';
import {
  JURISDICTION_LOCATIONS,
  bucketNameProblem,
  cacheHost,
  defaultBucketName,
  s3EndpointHost,
  type R2Jurisdiction,
  type R2Location,
  type R2StorageClass,
} from '../../core/cloudflare/r2-names.js';
import type { ProvisionConfig } from '../../core/cloudflare/r2-provisioner.js';
import { parseDatabaseUrl } from '../../core/postgres/database-check.js';
import { ConfigurationError } from '../../core/errors.js';
import { maskSecret, type Logger } from '../../core/logger.js';
import type { InputReader } from '../../core/settings/input-reader.js';

export function readProvisionInputs(inputs: InputReader, logger: Logger): ProvisionConfig {
  const apiToken = inputs.required('cloudflare-api-token');
  const accountId = inputs.required('cloudflare-account-id');
  const zoneName = inputs.required('zone-name');
  const stackName = inputs.required('stack-name');
  const cacheSubdomain = inputs.required('cache-subdomain');
  const mode = inputs.enum<ProvisionMode>('mode');
  const jurisdiction = inputs.enum<R2Jurisdiction>('r2-jurisdiction');
  const location = locationHint(inputs, jurisdiction, logger);

  let bucketName: string;
  if (inputs.given('r2-bucket-name')) {
    bucketName = inputs.required('r2-bucket-name');
  } else {
    bucketName = defaultBucketName(stackName);
    const problem = bucketNameProblem(bucketName);
    if (problem) {
      throw new ConfigurationError(
        `The bucket name derived from input 'stack-name', "${bucketName}", is not a valid R2 bucket name (${problem}). Set 'r2-bucket-name' (3 to 63 of a-z, 0-9 and -), or a shorter 'stack-name'.`,
      );
    }
  }

  const host = cacheHost(cacheSubdomain, zoneName);
  if (host.length > 253) {
    throw new ConfigurationError(
      `Inputs 'cache-subdomain' and 'zone-name' make a host name longer than 253 characters ("${host}"): use a shorter cache-subdomain.`,
    );
  }

  if (mode === 'destroy') {
    const confirm = inputs.optional('confirm');
    if (confirm !== bucketName) {
      throw new ConfigurationError(
        `Input 'confirm' must equal the bucket name "${bucketName}" for mode: destroy (${confirm === undefined ? 'it is not set' : `it is "${confirm}"`}). Nothing was changed.`,
      );
    }
  } else if (inputs.boolean('delete-data')) {
    logger.warn(`Input 'delete-data' only applies to mode: destroy; it is ignored in mode: ${mode}.`);
  }

  // S3 key pair and its probe.
  const accessKey = inputs.optional('s3-access-key');
  const secretKey = inputs.optional('s3-secret-key');
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    throw new ConfigurationError(
      `Input '${accessKey === undefined ? 's3-access-key' : 's3-secret-key'}' is missing: give both 's3-access-key' and 's3-secret-key', or neither.`,
    );
  }
  const checkS3 = checkSwitch(
    inputs,
    'check-s3-credentials',
    accessKey,
    "'s3-access-key' and 's3-secret-key' are not given: pass both (from secrets)",
  );
  const endpointUrl = inputs.url('s3-endpoint-url') ?? `https://${s3EndpointHost(accountId, jurisdiction)}`;

  // Database URL and its check.
  const databaseUrl = inputs.optional('database-url');
  if (databaseUrl !== undefined) {
    const target = parseDatabaseUrl(databaseUrl);
    maskSecret(logger, target.password);
  }
  const checkDb = checkSwitch(
    inputs,
    'check-database',
    databaseUrl,
    "'database-url' is not given: pass it (from a secret)",
  );

  return {
    apiToken,
    apiUrl: inputs.requiredUrl('cloudflare-api-url'),
    r2: {
      accountId,
      zoneName,
      zoneId: inputs.optional('cloudflare-zone-id'),
      cacheSubdomain,
      cacheHost: host,
      bucketName,
      location,
      jurisdiction,
      storageClass: inputs.enum<R2StorageClass>('r2-storage-class'),
      mode,
      deleteData: mode === 'destroy' && inputs.boolean('delete-data'),
      domainWaitMs: inputs.integer('domain-wait') * 1000,
    },
    s3:
      accessKey !== undefined && secretKey !== undefined
        ? {
            endpointUrl,
            bucket: bucketName,
            accessKeyId: accessKey,
            secretAccessKey: secretKey,
            region: 'auto',
          }
        : undefined,
    checkS3,
    databaseUrl: checkDb ? databaseUrl : undefined,
  };
}

/**
 * A check's switch: by default on exactly when `value` (what it checks) is given; on without it is
 * a mistake, told with `missing` (which inputs are not given and how to pass them).
 */
function checkSwitch(
  inputs: InputReader,
  check: string,
  value: string | undefined,
  missing: string,
): boolean {
  const on = inputs.given(check) ? inputs.boolean(check) : value !== undefined;
  if (on && value === undefined)
    throw new ConfigurationError(`Input '${check}' is true but ${missing}, or set ${check}: false.`);
  return on;
}

/**
 * The location hint to send: r2-location without a jurisdiction; none with one (the jurisdiction
 * decides where the data lives). A hint outside the jurisdiction is refused. The runner hands in
 * the declared default as if it were given, so the default counts as "not chosen".
 */
function locationHint(
  inputs: InputReader,
  jurisdiction: R2Jurisdiction,
  logger: Logger,
): R2Location | undefined {
  const location = inputs.enum<R2Location>('r2-location');
  if (jurisdiction === 'default') return location;
  const chosen = inputs.given('r2-location') && location !== inputs.spec('r2-location').default;
  if (!chosen) return undefined;
  const inside = JURISDICTION_LOCATIONS[jurisdiction];
  if (!inside.includes(location)) {
    throw new ConfigurationError(
      `Inputs 'r2-location' and 'r2-jurisdiction' contradict each other: location hint "${location}" lies outside jurisdiction "${jurisdiction}" (which keeps data in ${inside.join(' or ')}). ` +
        `Remove r2-location (a bucket with a jurisdiction gets no hint), or set r2-jurisdiction: default to use the hint.`,
    );
  }
  logger.info(
    `Input 'r2-location' (${location}) is not sent: a bucket in jurisdiction ${jurisdiction} gets no location hint.`,
  );
  return undefined;
}
