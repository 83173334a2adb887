/**
 * The workflow lint (scripts/lint-workflows.ts) catches each planted violation, and the real
 * workflows pass it and have the triggers, permissions and inputs their issue asks for.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ACTION_SPECS } from '../../src/actions/specs.js';
import {
  actionlint,
  checkActionMetadata,
  checkWorkflow,
  lintRepository,
  usesProblem,
  type Finding,
} from '../../scripts/lint-workflows.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const WORKFLOWS = join(ROOT, '.github', 'workflows');
const CHECKOUT = 'actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2';

type Json = Record<string, unknown>;

function workflow(name: string): Json {
  return parse(readFileSync(join(WORKFLOWS, name), 'utf8')) as Json;
}

/** The value at a path of keys (numbers index lists), or undefined. */
function dig(value: unknown, ...path: Array<string | number>): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function obj(value: unknown): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {};
}

function list(value: unknown): Json[] {
  return Array.isArray(value) ? (value as Json[]) : [];
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function rules(findings: readonly Finding[]): string[] {
  return findings.map((finding) => finding.rule);
}

/** A clean workflow to plant one violation into. */
function base(job: string, on = 'push'): string {
  return `name: planted\non: ${on}\npermissions: {}\njobs:\n${job}`;
}

const GOOD_JOB = `  build:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
    steps:
      - uses: ${CHECKOUT}
      - env:
          TITLE: \${{ github.event.head_commit.message }}
        run: echo "$TITLE"
`;

describe('workflow lint: each check catches its planted violation', () => {
  it('accepts a clean workflow', async () => {
    expect(checkWorkflow(base(GOOD_JOB), 'good.yml')).toEqual([]);
    expect(await actionlint(base(GOOD_JOB), 'good.yml')).toEqual([]);
  });

  it('script injection: any ${{ }} in run:', () => {
    for (const expr of [
      'inputs.name',
      'github.event.issue.title',
      'github.head_ref',
      'steps.x.outputs.y',
      'runner.temp',
    ]) {
      const planted = base(GOOD_JOB.replace('run: echo "$TITLE"', `run: echo "\${{ ${expr} }}"`));
      const findings = checkWorkflow(planted, 'bad.yml');
      expect(rules(findings)).toEqual(['script-injection']);
      expect(findings[0]?.line).toBe(13);
    }
    const block = base(
      GOOD_JOB.replace('run: echo "$TITLE"', 'run: |\n          set -e\n          echo ${{ inputs.x }}'),
    );
    expect(rules(checkWorkflow(block, 'bad.yml'))).toEqual(['script-injection']);
  });

  it('unpinned third-party actions, and pins without a version comment', () => {
    for (const uses of [
      'actions/checkout@v4',
      'actions/checkout@main',
      'actions/checkout@11bd719',
      'docker://alpine:3',
    ]) {
      expect(rules(checkWorkflow(base(GOOD_JOB.replace(CHECKOUT, uses)), 'bad.yml'))).toEqual([
        'unpinned-action',
      ]);
    }
    const noComment = base(
      GOOD_JOB.replace(CHECKOUT, 'actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683'),
    );
    expect(checkWorkflow(noComment, 'bad.yml')[0]?.message).toMatch(/# vX/);
    expect(usesProblem('./actions/push')).toBeUndefined();
    expect(usesProblem('OWNER/nix-cache/actions/push@v1')).toBeUndefined();
    expect(usesProblem('OWNER/nix-cache/.github/workflows/push.yml@v1')).toBeUndefined();
    expect(usesProblem('evil/nix-cache/actions/push@v1')).toMatch(/not pinned/);
    expect(usesProblem('OWNER/nix-cache/actions/push@main')).toMatch(/not pinned/);
    expect(usesProblem(`docker://alpine@sha256:${'a'.repeat(64)}`)).toBeUndefined();
  });

  it('permissions missing on a job', () => {
    const planted = base(GOOD_JOB.replace('    permissions:\n      contents: read\n', ''));
    expect(rules(checkWorkflow(planted, 'bad.yml'))).toEqual(['job-permissions']);
  });

  it('pull_request_target in every trigger form', () => {
    for (const on of [
      'pull_request_target',
      '[push, pull_request_target]',
      '\n  pull_request_target:\n    types: [opened]',
    ]) {
      expect(rules(checkWorkflow(base(GOOD_JOB, on), 'bad.yml'))).toEqual(['pull-request-target']);
    }
  });

  it('secrets: inherit, untyped and local actions in a reusable workflow', () => {
    const caller = base(
      `  call:\n    permissions:\n      contents: read\n    uses: OWNER/nix-cache/.github/workflows/push.yml@v1\n    secrets: inherit\n`,
    );
    expect(rules(checkWorkflow(caller, 'bad.yml'))).toEqual(['secrets-inherit']);
    const untyped = base(GOOD_JOB, '\n  workflow_call:\n    inputs:\n      x:\n        required: true');
    expect(rules(checkWorkflow(untyped, 'bad.yml'))).toEqual(['untyped-input']);
    const local = base(
      GOOD_JOB.replace(CHECKOUT, './actions/push'),
      '\n  workflow_call:\n    inputs:\n      x:\n        type: string',
    );
    expect(rules(checkWorkflow(local, 'bad.yml'))).toEqual(['reusable-local-action']);
    expect(checkWorkflow(base(GOOD_JOB.replace(CHECKOUT, './actions/push')), 'ok.yml')).toEqual([]);
  });

  it('composite action steps get the same checks', () => {
    const action = `name: x\ndescription: x\nruns:\n  using: composite\n  steps:\n    - run: echo "\${{ inputs.name }}"\n      shell: bash\n    - uses: actions/cache@v4\n`;
    expect(rules(checkActionMetadata(action, 'action.yml'))).toEqual(['script-injection', 'unpinned-action']);
    expect(
      checkActionMetadata('name: x\ndescription: x\nruns:\n  using: node24\n  main: x.js\n', 'action.yml'),
    ).toEqual([]);
  });

  it('actionlint finds what it finds (offline)', async () => {
    const planted = base(GOOD_JOB.replace('runs-on: ubuntu-24.04', 'runs-on: ubuntu-24.04\n    needs: nope'));
    const findings = await actionlint(planted, 'bad.yml');
    expect(findings.map((finding) => finding.rule)).toContain('actionlint:job-needs');
  });

  it('broken YAML is a finding, not a crash', () => {
    expect(rules(checkWorkflow('on: [push\njobs: {', 'bad.yml'))).toContain('yaml');
  });
});

describe('the real workflows', () => {
  const names = readdirSync(WORKFLOWS).filter((name) => name.endsWith('.yml'));
  const jobs = (name: string): Array<[string, Json]> =>
    Object.entries(obj(workflow(name)['jobs'])).map(([job, value]) => [job, obj(value)]);

  it('pass actionlint and every check of the lint, with the action metadata', async () => {
    const report = await lintRepository(ROOT, ['OWNER']);
    expect(report.findings).toEqual([]);
    expect(report.workflows).toEqual(names.map((name) => `.github/workflows/${name}`).sort());
    expect(names).toEqual(
      expect.arrayContaining(['ci.yml', 'check-dist.yml', 'up.yml', 'down.yml', 'gc.yml', 'push.yml']),
    );
  });

  it('have the triggers the issue asks for', () => {
    const triggers = (name: string): string[] => Object.keys(obj(workflow(name)['on'])).sort();
    expect(triggers('ci.yml')).toEqual(expect.arrayContaining(['push', 'pull_request']));
    expect(triggers('check-dist.yml')).toEqual(expect.arrayContaining(['push', 'pull_request']));
    expect(triggers('up.yml')).toEqual(['workflow_dispatch']);
    expect(triggers('down.yml')).toEqual(['workflow_dispatch']);
    expect(triggers('gc.yml')).toEqual(['schedule', 'workflow_dispatch']);
    expect(triggers('push.yml')).toEqual(['workflow_call']);
    for (const name of names) expect(triggers(name)).not.toContain('pull_request_target');
  });

  it('give every job least privilege: id-token write only where OIDC is used', () => {
    const oidcJobs: string[] = [];
    for (const name of names) {
      expect(workflow(name)['permissions']).toEqual({});
      for (const [jobName, job] of jobs(name)) {
        expect(job['permissions']).toBeDefined();
        const permissions = obj(job['permissions']);
        for (const [scope, level] of Object.entries(permissions)) {
          if (level !== 'write') continue;
          expect(['gc.yml:id-token', 'push.yml:id-token', 'release.yml:contents']).toContain(
            `${name}:${scope}`,
          );
        }
        const usesOidc = list(job['steps']).some(
          (step) =>
            /actions\/(gc|push)@/.test(text(step['uses'])) &&
            /oidc|\$\{\{/.test(text(dig(step, 'with', 'auth')) || 'oidc'),
        );
        if (permissions['id-token'] === 'write') oidcJobs.push(`${name}:${jobName}`);
        expect({ job: `${name}:${jobName}`, idToken: permissions['id-token'] === 'write' }).toEqual({
          job: `${name}:${jobName}`,
          idToken: usesOidc,
        });
      }
    }
    expect(oidcJobs.sort()).toEqual(['gc.yml:gc', 'push.yml:push']);
  });

  it('down needs the app name typed in and runs in a protected environment', () => {
    const down = workflow('down.yml');
    expect(dig(down, 'on', 'workflow_dispatch', 'inputs', 'confirm')).toMatchObject({
      required: true,
      type: 'string',
    });
    expect(dig(down, 'on', 'workflow_dispatch', 'inputs', 'delete-data')).toMatchObject({
      type: 'boolean',
      default: false,
    });
    expect(dig(down, 'jobs', 'down', 'environment')).toBeTruthy();
    const steps = list(dig(down, 'jobs', 'down', 'steps'));
    const order = steps.map(
      (step) => `${(text(step['uses']) || 'run').replace(/@.*/, '')}:${text(dig(step, 'with', 'mode'))}`,
    );
    expect(order).toEqual([
      'run:',
      'OWNER/nix-cache/actions/provision:plan',
      'OWNER/nix-cache/actions/deploy:destroy',
      'OWNER/nix-cache/actions/provision:destroy',
    ]);
    expect(dig(steps, 0, 'env', 'CONFIRM')).toBe('${{ inputs.confirm }}');
    expect(dig(steps, 2, 'with', 'confirm')).toBe('${{ inputs.confirm }}');
    expect(dig(steps, 3, 'with', 'delete-data')).toBe('${{ inputs.delete-data }}');
  });

  it('gc runs daily on a cron, with overrides by hand and OIDC auth', () => {
    const gc = workflow('gc.yml');
    const fields = text(dig(gc, 'on', 'schedule', 0, 'cron')).split(/\s+/);
    expect(fields).toHaveLength(5);
    expect(fields.slice(2)).toEqual(['*', '*', '*']);
    expect(fields[0]).toMatch(/^\d+$/);
    expect(fields[1]).toMatch(/^\d+$/);
    expect(Object.keys(obj(dig(gc, 'on', 'workflow_dispatch', 'inputs')))).toEqual(
      expect.arrayContaining(['older-than', 'failed-uploads-older-than', 'force', 'confirm', 'prune-pins']),
    );
    const step = list(dig(gc, 'jobs', 'gc', 'steps')).find((s) => text(s['uses']).includes('/actions/gc@'));
    expect(dig(step, 'with', 'auth')).toBe('oidc');
    expect(dig(step, 'with', 'token')).toBeUndefined();
  });

  it('up plans or applies provision then deploy, passing outputs along', () => {
    const up = workflow('up.yml');
    expect(dig(up, 'on', 'workflow_dispatch', 'inputs', 'plan-only')).toMatchObject({
      type: 'boolean',
      default: false,
    });
    const steps = list(dig(up, 'jobs', 'up', 'steps'));
    expect(steps.map((s) => (text(s['uses']) || 'run').replace(/@.*/, ''))).toEqual([
      'OWNER/nix-cache/actions/provision',
      'OWNER/nix-cache/actions/deploy',
      'run',
    ]);
    for (const output of ['cache-url', 'bucket-name', 's3-endpoint']) {
      expect(dig(steps, 1, 'with', output)).toBe(`\${{ steps.provision.outputs.${output} }}`);
    }
    expect(text(dig(steps, 2, 'run'))).toMatch(/extra-trusted-public-keys/);
  });

  it('push is a reusable workflow with typed inputs for every push option, and explicit secrets', () => {
    const push = workflow('push.yml');
    const inputs = obj(dig(push, 'on', 'workflow_call', 'inputs'));
    for (const input of Object.values(inputs)) {
      expect(['string', 'number', 'boolean']).toContain(dig(input, 'type'));
    }
    expect(inputs['installables']).toMatchObject({ type: 'string', required: true });
    expect(inputs['server-url']).toMatchObject({ type: 'string', required: true });
    const spec = ACTION_SPECS.find((s) => s.name === 'push');
    const options = (spec?.inputs ?? [])
      .map((input) => input.name)
      .filter((n) => !['paths', 'installables', 'token'].includes(n));
    expect(options.length).toBeGreaterThan(5);
    expect(Object.keys(inputs)).toEqual(expect.arrayContaining(options));
    expect(dig(push, 'on', 'workflow_call', 'secrets', 'niks3-token', 'required')).toBe(false);
    const steps = list(dig(push, 'jobs', 'push', 'steps'));
    const at = steps.findIndex((s) => text(s['uses']).startsWith('OWNER/nix-cache/actions/push@'));
    expect(Object.keys(obj(dig(steps, at, 'with')))).toEqual(expect.arrayContaining(options));
    expect(dig(steps, at, 'with', 'token')).toBe('${{ secrets.niks3-token }}');
    expect(steps.findIndex((s) => text(s['uses']).startsWith('actions/checkout@'))).toBeLessThan(at);
    expect(steps.findIndex((s) => /nix-bin/.test(text(s['run'])))).toBeLessThan(at);
    // The one-step form: no list for the push step, which comes before the build it pushes.
    expect(dig(steps, at, 'with', 'installables')).toBeUndefined();
    expect(dig(steps, at, 'with', 'paths')).toBeUndefined();
    const build = steps.findIndex((s) => /nix build/.test(text(s['run'])));
    expect(build).toBeGreaterThan(at);
    expect(text(dig(steps, build, 'env', 'INSTALLABLES'))).toBe('${{ inputs.installables }}');
  });

  it('pass only declared inputs to our actions, and every required one', () => {
    let checked = 0;
    for (const name of names) {
      for (const [jobName, job] of jobs(name)) {
        for (const step of list(job['steps'])) {
          const match = /^OWNER\/nix-cache\/actions\/([a-z-]+)@v1$/.exec(text(step['uses']));
          if (!match) continue;
          const spec = ACTION_SPECS.find((s) => s.name === match[1]);
          expect(spec).toBeDefined();
          const declared = (spec?.inputs ?? []).map((input) => input.name);
          const given = Object.keys(obj(step['with']));
          const where = `${name}:${jobName} ${match[1]}`;
          expect({ where, unknown: given.filter((key) => !declared.includes(key)) }).toEqual({
            where,
            unknown: [],
          });
          const missing = (spec?.inputs ?? [])
            .filter((input) => input.required && !given.includes(input.name))
            .map((input) => input.name);
          expect({ where, missing }).toEqual({ where, missing: [] });
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(7);
  });
});
