/**
 * Retention for pins named after git refs: `push` with `pin: auto` pins each branch's or tag's
 * latest closure under the ref's name, and GC keeps pinned closures forever. When the branch or tag
 * is deleted, its pin should go too, or the closure is never collected. This finds such pins
 * (named after no existing branch or tag, and not kept by a pattern) and deletes them.
 */
import { sanitisePinName } from '../push/pin-names.js';
import { RemoteError } from '../errors.js';
import { globToRegExp } from '../glob.js';
import type { Logger } from '../logger.js';
import type { Pin } from '../niks3/api-types.js';

/** The pin name push gives a ref (`pin: auto`): the one sanitiser, shared with push. */
export function pinNameForRef(ref: string): string {
  return sanitisePinName(ref);
}

/** Branch and tag names of the repository. */
export interface RepositoryRefs {
  /** `owner/name`, for messages. */
  readonly repository: string;
  branches(): Promise<string[]>;
  tags(): Promise<string[]>;
}

/** What pruning needs of the niks3 client. */
export interface PinApi {
  listPins(): Promise<Pin[]>;
  deletePin(name: string): Promise<boolean>;
}

export interface PrunedPin {
  readonly name: string;
  readonly storePath: string;
}

export interface PinPruning {
  readonly pruned: readonly PrunedPin[];
  /** Pins left in place: named after an existing ref, or matching a keep pattern. */
  readonly kept: readonly string[];
  readonly branches: number;
  readonly tags: number;
}

/** Pins to delete: those named after no existing ref and matching no keep pattern. */
export function stalePins(pins: readonly Pin[], refNames: Iterable<string>, keep: readonly string[]): Pin[] {
  const live = new Set<string>();
  for (const ref of refNames) {
    live.add(ref);
    live.add(pinNameForRef(ref));
  }
  // A push of several roots pins them as `<name>.1`, `<name>.2`, … (src/core/push/pin-names.ts).
  const base = (name: string): string => name.replace(/\.\d+$/, '');
  const kept = keep.map(globToRegExp);
  return pins.filter(
    (pin) => !live.has(pin.name) && !live.has(base(pin.name)) && !kept.some((re) => re.test(pin.name)),
  );
}

export async function prunePins(options: {
  readonly api: PinApi;
  readonly refs: RepositoryRefs;
  readonly logger: Logger;
  /** Glob patterns of pin names never pruned (e.g. `release-*`, `prod`). */
  readonly keep: readonly string[];
}): Promise<PinPruning> {
  const { api, refs, logger, keep } = options;
  const [branches, tags, pins] = await Promise.all([refs.branches(), refs.tags(), api.listPins()]);
  if (branches.length === 0) {
    // Every repository with a commit has a branch: an empty list means a wrong token or repository,
    // and pruning against it would delete every pin.
    throw new RemoteError({
      remote: 'GitHub API',
      operation: `list branches of ${refs.repository}`,
      detail: 'the repository has no branches',
      hint: 'check github-token (it needs `contents: read` on this repository); no pin was deleted',
    });
  }
  logger.info(
    `${refs.repository}: ${branches.length} branches, ${tags.length} tags; niks3: ${pins.length} pins`,
  );
  const stale = stalePins(pins, [...branches, ...tags], keep);
  const pruned: PrunedPin[] = [];
  for (const pin of stale) {
    const deleted = await api.deletePin(pin.name);
    if (deleted) logger.info(`deleted pin ${pin.name} (${pin.storePath}): no branch or tag of that name`);
    else logger.info(`pin ${pin.name} was already gone`);
    pruned.push({ name: pin.name, storePath: pin.storePath });
  }
  const prunedNames = new Set(pruned.map((pin) => pin.name));
  const kept = pins.map((pin) => pin.name).filter((name) => !prunedNames.has(name));
  if (pruned.length === 0) logger.info('no pin is named after a deleted branch or tag');
  return { pruned, kept, branches: branches.length, tags: tags.length };
}
