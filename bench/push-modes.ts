/**
 * Post-step time by push mode (not a test): for a job that builds 50 fresh store paths, how long the
 * push adds after the build, in watch mode (post-build hook + background uploader; the post step
 * only drains), scan mode (the post step pushes everything that appeared) and explicit mode (a push
 * step with the 50 paths after the build; its post step does nothing).
 *
 * Runs the dist bundles as a runner does (`npm run bundle` first) against the niks3 stand-in, with
 * real Nix single-user as root. Each derivation writes `--size-kib` (256) KiB of random data and
 * takes ~0.2 s more to build, so the uploader has something to overlap with. The store is the
 * machine's: paths other processes add meanwhile are pushed too in scan mode (and by watch mode's
 * post step, which pushes what the hook did not see). Usage:
 *   node --import ./scripts/register-ts.mjs bench/push-modes.ts [--paths 50] [--rounds 1] [--size-kib 256]
 */
import { startFakeNiks3 } from '../test/fakes/niks3/index.js';
import { RunnerJob } from '../test/helpers/run-job.js';
import { pushFakeInputs } from '../test/push/push-test-support.js';
import { nixBuild, nixSandbox, writeDerivations } from '../test/push/watch-support.js';

const args = process.argv.slice(2);
const count = Number(args[args.indexOf('--paths') + 1] ?? '') || 50;
const rounds = Number(args[args.indexOf('--rounds') + 1] ?? '') || 1;
const sizeKiB = Number(args[args.indexOf('--size-kib') + 1] ?? '') || 256;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

const fake = await startFakeNiks3();
const nix = nixSandbox();
type Mode = 'watch' | 'scan' | 'explicit';
const results: Record<Mode, number[]> = { watch: [], scan: [], explicit: [] };
const builds: Record<Mode, number[]> = { watch: [], scan: [], explicit: [] };
try {
  for (let round = 0; round < rounds; round++) {
    for (const mode of ['watch', 'scan', 'explicit'] as const) {
      const scripts: Record<string, string> = {};
      for (let i = 0; i < count; i++)
        scripts[`p${i}`] = `/usr/bin/head -c ${sizeKiB * 1024} /dev/urandom > $out; /bin/sleep 0.2`;
      const drvs = writeDerivations(nix.dir, scripts, { prefix: `bench-${mode}-`, env: nix.env });
      const inputs = pushFakeInputs(fake, mode === 'scan' ? { mode: 'scan' } : {});
      const job = new RunnerJob('push', { inputs, env: nix.env, secrets: [fake.apiToken] });
      try {
        if (mode !== 'explicit') {
          const main = await job.main();
          if (main.code !== 0) throw new Error(`${mode} main failed:\n${main.stdout}`);
        }
        const started = Date.now();
        const build = await nixBuild(drvs, job.stepEnv(), ['--max-jobs', '1']);
        builds[mode].push(Date.now() - started);
        if (build.code !== 0) throw new Error(`build failed:\n${build.stderr}`);
        let ms: number;
        if (mode === 'explicit') {
          const push = new RunnerJob('push', {
            inputs: { ...inputs, paths: Object.values(drvs.paths).join('\n') },
            env: nix.env,
            secrets: [fake.apiToken],
          });
          try {
            const main = await push.main();
            if (main.code !== 0) throw new Error(`explicit push failed:\n${main.stdout}`);
            if (Number(main.outputs['pushed']) < count)
              throw new Error(`explicit pushed ${main.outputs['pushed']}`);
            const post = await push.post();
            ms = main.durationMs + post.durationMs;
          } finally {
            push.close();
          }
        } else {
          const post = await job.post();
          if (post.code !== 0) throw new Error(`${mode} post failed:\n${post.stdout}`);
          const pushed = Number(post.outputs['pushed']);
          if (pushed < count) throw new Error(`${mode} pushed ${pushed} of ${count}`);
          ms = post.durationMs;
          log(
            `${mode}: pushed ${post.outputs['pushed-during-build']} during the build, ${post.outputs['pushed-in-post']} in post`,
          );
        }
        results[mode].push(ms);
        log(`${mode} round ${round + 1}: build ${builds[mode].at(-1)} ms, push after the build ${ms} ms`);
      } finally {
        job.close();
      }
    }
  }
} finally {
  await fake.close();
  nix.close();
}
const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
process.stdout.write(
  `push after a build of ${count} fresh paths of ${sizeKiB} KiB each (median of ${rounds}):\n`,
);
for (const mode of ['watch', 'scan', 'explicit'] as const) {
  process.stdout.write(
    `  ${mode.padEnd(8)} post step ${(median(results[mode]) / 1000).toFixed(2)} s   (build ${(median(builds[mode]) / 1000).toFixed(2)} s)\n`,
  );
}
