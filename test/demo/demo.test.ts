/**
 * `npm start`: the demo runs the whole lifecycle on the embedded local stack and ends with the OK
 * line, in under 60 s, leaving nothing listening and no temporary file behind.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/run-action.js';

const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const GUARD = join(ROOT, 'test', 'helpers', 'loopback-guard.mjs');

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

async function runDemo(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const started = Date.now();
  const child = spawn(NODE, ['--import', './scripts/register-ts.mjs', 'demo/run.ts'], {
    cwd: ROOT,
    // Only loopback network.
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '',
      NODE_OPTIONS: `--import=${GUARD}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, seconds: (Date.now() - started) / 1000 };
}

function standInPorts(stdout: string): number[] {
  const line = stdout.split('\n').find((l) => l.includes('started the local stand-ins')) ?? '';
  return [...line.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
}

describe('npm start (the demo)', () => {
  it('runs up, push, substitution, status, gc and down, prints OK and leaves nothing behind', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'nix-cache-demo-test-'));
    try {
      // Its own TMPDIR, so we can see that it removed every temporary file.
      const { code, stdout, stderr, seconds } = await runDemo({ TMPDIR: temp });
      const lines = stdout.trim().split('\n');
      if (code !== 0) throw new Error(`demo exited with ${code}:\n${stdout}\n${stderr}`);
      expect(lines.at(-1)).toMatch(/^OK: /);
      expect(stdout).not.toContain('FAILED');
      for (const step of [
        'started the local stand-ins',
        'up: ',
        'built a fresh closure',
        'push: ',
        'substituted it into an empty store',
        'status: healthy',
        'gc ',
        'down: ',
      ]) {
        expect(stdout).toContain(step);
      }
      expect(stdout).toMatch(
        /down: Fly app \S+ deleted, custom domain removed, bucket \S+ emptied and deleted/,
      );
      expect(seconds).toBeLessThan(60);

      // Every stand-in the demo started is closed: its ports refuse connections.
      const ports = [
        ...(lines.find((l) => l.includes('started the local stand-ins')) ?? '').matchAll(
          /127\.0\.0\.1:(\d+)/g,
        ),
      ].map((m) => Number(m[1]));
      expect(ports.length).toBeGreaterThanOrEqual(4);
      for (const port of ports) expect(await refusesConnections(port)).toBe(true);
      // And every temporary directory it made is gone.
      expect(readdirSync(temp)).toEqual([]);
    } finally {
      rmSync(temp, { recursive: true, force: true });
    }
  }, 120_000);

  it('ends with a FAILED line and exit 1 when a step fails, and still stops everything', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'nix-cache-demo-test-'));
    const bin = mkdtempSync(join(tmpdir(), 'nix-cache-demo-bin-'));
    try {
      // A `nix` that fails: the build step fails after `up`.
      writeFileSync(
        join(bin, 'nix'),
        '#!/bin/sh\n/bin/cat >/dev/null\necho "nix: simulated failure" >&2\nexit 1\n',
      );
      chmodSync(join(bin, 'nix'), 0o755);
      const run = await runDemo({ TMPDIR: temp, PATH: `${bin}:${process.env['PATH'] ?? ''}` });
      expect(run.code).toBe(1);
      const lines = run.stdout.trim().split('\n');
      if (!lines.at(-1)?.startsWith('FAILED'))
        throw new Error(`no FAILED line:\n${run.stdout}\n${run.stderr}`);
      expect(lines.at(-1)).toMatch(/^FAILED: nix eval of fixtures failed: nix: simulated failure/);
      expect(run.stdout).toContain('up: ');
      expect(run.stdout).not.toMatch(/^OK/m);
      for (const port of standInPorts(run.stdout)) expect(await refusesConnections(port)).toBe(true);
      expect(readdirSync(temp)).toEqual([]);
    } finally {
      rmSync(temp, { recursive: true, force: true });
      rmSync(bin, { recursive: true, force: true });
    }
  }, 120_000);
});
