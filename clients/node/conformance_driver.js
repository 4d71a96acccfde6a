// The Node client under the conformance suite's driver protocol
// (clients/conformance/README.md): one JSON op per line on stdin, answers on stdout.

import readline from 'node:readline';
import { Client, WarmError, WarmTimeoutError } from './index.js';

const answer = (fields) => process.stdout.write(`${JSON.stringify(fields)}\n`);

function errorFields(error) {
  const type = error instanceof WarmTimeoutError ? 'TimeoutError' : error.constructor.name;
  return { type, code: error.code ?? null, message: error.message, data: error.data ?? null };
}

let client = null;
const calls = new Map();
const leases = new Map();

async function call(op) {
  const controller = new AbortController();
  calls.set(op.id, controller);
  const options = { signal: controller.signal };
  if (op.timeout !== undefined && op.timeout !== null) options.timeout = op.timeout * 1000;
  if (op.progress) options.onProgress = (params) => answer({ id: op.id, progress: params });
  try {
    answer({ id: op.id, result: await client.call(op.method, op.params ?? null, options) });
  } catch (error) {
    if (!(error instanceof WarmError)) throw error;
    answer({ id: op.id, error: errorFields(error) });
  }
}

async function handle(op) {
  switch (op.op) {
    case 'connect':
      client = new Client({
        service: op.service,
        root: op.root,
        warm: op.warm ?? undefined,
        busyTimeout: (op.busy_timeout ?? 60) * 1000,
        maxRestarts: op.max_restarts ?? 2,
      });
      answer({ id: op.id, ok: true });
      break;
    case 'call':
      call(op);
      break;
    case 'cancel':
      calls.get(op.call)?.abort();
      answer({ id: op.id, ok: true });
      break;
    case 'lease':
      try {
        const lease = await client.lease();
        leases.set(op.id, lease);
        answer({ id: op.id, result: { lease_id: lease.id } });
      } catch (error) {
        answer({ id: op.id, error: errorFields(error) });
      }
      break;
    case 'release':
      await leases.get(op.lease)?.release();
      leases.delete(op.lease);
      answer({ id: op.id, ok: true });
      break;
    case 'daemon':
      answer({ id: op.id, result: client.daemon });
      break;
    case 'close':
      client?.close();
      answer({ id: op.id, ok: true });
      process.exit(0);
  }
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line.trim()) await handle(JSON.parse(line));
}
