import type { ActionSpec } from '../../core/settings/input-spec.js';
import { AUDIENCE, AUTH, CONNECT_TIMEOUT, SERVER_URL, TOKEN } from '../common-inputs.js';

export const GC_SPEC: ActionSpec = {
  name: 'gc',
  title: 'nix-cache gc',
  description:
    'Garbage-collect the niks3 cache: drop closures older than a retention period and stale uploads.',
  icon: 'trash-2',
  color: 'green',
  inputs: [
    SERVER_URL,
    AUTH,
    TOKEN,
    AUDIENCE,
    {
      name: 'older-than',
      description:
        'Drop closures last pushed longer ago than this (pinned ones are kept); what only they reference is deleted after the grace period.',
      type: 'duration',
      default: '720h',
      invalid: ['30d', '-1h', '1 h', 'h'],
    },
    {
      name: 'failed-uploads-older-than',
      description:
        'Clean up upload sessions started longer ago than this; also the grace period before an unreachable object is deleted.',
      type: 'duration',
      default: '6h',
    },
    {
      name: 'force',
      description: 'Delete objects without the grace period; only together with `confirm: force`.',
      type: 'boolean',
      default: 'false',
    },
    { name: 'confirm', description: 'Must be `force` when `force: true`.', type: 'string' },
    { name: 'wait', description: 'Poll the GC status until it is done.', type: 'boolean', default: 'true' },
    {
      name: 'timeout',
      description: 'How long to wait for the GC, in minutes.',
      type: 'integer',
      default: '30',
      min: 1,
      max: 360,
    },
    CONNECT_TIMEOUT,
    {
      name: 'prune-pins',
      description:
        'Before the GC, delete pins named after branches or tags that no longer exist in this repository (GitHub API with `github-token`).',
      type: 'boolean',
      default: 'false',
    },
    {
      name: 'keep-pins',
      description:
        'Glob patterns (`*`, `?`) of pin names that `prune-pins` never deletes, one per line, e.g. `prod` or `release-*`.',
      type: 'lines',
      pattern: /^[A-Za-z0-9._*?-]+$/,
      accepts: 'one pin-name pattern per line (letters, digits, `.`, `_`, `-`, `*`, `?`)',
      invalid: ['a/b', 'has space'],
    },
    {
      name: 'github-token',
      description: 'Token for the GitHub API, for `prune-pins` (needs `contents: read`).',
      type: 'string',
      secret: true,
      default: '${{ github.token }}',
      defaultText: 'the job token, `${{ github.token }}`',
    },
  ],
  outputs: [
    {
      name: 'state',
      description:
        'State of the GC run as niks3 reports it: `succeeded`, `failed`, or `running` (not waited for, or still running at `timeout`).',
    },
    {
      name: 'phase',
      description: 'Phase the run is in (`running`) or failed in (`failed`); empty after success.',
    },
    { name: 'duration', description: 'How long the GC took, in seconds (from the server times).' },
    {
      name: 'followed',
      description: '`true` when a GC with other parameters was already running and was followed instead.',
    },
    {
      name: 'freed-bytes',
      description:
        'Logical bytes no longer live after the run (from `/api/cache-stats` before and after; empty on servers without it).',
    },
    { name: 'stats', description: 'Every field of the GC stats, as JSON.' },
    { name: 'failed-uploads-deleted', description: 'GC stat.' },
    { name: 'old-closures-deleted', description: 'GC stat.' },
    { name: 'objects-marked-for-deletion', description: 'GC stat.' },
    { name: 'objects-deleted-after-grace-period', description: 'GC stat.' },
    { name: 'objects-failed-to-delete', description: 'GC stat.' },
    { name: 'pins-pruned', description: 'JSON list of the pins deleted by `prune-pins`.' },
  ],
};
