// Finding or starting a daemon through the `warm` binary, so that spawning, the
// single-instance lock and the version and configuration checks stay in one place
// (docs/protocol.md of the warm repository).

import { execFile } from 'node:child_process';
import { UnavailableError } from './errors.js';

export class Target {
  /** The daemon of `service` (the project's default if unset) for the project at `root`
   * (found from the current directory if unset), started by `warm` ($WARM, else on PATH). */
  constructor({ service, root, warm } = {}) {
    this.service = service ?? null;
    this.root = root ?? null;
    this.warm = warm ?? process.env.WARM ?? 'warm';
  }

  startArgs() {
    const args = [];
    if (this.service) args.push('-s', this.service);
    if (this.root) args.push('--root', this.root);
    return [...args, 'start', '--json'];
  }

  /** Starts the daemon if it is not running; resolves to its status (`socket`, `pid`, ...). */
  start() {
    return new Promise((resolve, reject) => {
      const options = { cwd: this.root ?? undefined, maxBuffer: 1 << 20 };
      execFile(this.warm, this.startArgs(), options, (error, stdout, stderr) => {
        if (error) {
          const reason = stderr.trim() || error.message;
          reject(new UnavailableError(`warm start failed: ${reason}`));
          return;
        }
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new UnavailableError(`warm start printed no status: ${JSON.stringify(stdout)}`));
        }
      });
    });
  }
}
