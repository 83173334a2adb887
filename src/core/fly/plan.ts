/**
 * The plan: the list of changes that turns the actual state into the desired one. `mode: plan`
 * prints it; the applier executes it; an empty plan means a re-run writes nothing.
 */
import { secretsFingerprint, type DesiredState, type IpType } from './desired-state.js';
import { driftedFields } from './config-drift.js';
import { hasIncompleteConfig, isPublicV6, isSharedV4, type Machine } from './fly-api-types.js';
import type { ActualState } from './actual-state.js';
import { METADATA } from './machine-config.js';

export type Change =
  | { readonly action: 'create-app'; readonly app: string; readonly org: string | undefined }
  | { readonly action: 'allocate-ip'; readonly type: IpType }
  | {
      readonly action: 'set-secrets';
      readonly set: readonly string[];
      readonly unset: readonly string[];
      readonly reason: string;
    }
  | { readonly action: 'create-machine'; readonly region: string; readonly image: string }
  | { readonly action: 'update-machine'; readonly machineId: string; readonly reasons: readonly string[] }
  | { readonly action: 'destroy-machine'; readonly machineId: string; readonly reason: string }
  | { readonly action: 'delete-app'; readonly app: string };

export interface FlyPlan {
  readonly changes: readonly Change[];
  /** The machine that is kept (updated or left alone), when one exists. */
  readonly machine: Machine | undefined;
}

/** Machine states after which the machine is restarted by an update even when nothing changed. */
const BROKEN_STATES: readonly string[] = ['failed', 'launch_failed'];

export function planDeploy(desired: DesiredState, actual: ActualState): FlyPlan {
  const changes: Change[] = [];
  const setNames = Object.keys(desired.secrets);

  if (actual.access !== 'found') {
    changes.push({ action: 'create-app', app: desired.app, org: desired.orgSlug });
    changes.push({ action: 'set-secrets', set: setNames, unset: [], reason: 'new app' });
    for (const type of desired.ips) changes.push({ action: 'allocate-ip', type });
    changes.push({ action: 'create-machine', region: desired.region, image: desired.image });
    return { changes, machine: undefined };
  }

  // The machine to keep: the first readable one in the desired region (an update cannot move a
  // machine). One on an unhealthy host (no config, only incomplete_config) is replaced, as flyctl
  // does: a new machine is created and the broken one destroyed.
  const inRegion = actual.machines.filter((m) => m.region === desired.region && !hasIncompleteConfig(m));
  const keep = inRegion[0];
  const digests = new Map(actual.secrets.map((s) => [s.name, s.digest]));
  const meta = keep?.config?.metadata ?? {};

  const secretReasons: string[] = [];
  const missing = setNames.filter((name) => !digests.has(name));
  if (missing.length > 0) secretReasons.push(`missing on the app: ${missing.join(', ')}`);
  if (!keep) secretReasons.push('no machine to compare with');
  else if (meta[METADATA.secretsHash] !== desired.secretsHash) secretReasons.push('values changed');
  else if (meta[METADATA.secretsFingerprint] !== secretsFingerprint(digests, setNames))
    secretReasons.push('changed outside nix-cache');
  const unset = desired.unsetSecrets.filter((name) => digests.has(name));
  if (secretReasons.length > 0 || unset.length > 0) {
    changes.push({
      action: 'set-secrets',
      set: secretReasons.length > 0 ? setNames : [],
      unset,
      reason: secretReasons.length > 0 ? secretReasons.join('; ') : 'no OIDC policy any more',
    });
  }
  const secretsChange = changes.length > 0;

  for (const type of desired.ips) {
    const present = type === 'v6' ? actual.ips.some(isPublicV6) : actual.ips.some(isSharedV4);
    if (!present) changes.push({ action: 'allocate-ip', type });
  }

  if (!keep) {
    changes.push({ action: 'create-machine', region: desired.region, image: desired.image });
  } else {
    const reasons: string[] = [];
    const drifted = driftedFields(keep.config, desired.config);
    const pinned = /@(sha256:[0-9a-f]{64})$/.exec(desired.image)?.[1];
    const liveDigest = keep.image_ref?.digest;
    if (keep.config?.image !== desired.image)
      reasons.push(`image ${keep.config?.image ?? '(none)'} -> ${desired.image}`);
    else if (pinned && liveDigest && liveDigest !== pinned)
      reasons.push(`image digest ${liveDigest} -> ${pinned}`);
    else if (meta[METADATA.configHash] !== desired.configHash) reasons.push('machine config changed');
    else if (drifted.length > 0) reasons.push(`changed outside nix-cache: ${drifted.join(', ')}`);
    else if (desired.redeploy) reasons.push('redeploy: true (the image is pulled again)');
    if (secretsChange) reasons.push('secrets changed');
    if (BROKEN_STATES.includes(keep.state)) reasons.push(`machine is ${keep.state}`);
    if (reasons.length > 0) changes.push({ action: 'update-machine', machineId: keep.id, reasons });
  }
  for (const extra of actual.machines) {
    if (extra === keep) continue;
    const reason = hasIncompleteConfig(extra)
      ? `on an unhealthy host (host status ${extra.host_status ?? 'unknown'}, config not readable): replaced`
      : extra.region === desired.region
        ? 'one machine is enough (no HA)'
        : `replaced by a machine in ${desired.region}`;
    changes.push({ action: 'destroy-machine', machineId: extra.id, reason });
  }
  return { changes, machine: keep };
}

export function planDestroy(app: string, actual: ActualState): FlyPlan {
  return { changes: actual.access === 'missing' ? [] : [{ action: 'delete-app', app }], machine: undefined };
}

/** One line per change, for logs and the job summary (never a secret value). */
export function describeChange(change: Change): string {
  switch (change.action) {
    case 'create-app':
      return `create app ${change.app}${change.org ? ` in organisation ${change.org}` : ''}`;
    case 'allocate-ip':
      return `allocate a ${change.type === 'v6' ? 'public IPv6 address' : 'shared IPv4 address'}`;
    case 'set-secrets': {
      const parts = [];
      if (change.set.length > 0) parts.push(`set ${change.set.join(', ')}`);
      if (change.unset.length > 0) parts.push(`unset ${change.unset.join(', ')}`);
      return `secrets: ${parts.join('; ')} (${change.reason})`;
    }
    case 'create-machine':
      return `create a machine in ${change.region} running ${change.image}`;
    case 'update-machine':
      return `update machine ${change.machineId}: ${change.reasons.join('; ')}`;
    case 'destroy-machine':
      return `destroy machine ${change.machineId} (${change.reason})`;
    case 'delete-app':
      return `delete app ${change.app} with its machines, IPs and secrets`;
  }
}
