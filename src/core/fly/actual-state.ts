/** What exists on Fly for the app right now: read only, one call per kind of resource. */
import {
  GONE_STATES,
  type FlyApp,
  type IpAssignment,
  type Machine,
  type SecretInfo,
} from './fly-api-types.js';
import type { FlyClient } from './fly-client.js';
import { METADATA } from './machine-config.js';

export interface ActualState {
  /** `forbidden`: the name is taken by an app this token cannot see. */
  readonly access: 'found' | 'missing' | 'forbidden';
  readonly forbiddenDetail?: string;
  readonly app: FlyApp | undefined;
  readonly ips: readonly IpAssignment[];
  readonly secrets: readonly SecretInfo[];
  /** Machines of the `app` process group that are not being destroyed, sorted by id. */
  readonly machines: readonly Machine[];
}

export async function readActualState(client: FlyClient, app: string): Promise<ActualState> {
  const lookup = await client.getApp(app);
  if (lookup.kind !== 'found') {
    return {
      access: lookup.kind,
      ...(lookup.kind === 'forbidden' ? { forbiddenDetail: lookup.detail } : {}),
      app: undefined,
      ips: [],
      secrets: [],
      machines: [],
    };
  }
  const [ips, secrets, machines] = [
    await client.listIps(app),
    await client.listSecrets(app),
    await client.listMachines(app),
  ];
  return { access: 'found', app: lookup.app, ips, secrets, machines: appMachines(machines) };
}

/** The Fly Launch machines of the `app` process group that are still alive (fly.md §1.2, §4.7.1). */
export function appMachines(machines: readonly Machine[]): Machine[] {
  return machines
    .filter((m) => !GONE_STATES.includes(m.state))
    .filter((m) => m.config?.metadata?.[METADATA.processGroup] === 'app')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
