/** What the push's main step hands to its post step (one JSON value under one state key). */
/** The state keys, in one place (a const object: `enum` is not erasable syntax). */
export const PushStateKey = {
  Job: 'job',
} as const;

export type JobMode = 'watch' | 'scan' | 'pull-only';

export interface JobState {
  readonly mode: JobMode;
  /** The job directory (see src/core/push/watch/job-dir.ts). */
  readonly dir: string;
  readonly storeDir: string;
  /** When the main step recorded the store (ms). */
  readonly startedAt: number;
  /** The uploader's pid, also its process group (watch mode). */
  readonly uploaderPid?: number;
  readonly substituter?: string;
  readonly publicKeys: readonly string[];
  /** The store is written by this user directly (no daemon): owners are checked in scan. */
  readonly localStore: boolean;
  /** Why nothing is pushed (pull-only), said once in the main step. */
  readonly pullOnlyReason?: string;
}

export function parseJobState(text: string): JobState | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as JobState;
    return typeof value.dir === 'string' && typeof value.mode === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
