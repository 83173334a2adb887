/**
 * What a push will do, decided before any upload: which closure members are sent and which are left
 * out (already served upstream, or filtered by the user), and the upload sessions (one per root,
 * shared/spec/niks3.md §5.3) with the objects each one registers.
 *
 * Skipped paths stay in the References of the narinfos we write (the server's signature covers
 * them) but get no objects. When a skipped path sits between a root and pushed paths below it, those
 * pushed paths get sessions of their own, so every pushed object is reachable from some GC root.
 */
import type { ClosureObject } from '../niks3/api-types.js';
import { listingKey, narInfoKey, narKey } from '../nix/object-keys.js';
import type { PathInfo } from '../nix/path-info.js';
import { realisationBody, realisationObjectKey, type Realisation } from '../nix/realisations.js';
import { compareBytes, storePathBaseName } from '../nix/store-path.js';
import type { BuildLogFile, BuildLogFinder } from './build-log.js';
import type { PathFilter } from './path-filter.js';

export interface PlannedPath {
  readonly info: PathInfo;
  readonly path: string;
  readonly hash: string;
  readonly baseName: string;
  readonly narinfoKey: string;
  readonly narKey: string;
  readonly listingKey: string;
  readonly buildLog?: BuildLogFile;
  /** Realisations of a floating content-addressed output: key and body (JSON, before zstd). */
  readonly realisations?: readonly RealisationObject[];
}

export interface RealisationObject {
  /** `realisations/<id>.doi` */
  readonly key: string;
  readonly body: string;
}

export interface SkippedPath {
  readonly path: string;
  readonly narSize: number;
  readonly reason: string;
}

export interface SessionPlan {
  /** The store path whose narinfo is the session's closure key (a GC root once completed). */
  readonly root: string;
  readonly closureKey: string;
  /** Pushed paths reachable from the root through pushed paths, root first. */
  readonly members: readonly string[];
  /** True when the root was not one the user named (its own root was skipped), or for a part. */
  readonly derived: boolean;
  /**
   * A share of a session too large for one request (`splitSession`): its closure key is the root's
   * narinfo, which the root's own share (not a part) registers; a part is completed only after it.
   */
  readonly part?: boolean;
}

/**
 * Store paths per upload session. niks3 answers a create only within its 60 s write timeout, and
 * its work grows with the objects (presigned URLs, a multipart upload per large NAR, waits for
 * objects GC is deleting); a larger session is split (`splitSession`).
 */
export const MAX_SESSION_PATHS = 2000;

export interface PushPlan {
  /** The roots as the user gave them (resolved, without duplicates). */
  readonly roots: readonly string[];
  /** Every member of the closure. */
  readonly closure: ReadonlyMap<string, PlannedPath>;
  /** The members that are sent to the server (it may still say some are cached). */
  readonly push: ReadonlyMap<string, PlannedPath>;
  readonly upstream: readonly SkippedPath[];
  readonly filtered: readonly SkippedPath[];
  readonly sessions: readonly SessionPlan[];
}

export interface PlanInput {
  readonly roots: readonly string[];
  readonly infos: readonly PathInfo[];
  readonly filter?: PathFilter;
  /** Path -> reason, for paths an upstream cache serves. */
  readonly upstream?: ReadonlyMap<string, string>;
  readonly findBuildLog?: BuildLogFinder;
  /** Output path -> the realisations Nix reported for it (floating content-addressed outputs). */
  readonly realisations?: ReadonlyMap<string, readonly Realisation[]>;
  /** Largest session before it is split (default MAX_SESSION_PATHS). */
  readonly maxSessionPaths?: number;
}

export function plannedPath(
  info: PathInfo,
  findBuildLog?: BuildLogFinder,
  realisations?: readonly Realisation[],
): PlannedPath {
  const baseName = storePathBaseName(info.path);
  const hash = baseName.slice(0, 32);
  const buildLog = info.deriver && findBuildLog ? findBuildLog(info.deriver) : undefined;
  return {
    info,
    path: info.path,
    hash,
    baseName,
    narinfoKey: narInfoKey(hash),
    narKey: narKey(info.narHash),
    listingKey: listingKey(hash),
    ...(buildLog ? { buildLog } : {}),
    ...(realisations && realisations.length > 0
      ? {
          realisations: realisations.map((r) => ({ key: realisationObjectKey(r), body: realisationBody(r) })),
        }
      : {}),
  };
}

