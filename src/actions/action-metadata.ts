/** Renders action.yml and the README tables from an ActionSpec (the one source of each input). */
import type { ActionSpec, InputSpec } from '../core/settings/input-spec.js';
import { describeAccepted } from '../core/settings/input-reader.js';

function yamlString(text: string): string {
  return JSON.stringify(text);
}

export function inputDescription(input: InputSpec): string {
  const parts = [input.description.replace(/\s+$/, '')];
  if (input.type !== 'string' && input.type !== 'lines') parts.push(`Accepts ${describeAccepted(input)}.`);
  if (input.defaultText) parts.push(`Default: ${input.defaultText}.`);
  if (input.secret) parts.push('Secret: masked in logs.');
  return parts.join(' ');
}

export function renderActionYaml(spec: ActionSpec): string {
  const lines: string[] = [
    '# Generated from src/actions/' + spec.name + '/spec.ts by `npm run gen`; edit that file, not this one.',
    `name: ${yamlString(spec.title)}`,
    `description: ${yamlString(spec.description)}`,
    'author: nix-cache',
    'branding:',
    `  icon: ${spec.icon}`,
    `  color: ${spec.color}`,
    'inputs:',
  ];
  for (const input of spec.inputs) {
    lines.push(`  ${input.name}:`);
    lines.push(`    description: ${yamlString(inputDescription(input))}`);
    lines.push(`    required: ${input.required ? 'true' : 'false'}`);
    if (input.default !== undefined) lines.push(`    default: ${yamlString(input.default)}`);
  }
  lines.push('outputs:');
  for (const output of spec.outputs) {
    lines.push(`  ${output.name}:`);
    lines.push(`    description: ${yamlString(output.description)}`);
  }
  lines.push('runs:', '  using: node24', `  main: ../../dist/${spec.name}/index.js`);
  if (spec.post) {
    lines.push(`  post: ../../dist/${spec.name}/post/index.js`);
    lines.push(`  post-if: ${yamlString(spec.postIf ?? 'always()')}`);
  }
  return lines.join('\n') + '\n';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderReadmeTables(spec: ActionSpec): string {
  const rows = spec.inputs.map((input) => {
    const def = input.required
      ? '**required**'
      : input.default !== undefined && input.default !== ''
        ? `\`${input.default}\``
        : (input.defaultText ?? '');
    return `| \`${input.name}\` | ${cell(def)} | ${cell(inputDescription(input))} |`;
  });
  const outputs = spec.outputs.map((output) => `| \`${output.name}\` | ${cell(output.description)} |`);
  return [
    '## Inputs',
    '',
    '| input | default | description |',
    '| --- | --- | --- |',
    ...rows,
    '',
    '## Outputs',
    '',
    '| output | description |',
    '| --- | --- |',
    ...outputs,
  ].join('\n');
}

const START = '<!-- generated:start (npm run gen) -->';
const END = '<!-- generated:end -->';

export function spliceReadme(readme: string, tables: string): string {
  const block = `${START}\n${tables}\n${END}`;
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end === -1) return `${readme.replace(/\n*$/, '')}\n\n${block}\n`;
  return `${readme.slice(0, start)}${block}${readme.slice(end + END.length)}`;
}
