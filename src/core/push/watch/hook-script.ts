/**
 * The Nix post-build hook of watch mode. Nix runs it after every local build, synchronously: the
 * build loop waits while it runs, and a hook that fails stops all further builds. So it only drops
 * the build's `.drv` and output paths into the queue directory (a write and a rename) and exits 0,
 * whatever happens; the background uploader does the pushing. It holds no secret.
 *
 * Nix 2.8.0 passes an empty `OUT_PATHS` (NixOS/nix#6446); `DRV_PATH` is always set, so the hook
 * records both and the uploader takes the outputs from the `.drv` when `OUT_PATHS` is empty.
 * A post-build hook the user had already configured still runs, after ours, with its own exit code.
 */

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export function renderHookScript(options: {
  readonly queueDir: string;
  /** Absolute path of `mv`. */
  readonly mv: string;
  /** The user's own post-build hook, run after ours. */
  readonly previousHook?: string;
}): string {
  const last = options.previousHook ? `exec ${shellQuote(options.previousHook)}` : 'exit 0';
  return [
    '#!/bin/sh',
    '# nix-cache push (watch mode): queues the outputs of this build for the background uploader.',
    '# Never fails the build and never waits for the network.',
    `queue=${shellQuote(options.queueDir)}`,
    'name="${DRV_PATH##*/}.$$"',
    `( umask 022; printf '%s\\n%s\\n' "$DRV_PATH" "$OUT_PATHS" > "$queue/.$name" && ${shellQuote(options.mv)} -f "$queue/.$name" "$queue/$name" ) >/dev/null 2>&1`,
    last,
    '',
  ].join('\n');
}

/** One queue file: the `.drv` (may be empty) and the output paths Nix reported (may be empty). */
export function parseQueueFile(text: string): { drv: string | undefined; outputs: string[] } {
  const [drv = '', outs = ''] = text.split('\n');
  return {
    drv: drv.trim() || undefined,
    outputs: outs.split(/\s+/).filter((path) => path.startsWith('/')),
  };
}
