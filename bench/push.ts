/**
 * Push benchmark (`npm run bench`; not a test). Builds ~200 store paths / ~300 MB of mixed
 * compressible and random data with real Nix, starts the fake niks3, and prints, measured in the
 * same run:
 *
 *   - push time / the limit: `nix-store --dump | zstd -3` over the same paths with the same
 *     parallelism, output discarded (what serialising and compressing alone cost);
 *   - push time / `nix copy --to file://…?compression=zstd` (Nix's own uploader, to local files);
 *   - the time of a second push of the same closure (everything cached);
 *   - the peak RSS of the push process (GNU time when present, else the process's own maxRSS),
 *     also for a push of one 1 GiB path (skip with --no-1g).
 *
 * The push runs as a GitHub runner runs it: the dist bundle (`npm run bundle -- push` first) in a
 * child process, inputs in INPUT_* variables. Flags: --concurrency N (default 30), --no-1g.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeNiks3, type FakeNiks3 } from '../test/fakes/niks3/index.js';
import { buildDerivations, buildRandomPath, uniqueSalt } from '../test/helpers/nix-fixtures.js';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const args = process.argv.slice(2);
const concurrency = Number(args[args.indexOf('--concurrency') + 1] ?? '') || 30;
const withHugePath = !args.includes('--no-1g');
const MiB = 1024 * 1024;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

interface Exec {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
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
  readonly maxRssMiB: number | undefined;
  readonly outputs: Record<string, string>;
  readonly headline: string;
}

/** Runs the push bundle in a child process (as a runner does) and measures its wall time and peak RSS. */
async function runPush(fake: FakeNiks3, paths: readonly string[]): Promise<PushRun> {
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
    const bundle = join(ROOT, 'dist', 'push', 'index.js');
    const node = process.execPath;
    const gnuTime = existsSync('/usr/bin/time');
    const result = gnuTime
      ? await exec('/usr/bin/time', ['-f', 'BENCH_MAXRSS_KB=%M', node, bundle], { env })
      : await exec(node, [bundle], { env });
    if (result.code !== 0)
      throw new Error(
        `push failed (exit ${result.code}):\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`,
      );
    const timeKb = /BENCH_MAXRSS_KB=(\d+)/.exec(result.stderr)?.[1];
    const selfKb = existsSync(rssFile) ? readFileSync(rssFile, 'utf8') : undefined;
    const kb = Number(timeKb ?? selfKb ?? NaN);
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
    return { ms: result.ms, maxRssMiB: Number.isFinite(kb) ? kb / 1024 : undefined, outputs, headline };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function limit(paths: readonly string[]): Promise<number> {
  const started = performance.now();
  await pool(paths, concurrency, async (path) => {
    const result = await exec('sh', ['-c', 'nix-store --dump "$1" | zstd -3 -q -c > /dev/null', 'sh', path]);
    if (result.code !== 0) throw new Error(`nix-store --dump | zstd failed for ${path}: ${result.stderr}`);
  });
  return performance.now() - started;
}

async function nixCopy(paths: readonly string[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nix-copy-'));
  try {
    const result = await exec('nix', [
      '--extra-experimental-features',
      'nix-command',
      'copy',
      '--to',
      `file://${dir}?compression=zstd`,
      ...paths,
    ]);
    if (result.code !== 0) throw new Error(`nix copy failed: ${result.stderr}`);
    return result.ms;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
    const limitMs = await limit(paths);
    log('push …');
    const push = await runPush(fake, paths);
    log(`  ${push.headline}`);
    log('re-push …');
    const repush = await runPush(fake, paths);
    log('nix copy --to file://…?compression=zstd …');
    const nixCopyMs = await nixCopy(paths);

    let huge: PushRun | undefined;
    if (withHugePath) {
      log('building a 1 GiB path…');
      const big = await buildRandomPath(1024 * MiB);
      log('push of the 1 GiB path …');
      huge = await runPush(fake, [big]);
      log(`  ${huge.headline}`);
    }

    const mbps = (narBytes / MiB / (push.ms / 1000)).toFixed(0);
    const lines = [
      '',
      `push benchmark: ${paths.length} paths, ${(narBytes / MiB).toFixed(0)} MiB of NAR, concurrency ${concurrency}, ${(await exec('nproc', [])).stdout.trim()} cores`,
      `  push                         ${fmt(push.ms).padStart(9)}  (${mbps} MiB/s of NAR, ${push.outputs['pushed'] ?? '?'} paths, ${((Number(push.outputs['uploaded-bytes']) || 0) / MiB).toFixed(0)} MiB stored)`,
      `  limit (dump | zstd -3)       ${fmt(limitMs).padStart(9)}  push / limit    = ${ratio(push.ms, limitMs)}   (aim ≤ 1.3)`,
      `  nix copy --to file:// zstd   ${fmt(nixCopyMs).padStart(9)}  push / nix copy = ${ratio(push.ms, nixCopyMs)}   (aim < 1)`,
      `  re-push (all cached)         ${fmt(repush.ms).padStart(9)}  (${repush.outputs['skipped-cached'] ?? '?'} cached, ${repush.outputs['pushed'] ?? '?'} pushed)`,
      `  peak RSS, push               ${push.maxRssMiB === undefined ? 'n/a' : `${push.maxRssMiB.toFixed(0)} MiB`}`,
      ...(huge
        ? [
            `  peak RSS, push of 1 GiB path ${huge.maxRssMiB === undefined ? 'n/a' : `${huge.maxRssMiB.toFixed(0)} MiB`}   (aim < 200 MiB; took ${fmt(huge.ms)})`,
          ]
        : []),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    await fake.close();
  }
}

await main();
