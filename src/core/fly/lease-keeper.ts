/**
 * Machine leases held during a deploy (spec fly.md §4.8): acquired before a write, refreshed in the
 * background while the work runs, and released on every path — success, error, and SIGTERM/SIGINT
 * (a cancelled job). A lease left behind would block the next deploy (409) and platform
 * autostop/autostart until it lapses.
 */
import { RemoteError, errorMessage } from '../errors.js';
import type { Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import type { Lease } from './fly-api-types.js';
import { MACHINES_REMOTE, type FlyClient } from './fly-client.js';

export interface HeldLease {
  readonly app: string;
  readonly machineId: string;
  nonce: string;
  /** The TTL the lease was taken with (s); every refresh asks for the same, every third of it. */
  readonly ttlSeconds: number;
  /** Background refresh; cleared on release. */
  timer?: NodeJS.Timeout;
}

export interface LeaseKeeperOptions {
  readonly client: FlyClient;
  readonly logger: Logger;
  readonly sleep: Sleep;
  readonly now?: () => number;
  /** Lease TTL in seconds; refreshed every third of it. */
  readonly ttlSeconds?: number;
  /** How long to keep trying while someone else holds the lease. */
  readonly contendedForMs?: number;
  /** Shown as the lease description (who holds it). */
  readonly description: string;
}

export class LeaseKeeper {
  private readonly options: LeaseKeeperOptions;
  private readonly held = new Map<string, HeldLease>();

  constructor(options: LeaseKeeperOptions) {
    this.options = options;
  }

  get ttlSeconds(): number {
    return this.options.ttlSeconds ?? 120;
  }

  get logger(): Logger {
    return this.options.logger;
  }

  get description(): string {
    return this.options.description;
  }

  /** Leases that are held right now. */
  get leases(): readonly HeldLease[] {
    return [...this.held.values()];
  }

  /** Acquires the lease of a machine, waiting (bounded) while another holder has it. */
  async acquire(app: string, machineId: string): Promise<HeldLease> {
    const now = this.options.now ?? Date.now;
    const deadline = now() + (this.options.contendedForMs ?? 60_000);
    let delay = 1_000;
    for (;;) {
      const outcome = await this.options.client.acquireLease(
        app,
        machineId,
        this.ttlSeconds,
        this.options.description,
      );
      if (outcome.kind === 'acquired') return this.adopt(app, machineId, outcome.lease);
      if (now() + delay > deadline) {
        throw new RemoteError({
          remote: MACHINES_REMOTE,
          operation: `lease machine ${machineId}`,
          status: 409,
          detail: outcome.detail,
          hint: 'Another deploy (or a person with flyctl) holds the machine; wait for it to finish or for the lease to expire, then run again',
        });
      }
      this.options.logger.info(
        `Machine ${machineId} is leased by someone else (${outcome.detail}); retrying in ${Math.round(delay / 1000)} s`,
      );
      await this.options.sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  }

  /** Takes over a lease obtained some other way (e.g. the nonce of a machine create). */
  adopt(app: string, machineId: string, lease: Lease, ttlSeconds = this.ttlSeconds): HeldLease {
    // A refresh sets the expiry to now + the TTL it asks for; asking for less than the TTL held
    // (say 120 s of a 360 s create lease) would shorten the lease to end just as the next refresh fires.
    const held: HeldLease = { app, machineId, nonce: lease.nonce, ttlSeconds };
    this.held.set(machineId, held);
    const every = Math.max(1_000, Math.floor((ttlSeconds * 1000) / 3));
    held.timer = setInterval(() => void this.refresh(held), every);
    held.timer.unref();
    return held;
  }

  private async refresh(held: HeldLease): Promise<void> {
    try {
      const outcome = await this.options.client.acquireLease(
        held.app,
        held.machineId,
        held.ttlSeconds,
        this.options.description,
        held.nonce,
      );
      if (outcome.kind === 'acquired') held.nonce = outcome.lease.nonce;
      else
        this.options.logger.warn(
          `could not refresh the lease of machine ${held.machineId}: ${outcome.detail}`,
        );
    } catch (error) {
      // A lease that lapses lets another deploy (or the platform) act on the machine mid-update.
      this.options.logger.warn(
        `could not refresh the lease of machine ${held.machineId} (${errorMessage(error)}); it lapses within ${held.ttlSeconds} s unless a later refresh succeeds`,
      );
    }
  }

  /** Releases one lease (a lapsed lease counts as released); never throws, warns instead. */
  async release(machineId: string, timeoutMs?: number): Promise<void> {
    const held = this.held.get(machineId);
    if (!held) return;
    this.held.delete(machineId);
    if (held.timer) clearInterval(held.timer);
    try {
      await this.options.client.releaseLease(held.app, held.machineId, held.nonce, timeoutMs);
      this.options.logger.debug(`released the lease of machine ${machineId}`);
    } catch (error) {
      this.options.logger.warn(
        `could not release the lease of machine ${machineId} (${errorMessage(error)}); it lapses by itself within ${held.ttlSeconds} s`,
      );
    }
  }

  /** Releases every held lease. */
  async releaseAll(timeoutMs?: number): Promise<void> {
    await Promise.all([...this.held.keys()].map((id) => this.release(id, timeoutMs)));
  }
}

/** What the keeper needs of `process` to release leases when the job is cancelled. */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', handler: () => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT', handler: () => void): unknown;
}

/**
 * Runs `fn` with every lease of `keeper` released afterwards, whatever happens: on return, on a
 * throw, and on SIGTERM/SIGINT (then `exit(130|143)` after the release, bounded to a few seconds
 * because the runner kills the process soon after the signal).
 */
export async function withLeases<T>(
  keeper: LeaseKeeper,
  signals: SignalSource | undefined,
  exit: (code: number) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const handlers: Array<['SIGTERM' | 'SIGINT', () => void]> = (['SIGTERM', 'SIGINT'] as const).map(
    (signal) => [
      signal,
      () => {
        keeper.logger.warn(`${signal}: releasing ${keeper.leases.length} machine lease(s) before stopping`);
        void keeper.releaseAll(4_000).finally(() => exit(signal === 'SIGINT' ? 130 : 143));
      },
    ],
  );
  for (const [signal, handler] of handlers) signals?.on(signal, handler);
  try {
    return await fn();
  } finally {
    await keeper.releaseAll();
    for (const [signal, handler] of handlers) signals?.off(signal, handler);
  }
}
