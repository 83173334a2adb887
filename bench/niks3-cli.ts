/**
 * Push vs the niks3 CLI (`npm run bench` runs it after bench/push.ts; not a test). Builds one closure
 * (~60 store paths, ~120 MB of compressible and random data, two NARs big enough for multipart) with
 * real Nix, then pushes it, in alternating rounds, with our push bundle (run as a runner runs it) and
 * with `niks3 push` built from the same niks3 v1.7.0 module (.tools/bin, see .ci/setup), each time to
 * a fresh real stack (niks3-server v1.7.0, PostgreSQL 15, versitygw: an empty bucket and database).
 * Same concurrency (30) and zstd level (3; the CLI's zstd "default" speed is level 3). Prints wall
 * time and CPU time (user + system of the client's process tree, from GNU time) per run and the
 * ratios `push/niks3-cli` of the medians. Flags: --rounds N (default 2), --concurrency N.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDerivations, uniqueSalt } from '../test/helpers/nix-fixtures.js';
import { declaredDefaults } from '../test/helpers/run-action.js';
import { startRealNiks3, type RealNiks3 } from '../test/real-niks3/stack.js';
import { NIKS3_CLI, realNiks3Problem } from '../test/real-niks3/tools.js';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const args = process.argv.slice(2);
const flag = (name: string): number | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) || undefined : undefined;
};
const rounds = flag('--rounds') ?? 2;
const concurrency = flag('--concurrency') ?? 30;
const GNU_TIME = '/usr/bin/time';

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

interface Measured {
  readonly code: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly output: string;
}

/** Runs a command under GNU time: wall time here, user+sys of it and the children it waited for. */
function timed(cmd: string, argv: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(GNU_TIME, ['-f', 'BENCH_TIME=%U %S', cmd, ...argv], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      const match = /BENCH_TIME=([\d.]+) ([\d.]+)/.exec(output);
      const cpuMs = match ? (Number(match[1]) + Number(match[2])) * 1000 : NaN;
      resolve({ code: code ?? 1, wallMs, cpuMs, output });
    });
  });
}

async function buildClosure(): Promise<string> {
  const scripts: Record<string, string> = {};
  const names: string[] = [];
  // Compressible text (about 1 MB each), random blobs (4 MB), two multipart NARs (20 MB random).
  for (let i = 0; i < 50; i++) {
    names.push(`text${i}`);
    scripts[`text${i}`] =
      `/bin/mkdir $out; i=0; while [ $i -lt 16 ]; do /usr/bin/seq 1 9000 | /bin/sed "s/^/line $i of text${i}: /" > $out/f$i; i=$((i+1)); done`;
  }
  for (let i = 0; i < 8; i++) {
    names.push(`blob${i}`);
    scripts[`blob${i}`] = `/usr/bin/head -c 4194304 /dev/urandom > $out`;
  }
  for (let i = 0; i < 2; i++) {
    names.push(`big${i}`);
    scripts[`big${i}`] = `/usr/bin/head -c 20971520 /dev/urandom > $out`;
  }
  scripts.top = `/bin/mkdir $out; echo ${names.map((n) => `\${${n}}`).join(' ')} > $out/refs`;
  const built = await buildDerivations(scripts, { salt: uniqueSalt(), namePrefix: 'bench-cli-' });
  return built.top as string;
}

/** Our push bundle as a runner runs it: INPUT_* env, the GITHUB_* files, a token input. */
async function runPush(stack: RealNiks3, root: string, dir: string): Promise<Measured> {
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    GITHUB_ENV: join(dir, 'env'),
    GITHUB_PATH: join(dir, 'path'),
  };
  for (const file of Object.values(files)) writeFileSync(file, '');
  mkdirSync(join(dir, 'temp'), { recursive: true });
  const inputs: Record<string, string> = {
    ...declaredDefaults('push'),
    'server-url': stack.url,
    auth: 'token',
    token: stack.apiToken,
    paths: root,
    'upstream-filter': 'false',
    'max-concurrent-uploads': String(concurrency),
    'compression-level': '3',
    verify: 'false',
  };
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...files,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: join(dir, 'temp'),
    GITHUB_WORKSPACE: dir,
    GITHUB_REPOSITORY: 'octo-org/octo-repo',
    GITHUB_REF_NAME: 'main',
  };
  for (const [name, value] of Object.entries(inputs))
    env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  return timed(process.execPath, [join(ROOT, 'dist', 'push', 'index.js')], env);
}

/** `niks3 push` with the token in a 0600 file (NIKS3_AUTH_TOKEN_FILE), never on argv. */
async function runCli(stack: RealNiks3, root: string, dir: string): Promise<Measured> {
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, stack.apiToken, { mode: 0o600 });
  return timed(
    NIKS3_CLI,
    ['push', '--server-url', stack.url, '--max-concurrent-uploads', String(concurrency), root],
    { PATH: process.env.PATH, HOME: dir, NIKS3_AUTH_TOKEN_FILE: tokenFile },
  );
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

async function main(): Promise<void> {
  const problem = realNiks3Problem();
  if (problem) {
    log(`bench niks3-cli: skipped: ${problem}`);
    return;
  }
  if (!existsSync(GNU_TIME)) {
    log('bench niks3-cli: skipped: GNU time (/usr/bin/time) is needed for the CPU time; run .ci/setup');
    return;
  }
  log('bench niks3-cli: building the closure…');
  const root = await buildClosure();
  const results: Record<'push' | 'niks3-cli', Measured[]> = { push: [], 'niks3-cli': [] };
  for (let round = 1; round <= rounds; round++) {
    for (const who of ['push', 'niks3-cli'] as const) {
      const stack = await startRealNiks3();
      const dir = mkdtempSync(join(tmpdir(), 'nix-cache-bench-cli-'));
      try {
        const measured = who === 'push' ? await runPush(stack, root, dir) : await runCli(stack, root, dir);
        if (measured.code !== 0) throw new Error(`${who} failed (${measured.code}):\n${measured.output}`);
        const narinfos = (await stack.objectKeys()).filter((key) => key.endsWith('.narinfo')).length;
        if (narinfos !== 61) throw new Error(`${who} stored ${narinfos} narinfos, expected 61`);
        results[who].push(measured);
        log(
          `round ${round} ${who.padEnd(9)} wall ${(measured.wallMs / 1000).toFixed(2)} s  cpu ${(measured.cpuMs / 1000).toFixed(2)} s`,
        );
      } finally {
        await stack.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const wall = median(results.push.map((r) => r.wallMs)) / median(results['niks3-cli'].map((r) => r.wallMs));
  const cpu = median(results.push.map((r) => r.cpuMs)) / median(results['niks3-cli'].map((r) => r.cpuMs));
  console.log(
    `push/niks3-cli (61 paths, ~120 MB NAR, concurrency ${concurrency}, zstd 3, real niks3 v1.7.0, medians of ${rounds}): wall ${wall.toFixed(2)}, cpu ${cpu.toFixed(2)}`,
  );
}

await main();
