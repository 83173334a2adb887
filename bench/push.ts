/**
 * Push benchmark (`npm run bench`; not a test). Builds ~200 store paths / ~300 MB of mixed
 * compressible and random data with real Nix, starts the fake niks3, and prints, measured in the
 * same run:
 *
 *   - push time / the limit: `nix-store --dump | zstd -3` over the same paths with the same
 *     parallelism, output discarded (what serialising and compressing alone cost);
 *   - push time / `nix copy --to file://…?compression=zstd` (Nix's own uploader, to local files);
 *   - the time and CPU of a second push of the same closure (everything cached), and of the same
 *     re-push with an upstream cache that never answers (the timing the upstream test used to
 *     assert, now measured here as a ratio);
 *   - push CPU / `nix copy` CPU, the 1 GiB path's throughput, and the bundle's start-up to its
 *     first request next to a bare `node -e` connect;
 *   - the peak RSS of the push process (GNU time when present, else the process's own maxRSS),
 *     also for a push of one 1 GiB path (skip with --no-1g);
 *   - CPU time (user + system) of each contender next to its wall time, and the CPU the niks3
 *     stand-in spent receiving the push (it runs in this process, on the same cores, so part of
 *     the push's wall time is its work: SigV4 checks, MD5 ETags, temp files).
 *
 * The push runs as a GitHub runner runs it: the dist bundle (`npm run bundle -- push` first) in a
 * child process, inputs in INPUT_* variables. Flags: --concurrency N (default 30), --no-1g,
 * --profile DIR (writes V8 CPU profiles of the first push and of the re-push, each with the stand-in's, to DIR).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { startFakeNiks3, type FakeNiks3 } from '../test/fakes/niks3/index.js';
import { buildDerivations, buildRandomPath, uniqueSalt } from '../test/helpers/nix-fixtures.js';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const args = process.argv.slice(2);
const concurrency = Number(args[args.indexOf('--concurrency') + 1] ?? '') || 30;
const withHugePath = !args.includes('--no-1g');
const profileDir = args.includes('--profile') ? args[args.indexOf('--profile') + 1] : undefined;
const MiB = 1024 * 1024;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

interface Exec {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** User + system CPU of the command and the children it waited for (under GNU time only). */
  readonly cpuMs?: number;
  readonly maxRssKb?: number;
}

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs a command under GNU time (when present) to learn its CPU time and peak RSS. */
async function timedExec(
  cmd: string,
  argv: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<Exec> {
  if (!GNU_TIME) return exec(cmd, argv, options);
  const result = await exec(GNU_TIME, ['-f', 'BENCH_TIME=%M %U %S', cmd, ...argv], options);
  const match = /BENCH_TIME=(\d+) ([\d.]+) ([\d.]+)/.exec(result.stderr);
  if (!match) return result;
  return {
    ...result,
    maxRssKb: Number(match[1]),
    cpuMs: (Number(match[2]) + Number(match[3])) * 1000,
  };
}

function exec(cmd: string, argv: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Exec> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** ~200 paths, ~300 MB: ten 12 MiB paths (multipart) and 190 smaller ones, each half random, half text. */
async function buildBenchClosure(): Promise<string[]> {
  const scripts: Record<string, string> = {};
  for (let i = 0; i < 200; i++) {
    const size = i % 20 === 0 ? 12 * MiB : ((i % 10) + 1) * 175 * 1024;
    const random = Math.floor(size / 2);
    scripts[`p${i}`] = [
      '/bin/mkdir -p $out/share',
      `/usr/bin/head -c ${random} /dev/urandom > $out/share/random.bin`,
      `/usr/bin/yes "path ${i}: some compressible text, repeated line after line for the benchmark" | /usr/bin/head -c ${size - random} > $out/share/text.txt`,
    ].join('\n');
  }
  const paths = await buildDerivations(scripts, { salt: uniqueSalt(), namePrefix: 'bench-' });
  return Object.values(paths);
}

interface PushRun {
  readonly ms: number;
  /** CPU of the push process (user + system). */
  readonly cpuMs: number | undefined;
  /** CPU the niks3 stand-in (this process) spent meanwhile. */
  readonly standInCpuMs: number;
  readonly maxRssMiB: number | undefined;
  readonly outputs: Record<string, string>;
  readonly headline: string;
}

/** Runs the push bundle in a child process (as a runner does) and measures its wall time and peak RSS. */
async function runPush(
  fake: FakeNiks3,
  paths: readonly string[],
  profile?: string,
  extraInputs: Record<string, string> = {},
  profileName = 'push',
): Promise<PushRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-push-'));
  try {
    const files = {
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      GITHUB_STATE: join(dir, 'state'),
    };
    for (const file of Object.values(files)) writeFileSync(file, '');
    const pathsFile = join(dir, 'paths');
    writeFileSync(pathsFile, paths.join('\n'));
    const rssFile = join(dir, 'rss');
    const preload = join(dir, 'rss.mjs');
    writeFileSync(
      preload,
      `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`,
    );
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      ...files,
      GITHUB_ACTIONS: 'true',
      RUNNER_TEMP: dir,
      'INPUT_SERVER-URL': fake.url,
      INPUT_AUTH: 'token',
      INPUT_TOKEN: fake.apiToken,
      INPUT_PATHS: paths.join('\n'),
      'INPUT_UPSTREAM-FILTER': 'false',
      'INPUT_MAX-CONCURRENT-UPLOADS': String(concurrency),
      'INPUT_COMPRESSION-LEVEL': '3',
      INPUT_VERIFY: 'true',
      NODE_OPTIONS: `--import=${preload}`,
    };
    for (const [name, value] of Object.entries(extraInputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    const bundle = join(ROOT, 'dist', 'push', 'index.js');
    const node = process.execPath;
    const nodeArgs = profile
      ? ['--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${profileName}.cpuprofile`]
      : [];
    let session: Session | undefined;
    if (profile) {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const cpuBefore = process.cpuUsage();
    const result = await timedExec(node, [...nodeArgs, bundle], { env });
    const cpuAfter = process.cpuUsage(cpuBefore);
    if (session) {
      const { profile: standIn } = await session.post('Profiler.stop');
      writeFileSync(join(profile as string, `${profileName}-stand-in.cpuprofile`), JSON.stringify(standIn));
      session.disconnect();
    }
    if (result.code !== 0)
      throw new Error(
        `push failed (exit ${result.code}):\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`,
      );
    const selfKb = existsSync(rssFile) ? readFileSync(rssFile, 'utf8') : undefined;
    const kb = Number(result.maxRssKb ?? selfKb ?? NaN);
    const outputs: Record<string, string> = {};
    const text = readFileSync(files.GITHUB_OUTPUT, 'utf8').split('\n');
    for (let i = 0; i < text.length; i++) {
      const heredoc = /^([^=<]+)<<(.+)$/.exec(text[i] ?? '');
      if (!heredoc) continue;
      const value: string[] = [];
      for (i++; i < text.length && text[i] !== heredoc[2]; i++) value.push(text[i] ?? '');
      outputs[heredoc[1] ?? ''] = value.join('\n');
    }
    const headline =
      result.stdout.split('\n').find((line) => /already cached, .* in [\d.]+ s\./.test(line)) ?? '';
    return {
      ms: result.ms,
      cpuMs: result.cpuMs,
      standInCpuMs: (cpuAfter.user + cpuAfter.system) / 1000,
      maxRssMiB: Number.isFinite(kb) ? kb / 1024 : undefined,
      outputs,
      headline,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Timing {
  readonly ms: number;
  readonly cpuMs: number | undefined;
}

async function limit(paths: readonly string[]): Promise<Timing> {
  const started = performance.now();
  let cpuMs: number | undefined = 0;
  await pool(paths, concurrency, async (path) => {
    const result = await timedExec('sh', [
      '-c',
      'nix-store --dump "$1" | zstd -3 -q -c > /dev/null',
      'sh',
      path,
    ]);
    if (result.code !== 0) throw new Error(`nix-store --dump | zstd failed for ${path}: ${result.stderr}`);
    cpuMs = cpuMs === undefined || result.cpuMs === undefined ? undefined : cpuMs + result.cpuMs;
  });
  return { ms: performance.now() - started, cpuMs };
}

async function nixCopy(paths: readonly string[]): Promise<Timing> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nix-copy-'));
  try {
    const result = await timedExec('nix', [
      '--extra-experimental-features',
      'nix-command',
      'copy',
      '--to',
      `file://${dir}?compression=zstd`,
      ...paths,
    ]);
    if (result.code !== 0) throw new Error(`nix copy failed: ${result.stderr}`);
    return { ms: result.ms, cpuMs: result.cpuMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The push bundle's start-up: from spawning it to its first request (to a listener that only
 * notes the time), next to a bare `node -e 0` measured the same way.
 */
async function startupToFirstRequest(path: string): Promise<{ bundleMs: number; nodeMs: number }> {
  const times: number[] = [];
  let started = 0;
  const server = createServer((socket) => {
    times.push(performance.now() - started);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'bench-start-'));
  try {
    const bundle: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < 5; i++) {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env['PATH'],
        GITHUB_OUTPUT: join(dir, 'o'),
        GITHUB_STEP_SUMMARY: join(dir, 's'),
        GITHUB_STATE: join(dir, 'st'),
        RUNNER_TEMP: dir,
        'INPUT_SERVER-URL': url,
        INPUT_AUTH: 'token',
        INPUT_TOKEN: 'bench-token-0123456789',
        INPUT_PATHS: path,
        'INPUT_CONNECT-TIMEOUT': '1',
      };
      times.length = 0;
      started = performance.now();
      await exec(process.execPath, [join(ROOT, 'dist', 'push', 'index.js')], { env });
      if (times[0] !== undefined) bundle.push(times[0]);
      started = performance.now();
      await exec(process.execPath, [
        '-e',
        `require('net').connect(${JSON.stringify((server.address() as AddressInfo).port)}, '127.0.0.1').on('error', () => {})`,
      ]);
      if (times[times.length - 1] !== undefined) bare.push(times[times.length - 1] as number);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    return { bundleMs: median(bundle), nodeMs: median(bare) };
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An upstream cache that accepts connections and never answers. */
async function silentUpstream(): Promise<{ url: string; close(): void }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const ratio = (a: number, b: number): string => (a / b).toFixed(2);

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'push', 'index.js')))
    throw new Error('dist/push/index.js is missing: run `npm run bundle -- push` first');
  log(`building ~200 paths / ~300 MB (mixed random and text) with Nix…`);
  const paths = await buildBenchClosure();
  const size = await exec('nix', [
    '--extra-experimental-features',
    'nix-command',
    'path-info',
    '--json',
    ...paths,
  ]);
  const narBytes = (JSON.parse(size.stdout) as Array<{ narSize: number }>).reduce(
    (sum, info) => sum + info.narSize,
    0,
  );
  log(`${paths.length} paths, ${(narBytes / MiB).toFixed(0)} MiB of NAR; concurrency ${concurrency}`);

  const fake = await startFakeNiks3();
  try {
    log('limit: nix-store --dump | zstd -3 > /dev/null …');
    const limited = await limit(paths);
    log('push …');
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    const push = await runPush(fake, paths, profileDir);
    log(`  ${push.headline}`);
    log('re-push …');
    const repush = await runPush(fake, paths, profileDir, {}, 're-push');
    log('re-push with an upstream cache that never answers …');
    const silent = await silentUpstream();
    const repushSilent = await runPush(fake, paths, undefined, {
      'upstream-filter': 'true',
      'upstream-caches': silent.url,
      'upstream-keys': 'cache.nixos.org-1',
    });
    silent.close();
    log('bundle start-up …');
    const startup = await startupToFirstRequest(paths[0] as string);
    log('nix copy --to file://…?compression=zstd …');
    const copied = await nixCopy(paths);

    let huge: PushRun | undefined;
    if (withHugePath) {
      log('building a 1 GiB path…');
      const big = await buildRandomPath(1024 * MiB);
      log('push of the 1 GiB path …');
      huge = await runPush(fake, [big]);
      log(`  ${huge.headline}`);
    }

    const mbps = (narBytes / MiB / (push.ms / 1000)).toFixed(0);
    const cpu = (ms: number | undefined): string => (ms === undefined ? 'n/a' : fmt(ms));
    const cpuRatio = (a: number | undefined, b: number | undefined): string =>
      a === undefined || b === undefined ? 'n/a' : ratio(a, b);
    const standInShare = (run: PushRun): string =>
      `stand-in CPU ${fmt(run.standInCpuMs)} (${((run.standInCpuMs / (run.standInCpuMs + (run.cpuMs ?? 0))) * 100).toFixed(0)} % of push + stand-in)`;
    const lines = [
      '',
      `push benchmark: ${paths.length} paths, ${(narBytes / MiB).toFixed(0)} MiB of NAR, concurrency ${concurrency}, ${(await exec('nproc', [])).stdout.trim()} cores`,
      `                                    wall        CPU`,
      `  push                         ${fmt(push.ms).padStart(9)}  ${cpu(push.cpuMs).padStart(9)}  (${mbps} MiB/s of NAR, ${push.outputs['pushed'] ?? '?'} paths, ${((Number(push.outputs['uploaded-bytes']) || 0) / MiB).toFixed(0)} MiB stored)`,
      `    niks3 stand-in, same cores            ${cpu(push.standInCpuMs).padStart(9)}  (${standInShare(push)})`,
      `  limit (dump | zstd -3)       ${fmt(limited.ms).padStart(9)}  ${cpu(limited.cpuMs).padStart(9)}  push / limit    = ${ratio(push.ms, limited.ms)} wall, ${cpuRatio(push.cpuMs, limited.cpuMs)} CPU   (aim ≤ 1.3)`,
      `  nix copy --to file:// zstd   ${fmt(copied.ms).padStart(9)}  ${cpu(copied.cpuMs).padStart(9)}  push / nix copy = ${ratio(push.ms, copied.ms)} wall, ${cpuRatio(push.cpuMs, copied.cpuMs)} CPU   (aim < 1)`,
      `  push CPU / nix copy CPU      ${cpuRatio(push.cpuMs, copied.cpuMs).padStart(9)}  (aim ≤ 1.5)`,
      `  re-push (all cached)         ${fmt(repush.ms).padStart(9)}  ${cpu(repush.cpuMs).padStart(9)}  (${repush.outputs['skipped-cached'] ?? '?'} cached, ${repush.outputs['pushed'] ?? '?'} pushed; ${standInShare(repush)})`,
      `  re-push CPU                  ${cpu(repush.cpuMs).padStart(9)}  (aim ≤ 0.35 s CPU and ≤ 0.5 s wall, whole bundle run)`,
      `  re-push, silent upstream     ${fmt(repushSilent.ms).padStart(9)}  ${cpu(repushSilent.cpuMs).padStart(9)}  / re-push = ${ratio(repushSilent.ms, repush.ms)} wall (an upstream that never answers; cached paths are not asked)`,
      `  bundle start-up              ${`${startup.bundleMs.toFixed(0)} ms`.padStart(9)}  to the first request; node -e 0 to a connect: ${startup.nodeMs.toFixed(0)} ms; ratio ${ratio(startup.bundleMs, startup.nodeMs)} (aim < 150 ms)`,
      `  peak RSS, push               ${push.maxRssMiB === undefined ? 'n/a' : `${push.maxRssMiB.toFixed(0)} MiB`}   (aim ≤ 150 MiB)`,
      ...(huge
        ? [
            `  peak RSS, push of 1 GiB path ${huge.maxRssMiB === undefined ? 'n/a' : `${huge.maxRssMiB.toFixed(0)} MiB`}   (aim ≤ 150 MiB; took ${fmt(huge.ms)} wall, ${cpu(huge.cpuMs)} CPU, ${(1024 / (huge.ms / 1000)).toFixed(0)} MiB/s of NAR; ${standInShare(huge)})`,
          ]
        : []),
      ...(profileDir ? [`  CPU profiles (push, stand-in) in ${profileDir}`] : []),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    await fake.close();
  }
}

await main();
