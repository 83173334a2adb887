/**
 * The files of one job-wide push (watch, scan and pull-only modes), all in one private directory
 * under RUNNER_TEMP that the main step creates (mode 0700):
 *
 * - `queue/`: the post-build hook drops one file per finished build (line 1 the `.drv`, line 2 the
 *   output paths); a name starting with `.` is still being written.
 * - `post-build-hook`: the hook (a shell script without any secret).
 * - `nix.conf`: the settings the rest of the job reads through `NIX_USER_CONF_FILES`.
 * - `ready`: written by the uploader once it has read its settings (token included) from its stdin,
 *   a pipe from the main step: the token is never on disk, in argv, in the environment or a log.
 * - `uploader.log`: everything the uploader printed (secrets redacted).
 * - `events.jsonl`: one JSON line per path the uploader handled (see UploaderEvent).
 * - `uploader-done.json`: written by the uploader when it exits (what it could not push).
 * - `stop`: written by the post step; the uploader then drains the queue and exits.
 * - `baseline.json`: the store's entries when the main step ran (scan, and what the job pulled).
 */
import { join } from 'node:path';

export interface JobDir {
  readonly root: string;
  readonly queue: string;
  readonly hook: string;
  readonly nixConf: string;
  readonly ready: string;
  readonly uploaderLog: string;
  readonly events: string;
  readonly done: string;
  readonly stop: string;
  readonly baseline: string;
}

export function jobDir(root: string): JobDir {
  return {
    root,
    queue: join(root, 'queue'),
    hook: join(root, 'post-build-hook'),
    nixConf: join(root, 'nix.conf'),
    ready: join(root, 'ready'),
    uploaderLog: join(root, 'uploader.log'),
    events: join(root, 'events.jsonl'),
    done: join(root, 'uploader-done.json'),
    stop: join(root, 'stop'),
    baseline: join(root, 'baseline.json'),
  };
}

/** What happened to one path in the uploader. */
export interface UploaderEvent {
  /** ms since the epoch. */
  readonly at: number;
  /** `build`: before the post step asked to stop; `drain`: after. */
  readonly phase: 'build' | 'drain';
  readonly path: string;
  readonly status: 'uploaded' | 'cached' | 'skipped' | 'failed';
  readonly narSize: number;
  readonly reason?: string;
}

/** What the uploader leaves when it exits. */
export interface UploaderDone {
  readonly at: number;
  /** Build outputs it gave up on (the post step tries them again). */
  readonly failed: ReadonlyArray<{ readonly path: string; readonly reason: string }>;
  readonly uploadedBytes: number;
}

export function parseEvents(text: string): UploaderEvent[] {
  const events: UploaderEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      events.push(JSON.parse(line) as UploaderEvent);
    } catch {
      // a line cut short by a kill: ignored
    }
  }
  return events;
}
