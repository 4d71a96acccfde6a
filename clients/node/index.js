// A client for warm daemons, in Node's standard library alone.
//
//   import { Client } from 'warm-client';
//   const index = new Client({ service: 'index', root: '/path/to/project' });
//   const hits = await index.call('find', { name: 'main' }, { onProgress: console.log });
//   const lease = await index.lease();   // the daemon does not idle out until released
//   await lease.release();
//   index.close();
//
// The daemon is found, or started, through the `warm` binary ($WARM, else `warm` on PATH),
// which keeps spawning, single-instance locking and version checks in one place. The
// protocol: docs/protocol.md of the warm repository.

export { Client, Lease } from './lib/client.js';
export {
  BusyError,
  CancelledError,
  ConnectionLost,
  RpcError,
  TooLargeError,
  UnavailableError,
  WarmError,
  WarmTimeoutError,
} from './lib/errors.js';
