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

/**
 * The Fly Launch machines of the `app` process group that are still alive (fly.md §1.2, §4.7.1).
 * A machine on an unhealthy host has no `config`, only `incomplete_config`: it counts when that
 * says `app`, or says nothing of its process group (the app is the niks3 server's alone), so the
 * plan can replace it instead of not seeing it and creating a second machine.
 */
export function appMachines(machines: readonly Machine[]): Machine[] {
  return machines
    .filter((m) => !GONE_STATES.includes(m.state))
    .filter((m) => {
      if (m.config) return m.config.metadata?.[METADATA.processGroup] === 'app';
      const group = m.incomplete_config?.metadata?.[METADATA.processGroup];
      return m.incomplete_config !== undefined && (group === undefined || group === 'app');
    })
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
