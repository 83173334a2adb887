/**
 * `npm start`: the whole life of a cache on the embedded local stack, no account needed.
 *
 *   up (provision R2 -> deploy niks3 on Fly) -> build a fresh closure with Nix -> push it ->
 *   substitute it into an empty store from the public URL, signatures checked -> status -> gc -> down
 *
 * Each step is the real `nix-cache` command (the CLI's main(), in this process) against the local
 * stand-ins of Cloudflare, Fly and niks3 (demo/local-stack.ts). One line per step says what
 * happened; the last line starts with `OK` (exit 0) or `FAILED:` (exit 1). Everything started is
 * stopped and every temporary file removed, whatever happens. `--verbose` prints the commands'
 * own progress too.
 */
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { buildDerivations, copyFromCache, uniqueSalt } from '../test/helpers/nix-fixtures.js';
import { CliSession } from './cli-session.js';
import { startLocalStack, type LocalStack } from './local-stack.js';

const started = Date.now();
const verbose = process.argv.includes('--verbose');

function say(text: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[${seconds} s] ${text}\n`);
}

function bytes(n: string | number | undefined): string {
  const value = Number(n ?? 0);
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

/** A small fresh closure: an app that references a library (two store paths nobody pushed before). */
async function buildClosure(): Promise<{ root: string; paths: string[] }> {
  const built = await buildDerivations(
    {
      greeting:
        'echo "building greeting"; /bin/mkdir -p $out/share; echo "hello from the nix-cache demo" > $out/share/greeting.txt',
      app: [
        'echo "building app"',
        '/bin/mkdir -p $out/bin',
        "printf '#!/bin/sh\\n/bin/cat %s/share/greeting.txt\\n' ${greeting} > $out/bin/demo-app",
        '/bin/chmod 0555 $out/bin/demo-app',
      ].join('\n'),
    },
    { salt: uniqueSalt(), namePrefix: 'nix-cache-demo-' },
  );
  const root = built['app'] ?? '';
  const paths = execFileSync('nix-store', ['--query', '--requisites', root], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  return { root, paths };
}

async function removeStore(dir: string): Promise<void> {
  // Nix makes store paths read-only.
  try {
    execFileSync('chmod', ['-R', 'u+w', dir]);
  } catch {
    // nothing to make writable
  }
  await rm(dir, { recursive: true, force: true });
}

async function demo(stack: LocalStack, cli: CliSession, cleanups: Array<() => Promise<void>>): Promise<void> {
  const up = await cli.run(['up', '--check-database', 'false']);
  const provision = up.json.steps['provision'] ?? {};
  const deploy = up.json.steps['deploy'] ?? {};
  say(
    `up: provision made R2 bucket ${provision['bucket-name']} with custom domain ${new URL(provision['cache-url'] ?? 'https://?').host} ` +
      `(${provision['custom-domain-status']}), S3 keys checked; deploy made Fly app ${stack.appName}, machine ${deploy['machine-id']} ` +
      `running ${deploy['image']}, signing key ${deploy['public-key']}`,
  );
  if (deploy['public-key'] !== stack.publicKey)
    throw new Error(`deploy derived ${deploy['public-key']}, the cache signs with ${stack.publicKey}`);

  const closure = await buildClosure();
  say(`built a fresh closure with Nix: ${closure.root} (${closure.paths.length} store paths)`);

  const push = await cli.run(['push', '--paths', closure.root, '--upstream-filter', 'false']);
  const pushed = push.json.outputs;
  say(
    `push: ${pushed['pushed']} paths uploaded (${bytes(pushed['nar-bytes'])} of NAR; ${bytes(pushed['uploaded-bytes'])} sent with listings and build logs), ` +
      `each narinfo signed by the server and verified at ${pushed['cache-url']}`,
  );

  const copy = await copyFromCache(stack.niks3.publicUrl, closure.root, {
    trustedPublicKeys: [stack.publicKey],
  });
  cleanups.push(() => removeStore(copy.storeRoot));
  if (copy.code !== 0) throw new Error(`nix copy from the cache failed:\n${copy.stderr.trim()}`);
  const greeting = execFileSync(
    '/bin/cat',
    [`${copy.storeRoot}${closure.paths.find((p) => p.endsWith('greeting')) ?? ''}/share/greeting.txt`],
    {
      encoding: 'utf8',
    },
  ).trim();
  say(
    `substituted it into an empty store from ${stack.niks3.publicUrl} with require-sigs on, trusting only ${stack.publicKey}: "${greeting}"`,
  );

  // Locally the public reads come from the niks3 stand-in at 127.0.0.1; the R2 report checks the bucket
  // and the custom domain the stack file names (cache.example.test), which `up` attached.
  const status = await cli.run(['status']);
  const checks = (
    JSON.parse(status.json.outputs['checks'] ?? '[]') as Array<{
      name: string;
      status: string;
      detail: string;
    }>
  ).filter((c) => c.status !== 'skip' && c.status !== 'skipped');
  const notOk = checks.filter((c) => c.status !== 'ok');
  if (notOk.length > 0)
    throw new Error(`status: ${notOk.map((c) => `${c.name} ${c.status}: ${c.detail}`).join('; ')}`);
  if (!checks.some((c) => c.name === 'R2 custom domain'))
    throw new Error(`status did not check the R2 custom domain ${stack.cacheDomain}`);
  say(
    `status: ${status.json.outputs['healthy'] === 'true' ? 'healthy' : 'NOT healthy'}, ${checks.filter((c) => c.status === 'ok').length} of ${checks.length} checks ok ` +
      `(server, public reads, signing key, usage: ${status.json.outputs['objects']} objects, R2 bucket and custom domain ${stack.cacheDomain}, Fly app and machine), ` +
      `about $${status.json.outputs['monthly-cost']}/month`,
  );

  // Let the server's clock run 31 days ahead, so the closure is older than gc's --older-than 720h.
  stack.niks3.advance(31 * 24 * 3600 * 1000);
  const gc = await cli.run(['gc']);
  const g = gc.json.outputs;
  say(
    `gc (31 days later on the server's clock): ${g['state']}, ${g['old-closures-deleted']} old closure(s) dropped, ` +
      `${g['objects-marked-for-deletion']} object(s) marked for deletion after the grace period`,
  );

  const down = await cli.run(['down', '--confirm', stack.appName, '--delete-data']);
  const bucketGone =
    stack.cloudflare.state.bucket(
      stack.cloudflare.state.accounts.keys().next().value ?? '',
      'default',
      stack.bucketName,
    ) === undefined;
  const appGone = stack.fly.app(stack.appName) === undefined;
  say(
    `down: Fly app ${stack.appName} ${appGone ? 'deleted' : 'STILL THERE'}, custom domain removed, bucket ${stack.bucketName} ` +
      `${bucketGone ? 'emptied and deleted' : 'STILL THERE'} (${(JSON.parse(down.json.steps['provision']?.['plan'] ?? '[]') as unknown[]).length} R2 change(s))`,
  );
  if (!appGone || !bucketGone) throw new Error('down left resources behind');
}

