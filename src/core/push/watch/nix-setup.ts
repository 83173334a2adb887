/**
 * How the rest of the job reads from the cache and reports its builds, decided from the Nix
 * installation the job has:
 *
 * - **Trusted** (a store this user writes itself, root, or a user the daemon lists in
 *   `trusted-users`): one file of settings (`extra-substituters`, `extra-trusted-public-keys`, and in
 *   watch mode `post-build-hook`) put first in `NIX_USER_CONF_FILES` through `GITHUB_ENV`, followed
 *   by the files Nix would have read anyway, so the user's own settings still apply. Not
 *   `NIX_CONFIG`: a later step's `env: NIX_CONFIG` would replace ours without a trace, and a user
 *   rarely sets `NIX_USER_CONF_FILES`. A trusted client's settings are honoured by the daemon too.
 * - **Not trusted by the daemon**: the daemon ignores the client's substituters and hooks, so the
 *   substituter goes into `/etc/nix/nix.conf` (with `sudo -n`, as on hosted runners) and the daemon
 *   is restarted; no hook can be installed, so the push falls back to scan mode.
 * - **Nix older than 2.3** has no `post-build-hook`: scan mode.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../errors.js';
import { execFile, NIX_COMMAND_FEATURES, type ExecFn } from '../../nix/nix-command.js';

export interface NixInstallation {
  readonly version: string | undefined;
  /** The store is reached through a daemon (multi-user install). */
  readonly daemon: boolean;
  /** This user may set substituters and hooks for its own builds. */
  readonly trusted: boolean;
  readonly user: string;
  /** A post-build hook already configured (chained after ours). */
  readonly existingHook: string | undefined;
  /** Why a hook cannot be installed, when it cannot. */
  readonly noHookReason: string | undefined;
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match) return true;
  const [maj, min] = [Number(match[1]), Number(match[2])];
  return maj > major || (maj === major && min >= minor);
}

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

interface ShownSetting {
  readonly value?: unknown;
}

export async function inspectNix(
  options: { exec?: ExecFn; env?: NodeJS.ProcessEnv; stateDir?: string } = {},
): Promise<NixInstallation> {
  const exec = options.exec ?? execFile;
  const env = options.env ?? process.env;
  const user = env['USER'] || userInfo().username;
  let version: string | undefined;
  try {
    const result = await exec('nix', ['--version'], { env });
    version = /(\d+\.\d+(?:\.\d+)?)/.exec(result.stdout)?.[1];
  } catch (error) {
    return {
      version: undefined,
      daemon: false,
      trusted: false,
      user,
      existingHook: undefined,
      noHookReason: `Nix could not be run (${errorMessage(error)})`,
    };
  }
  let settings: Record<string, ShownSetting> = {};
  const shown = await exec('nix', [...NIX_COMMAND_FEATURES, 'show-config', '--json'], { env });
  if (shown.code === 0) {
    try {
      settings = JSON.parse(shown.stdout) as Record<string, ShownSetting>;
    } catch {
      settings = {};
    }
  }
  const text = (name: string): string => {
    const value = settings[name]?.value;
    return typeof value === 'string' ? value : '';
  };
  const list = (name: string): string[] => {
    const value = settings[name]?.value;
    return Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(/\s+/) : [];
  };
  const store = env['NIX_REMOTE'] || text('store') || 'auto';
  const stateDir = options.stateDir ?? env['NIX_STATE_DIR'] ?? '/nix/var/nix';
  const daemon =
    store === 'daemon' ||
    store.startsWith('unix://') ||
    ((store === 'auto' || store === '') && !(await writable(join(stateDir, 'db'))));
  let trusted = !daemon || user === 'root';
  if (!trusted) {
    const trustedUsers = list('trusted-users');
    let groups: string[] = [];
    if (trustedUsers.some((entry) => entry.startsWith('@'))) {
      const id = await exec('id', ['-Gn'], { env }).catch(() => undefined);
      groups = id?.stdout.split(/\s+/).filter(Boolean) ?? [];
    }
    trusted = trustedUsers.some(
      (entry) =>
        entry === '*' || entry === user || (entry.startsWith('@') && groups.includes(entry.slice(1))),
    );
  }
  let noHookReason: string | undefined;
  if (version && !versionAtLeast(version, 2, 3))
    noHookReason = `Nix ${version} has no post-build-hook (it came in Nix 2.3)`;
  else if (!trusted)
    noHookReason = `the Nix daemon does not trust user ${user} (it is not in trusted-users), so it ignores a post-build-hook set by this job`;
  const hook = text('post-build-hook');
  return { version, daemon, trusted, user, existingHook: hook || undefined, noHookReason };
}

/** The files Nix reads for user settings when `NIX_USER_CONF_FILES` is unset. */
export function defaultUserConfFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env['NIX_USER_CONF_FILES']) return env['NIX_USER_CONF_FILES'].split(':').filter(Boolean);
  const home = env['HOME'] || homedir();
  const configHome = env['XDG_CONFIG_HOME'] || join(home, '.config');
  const configDirs = (env['XDG_CONFIG_DIRS'] || '/etc/xdg').split(':').filter(Boolean);
  return [join(configHome, 'nix', 'nix.conf'), ...configDirs.map((dir) => join(dir, 'nix', 'nix.conf'))];
}

export function renderNixConf(options: {
  readonly substituter: string | undefined;
  readonly publicKeys: readonly string[];
  readonly hook: string | undefined;
  readonly serverUrl: string;
}): string {
  const lines = [`# nix-cache push (${options.serverUrl}): settings for the rest of this job.`];
  if (options.substituter) lines.push(`extra-substituters = ${options.substituter}`);
  if (options.publicKeys.length > 0)
    lines.push(`extra-trusted-public-keys = ${options.publicKeys.join(' ')}`);
  if (options.hook) lines.push(`post-build-hook = ${options.hook}`);
  return `${lines.join('\n')}\n`;
}

/**
 * For a user the daemon does not trust: appends the substituter and key to /etc/nix/nix.conf with
 * `sudo -n` and restarts the daemon (systemd or launchd). Returns undefined when done, else why not.
 */
export async function configureDaemonSubstituter(
  substituter: string,
  publicKeys: readonly string[],
  options: { exec?: ExecFn; env?: NodeJS.ProcessEnv } = {},
): Promise<string | undefined> {
  const exec = options.exec ?? execFile;
  const env = options.env ?? process.env;
  const lines =
    `\n# nix-cache push\nextra-substituters = ${substituter}\n` +
    (publicKeys.length ? `extra-trusted-public-keys = ${publicKeys.join(' ')}\n` : '');
  try {
    const tee = await exec('sudo', ['-n', 'tee', '-a', '/etc/nix/nix.conf'], { env, input: lines });
    if (tee.code !== 0) return `sudo -n tee -a /etc/nix/nix.conf failed: ${tee.stderr.trim()}`;
    const restart =
      process.platform === 'darwin'
        ? await exec('sudo', ['-n', 'launchctl', 'kickstart', '-k', 'system/org.nixos.nix-daemon'], { env })
        : await exec('sudo', ['-n', 'systemctl', 'restart', 'nix-daemon.service'], { env });
    if (restart.code !== 0) return `the Nix daemon could not be restarted: ${restart.stderr.trim()}`;
    return undefined;
  } catch (error) {
    return errorMessage(error);
  }
}
