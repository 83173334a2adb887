/** Every action of the suite, in the order the docs list them. */
import type { ActionSpec } from '../core/settings/input-spec.js';
import { DEPLOY_SPEC } from './deploy/spec.js';
import { GC_SPEC } from './gc/spec.js';
import { PROVISION_SPEC } from './provision/spec.js';
import { PUSH_SPEC } from './push/spec.js';
import { STATUS_SPEC } from './status/spec.js';

export const ACTION_SPECS: readonly ActionSpec[] = [
  PROVISION_SPEC,
  DEPLOY_SPEC,
  PUSH_SPEC,
  GC_SPEC,
  STATUS_SPEC,
];