async function runDemo(): Promise<number> {
  process.stdout.write(
    'nix-cache demo: the whole life of a cache on the local stack (no account, nothing leaves 127.0.0.1)\n',
  );
  const cleanups: Array<() => Promise<void>> = [];
  let stack: LocalStack | undefined;
  let cli: CliSession | undefined;
  let failure: unknown;
  try {
    stack = await startLocalStack();
    cleanups.push(() => stack?.close() ?? Promise.resolve());
    say(
      `started the local stand-ins: Cloudflare API ${stack.cloudflare.url}, Fly Machines API ${stack.fly.apiUrl}, ` +
        `niks3 ${stack.niks3.url} (public reads ${stack.niks3.publicUrl})`,
    );
    cli = new CliSession(stack.stackFile, stack.env);
    await demo(stack, cli, cleanups);
  } catch (error) {
    failure = error;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
  if (verbose || failure) {
    if (cli && verbose) for (const entry of cli.transcript) process.stderr.write(`${entry}\n`);
  }
  if (failure) {
    const message = failure instanceof Error ? failure.message : JSON.stringify(failure);
    const [first = '', ...rest] = message.split('\n');
    if (rest.length > 0) process.stderr.write(`${rest.join('\n')}\n`);
    process.stdout.write(
      `FAILED: ${first} (everything the demo started is stopped again; run \`npm start -- --verbose\` for the commands' output)\n`,
    );
    return 1;
  }
  process.stdout.write(
    `OK: up, push, substitute with signatures checked, status, gc and down all worked in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      'every stand-in is stopped and every temporary file removed.\n',
  );
  return 0;
}

process.exitCode = await runDemo();