/** Splits the closure by the user's filters (applied first, without any request). */
export function applyFilter(
  infos: readonly PathInfo[],
  filter: PathFilter | undefined,
): { kept: PathInfo[]; filtered: SkippedPath[] } {
  const kept: PathInfo[] = [];
  const filtered: SkippedPath[] = [];
  for (const info of infos) {
    const baseName = storePathBaseName(info.path);
    const reason = filter?.verdict(baseName, baseName.slice(33), info.narSize);
    if (reason) filtered.push({ path: info.path, narSize: info.narSize, reason });
    else kept.push(info);
  }
  return { kept, filtered };
}

export function planPush(input: PlanInput): PushPlan {
  const closure = new Map<string, PlannedPath>();
  for (const info of input.infos)
    closure.set(info.path, plannedPath(info, input.findBuildLog, input.realisations?.get(info.path)));
  for (const root of input.roots) {
    if (!closure.has(root))
      throw new Error(`internal: root ${root} is missing from the path-info of its closure`);
  }
  const { filtered } = applyFilter(input.infos, input.filter);
  const filteredSet = new Set(filtered.map((f) => f.path));
  const upstream: SkippedPath[] = [];
  for (const [path, reason] of input.upstream ?? []) {
    const planned = closure.get(path);
    if (planned && !filteredSet.has(path)) upstream.push({ path, narSize: planned.info.narSize, reason });
  }
  const upstreamSet = new Set(upstream.map((u) => u.path));
  const push = new Map<string, PlannedPath>();
  for (const [path, planned] of closure)
    if (!filteredSet.has(path) && !upstreamSet.has(path)) push.set(path, planned);

  const roots = [...new Set(input.roots)];
  const max = input.maxSessionPaths ?? MAX_SESSION_PATHS;
  const sessions = planSessions(roots, closure, push).flatMap((session) =>
    splitSession(session, closure, max),
  );
  return {
    roots,
    closure,
    push,
    upstream: upstream.sort((a, b) => compareBytes(a.path, b.path)),
    filtered: filtered.sort((a, b) => compareBytes(a.path, b.path)),
    sessions,
  };
}

/** Pushed paths reachable from `start` through pushed paths only (start first, then depth-first). */
export function reachablePushed(
  start: string,
  closure: ReadonlyMap<string, PlannedPath>,
  push: ReadonlyMap<string, PlannedPath>,
): string[] {
  const seen = new Set<string>([start]);
  const order: string[] = [];
  const stack = [start];
  while (stack.length > 0) {
    const path = stack.pop() as string;
    order.push(path);
    for (const ref of closure.get(path)?.info.references ?? []) {
      if (!seen.has(ref) && push.has(ref)) {
        seen.add(ref);
        stack.push(ref);
      }
    }
  }
  return order;
}

/**
 * Splits a session of more than `maxPaths` members into shares of at most `maxPaths`: the members
 * in dependency order (references first), cut into runs. Every share has the root's narinfo as its
 * closure key, so everything stays reachable from the one GC root; the root's own share (first in
 * the result, holding the root) registers that narinfo, the others are parts.
 */
export function splitSession(
  session: SessionPlan,
  closure: ReadonlyMap<string, PlannedPath>,
  maxPaths: number,
): SessionPlan[] {
  const max = Math.max(1, Math.floor(maxPaths));
  if (session.members.length <= max) return [session];
  if (session.part) {
    // A part does not hold its root: any cut of it is parts again.
    const parts: SessionPlan[] = [];
    for (let i = 0; i < session.members.length; i += max)
      parts.push({ ...session, members: session.members.slice(i, i + max) });
    return parts;
  }
  const members = new Set(session.members);
  const order = dependencyOrder(session.root, members, closure);
  const runs: string[][] = [];
  for (let i = 0; i < order.length; i += max) runs.push(order.slice(i, i + max));
  const last = runs.pop() as string[]; // ends with the root
  const holder: SessionPlan = {
    root: session.root,
    closureKey: session.closureKey,
    members: [session.root, ...last.filter((path) => path !== session.root)],
    derived: session.derived,
  };
  return [
    holder,
    ...runs.map((run) => ({
      root: session.root,
      closureKey: session.closureKey,
      members: run,
      derived: true,
      part: true,
    })),
  ];
}

