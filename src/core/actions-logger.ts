import * as core from '@actions/core';
import type { Logger } from './logger.js';

/** The Logger of an action step: workflow commands through @actions/core. */
export class ActionsLogger implements Logger {
  debug(message: string): void {
    core.debug(message);
  }
  info(message: string): void {
    core.info(message);
  }
  warn(message: string): void {
    core.warning(message);
  }
  error(message: string): void {
    core.error(message);
  }
  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return core.group(name, fn);
  }
  setSecret(value: string): void {
    core.setSecret(value);
  }
}
