/** Shapes of the Fly Machines API and GraphQL answers the suite reads (spec fly.md §2.4, §4). */
import type { MachineConfig } from './machine-config.js';

export interface FlyApp {
  readonly id: string;
  readonly name: string;
  readonly status?: string;
  readonly organization?: { readonly slug: string; readonly name?: string };
}

/** One entry of `GET /v1/tokens/current`. */
export interface TokenInfo {
  readonly token_id?: string;
  readonly org_slug?: string;
  readonly organization?: string;
  readonly apps?: readonly string[];
  readonly user?: string;
}

export interface FlyOrganization {
  readonly id?: string;
  readonly slug: string;
  readonly rawSlug?: string;
  readonly name?: string;
  readonly type?: string;
}

export interface IpAssignment {
  readonly ip: string;
  readonly region?: string;
  readonly shared?: boolean;
  readonly service_name?: string;
  readonly created_at?: string;
}

export interface SecretInfo {
  readonly name: string;
  readonly digest?: string;
  readonly created_at?: string;
  readonly updated_at?: string;
}

export interface SetSecretsResult {
  readonly version: number;
  readonly secrets: readonly SecretInfo[];
}

export interface MachineCheckStatus {
  readonly name: string;
  readonly status: string;
  readonly output?: string;
  readonly updated_at?: string;
}

export interface MachineEvent {
  readonly id?: string;
  readonly type: string;
  readonly status: string;
  readonly source?: string;
  readonly timestamp?: number;
  readonly request?: {
    readonly exit_event?: {
      readonly exit_code?: number;
      readonly requested_stop?: boolean;
      readonly restarting?: boolean;
    };
  };
}

export interface Machine {
  readonly id: string;
  readonly name?: string;
  readonly state: string;
  readonly region: string;
  readonly instance_id: string;
  readonly config?: MachineConfig;
  /**
   * What the API still knows of the config of a machine on an unhealthy host: then `config` is
   * absent, `incomplete_config` present and `host_status` not `ok` (fly-go's Machine).
   */
  readonly incomplete_config?: Partial<MachineConfig>;
  /** The image the machine runs, as resolved by Fly (the digest of the tag when it was deployed). */
  readonly image_ref?: {
    readonly registry?: string;
    readonly repository?: string;
    readonly tag?: string;
    readonly digest?: string;
  };
  readonly checks?: readonly MachineCheckStatus[];
  readonly events?: readonly MachineEvent[];
  /** Only on create with `lease_ttl`. */
  readonly nonce?: string;
  readonly host_status?: string;
  readonly created_at?: string;
  readonly updated_at?: string;
}

export interface Lease {
  readonly nonce: string;
  readonly expires_at?: number;
  readonly owner?: string;
  readonly description?: string;
  readonly version?: string;
}

/** Body of machine create and update. */
export interface MachineRequest {
  readonly region?: string;
  readonly config: MachineConfig;
  readonly lease_ttl?: number;
  readonly min_secrets_version?: number;
  readonly skip_launch?: boolean;
  readonly skip_service_registration?: boolean;
  readonly skip_secrets?: boolean;
  readonly current_version?: string;
}

/** Public-IP classification of fly.md §4.6. */
export function isSharedV4(ip: IpAssignment): boolean {
  return ip.shared === true && /^\d+\.\d+\.\d+\.\d+$/.test(ip.ip);
}

export function isPublicV6(ip: IpAssignment): boolean {
  return ip.shared !== true && ip.ip.includes(':') && !ip.ip.toLowerCase().startsWith('fdaa:');
}

/** A machine on an unhealthy host: its config is not readable, only `incomplete_config`. */
export function hasIncompleteConfig(machine: Machine): boolean {
  return machine.config === undefined && machine.incomplete_config !== undefined;
}

/** States a machine never comes back from. */
export const GONE_STATES: readonly string[] = ['destroyed', 'destroying'];