/** `members` in post-order from `root` (each path after the members it references; root last). */
function dependencyOrder(
  root: string,
  members: ReadonlySet<string>,
  closure: ReadonlyMap<string, PlannedPath>,
): string[] {
  const order: string[] = [];
  const seen = new Set<string>([root]);
  const stack: Array<{ path: string; refs: readonly string[]; next: number }> = [
    { path: root, refs: closure.get(root)?.info.references ?? [], next: 0 },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { path: string; refs: readonly string[]; next: number };
    if (top.next < top.refs.length) {
      const ref = top.refs[top.next++] as string;
      if (!seen.has(ref) && members.has(ref)) {
        seen.add(ref);
        stack.push({ path: ref, refs: closure.get(ref)?.info.references ?? [], next: 0 });
      }
      continue;
    }
    stack.pop();
    order.push(top.path);
  }
  // Members reachable only through paths outside this session (none for a planned session).
  for (const member of members) if (!seen.has(member)) order.unshift(member);
  return order;
}

function planSessions(
  roots: readonly string[],
  closure: ReadonlyMap<string, PlannedPath>,
  push: ReadonlyMap<string, PlannedPath>,
): SessionPlan[] {
  const sessions: SessionPlan[] = [];
  const covered = new Set<string>();
  const addSession = (root: string, derived: boolean): void => {
    const members = reachablePushed(root, closure, push);
    for (const member of members) covered.add(member);
    sessions.push({ root, closureKey: (push.get(root) as PlannedPath).narinfoKey, members, derived });
  };
  for (const root of roots) if (push.has(root)) addSession(root, false);
  // Pushed paths not reachable from a pushed root (they hang below a skipped path): the topmost
  // of them become roots of their own sessions.
  for (;;) {
    const uncovered = [...push.keys()].filter((path) => !covered.has(path));
    if (uncovered.length === 0) break;
    const uncoveredSet = new Set(uncovered);
    const hasUncoveredParent = new Set<string>();
    for (const path of uncovered) {
      for (const ref of closure.get(path)?.info.references ?? [])
        if (ref !== path && uncoveredSet.has(ref)) hasUncoveredParent.add(ref);
    }
    const tops = uncovered.filter((path) => !hasUncoveredParent.has(path)).sort(compareBytes);
    if (tops.length === 0) throw new Error('internal: the closure has a reference cycle');
    for (const top of tops) if (!covered.has(top)) addSession(top, true);
  }
  return sessions;
}

/**
 * The objects one path registers (§5.3): narinfo (refs: references' narinfos, NAR, listing, build
 * log, realisations), NAR, listing, log, realisations. The log is in the narinfo's refs because
 * niks3's GC marks only what the closures reach through refs: a log nothing refers to is deleted
 * after the grace period. The realisations are in them as in niks3's own client.
 */
export function pathObjects(planned: PlannedPath): ClosureObject[] {
  const refs: string[] = [];
  for (const ref of planned.info.references) {
    if (ref === planned.path) continue;
    refs.push(narInfoKey(ref));
  }
  refs.push(planned.narKey, planned.listingKey);
  if (planned.buildLog) refs.push(planned.buildLog.key);
  for (const realisation of planned.realisations ?? []) refs.push(realisation.key);
  const objects: ClosureObject[] = [
    { key: planned.narinfoKey, type: 'narinfo', refs },
    { key: planned.narKey, type: 'nar', refs: [], nar_size: planned.info.narSize },
    { key: planned.listingKey, type: 'listing', refs: [] },
  ];
  if (planned.buildLog) objects.push({ key: planned.buildLog.key, type: 'build_log', refs: [] });
  for (const realisation of planned.realisations ?? [])
    objects.push({ key: realisation.key, type: 'realisation', refs: [] });
  return objects;
}

/** Every object of a session's members, without duplicate keys. */
export function sessionObjects(session: SessionPlan, plan: PushPlan): ClosureObject[] {
  const byKey = new Map<string, ClosureObject>();
  for (const member of session.members) {
    const planned = plan.push.get(member);
    if (!planned) continue;
    for (const object of pathObjects(planned)) byKey.set(object.key, object);
  }
  return [...byKey.values()];
}
