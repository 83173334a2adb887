import type { ActionSpec } from '../../core/settings/input-spec.js';
import { AUDIENCE, AUTH, CONNECT_TIMEOUT, SERVER_URL, TOKEN } from '../common-inputs.js';

export const GC_SPEC: ActionSpec = {
  name: 'gc',
  title: 'nix-cache gc',
  description: 'Garbage-collect the niks3 cache: drop closures older than a retention period and stale uploads.',
  icon: 'trash-2',
  color: 'green',
  inputs: [
    SERVER_URL,
    AUTH,
    TOKEN,
    AUDIENCE,
    { name: 'older-than', description: 'Collect closures older than this.', type: 'duration', default: '720h' },
    {
      name: 'failed-uploads-older-than',
      description: 'Clean up upload sessions older than this.',
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
    { name: 'timeout', description: 'How long to wait for the GC, in minutes.', type: 'integer', default: '30', min: 1, max: 360 },
    CONNECT_TIMEOUT,
    {
      name: 'prune-pins',
      description:
        'Before the GC, delete pins named after branches or tags that no longer exist in this repository (GitHub API with `github-token`).',
      type: 'boolean',
      default: 'false',
    },
    {
      name: 'github-token',
      description: 'Token for the GitHub API, for `prune-pins`.',
      type: 'string',
      secret: true,
      defaultText: 'GITHUB_TOKEN of the job (`${{ github.token }}`)',
    },
  ],
  outputs: [
    { name: 'state', description: 'Final GC state (`completed`, `failed`, or `running` when not waited for).' },
    { name: 'duration', description: 'How long the GC took, in seconds.' },
    { name: 'stats', description: 'Every field of the GC stats, as JSON.' },
    { name: 'failed-uploads-deleted', description: 'GC stat.' },
    { name: 'old-closures-deleted', description: 'GC stat.' },
    { name: 'objects-marked-for-deletion', description: 'GC stat.' },
    { name: 'objects-deleted-after-grace-period', description: 'GC stat.' },
    { name: 'objects-failed-to-delete', description: 'GC stat.' },
    { name: 'pins-pruned', description: 'JSON list of the pins deleted by `prune-pins`.' },
  ],
};
