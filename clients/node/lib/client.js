// `Client`: calls to one warm daemon over one connection, any number at once.
//
// What it does for its caller, as docs/protocol.md asks:
// - it finds or starts the daemon through `warm start --json`, and does so again when the
//   connection is gone (the daemon idled out or was restarted);
// - it resends a request answered -32003 (the daemon was stopping: it did not run) to the
//   next daemon, at most `maxRestarts` times per call;
// - it resends a request answered -32000 (busy: it did not run) after
//   `data.retry_after_ms`, with jitter, for up to `busyTimeout` ms;
// - it never resends a request whose connection closed after it was written (it may have
//   run): that is ConnectionLost.

import net from 'node:net';
import { Target } from './daemon.js';
import {
  BusyError,
  CancelledError,
  CANCELLED,
  ConnectionLost,
  fromErrorObject,
  ShuttingDown,
  TIMEOUT,
  UnavailableError,
  WarmError,
  WarmTimeoutError,
} from './errors.js';

const HELLO_TIMEOUT_MS = 10_000;

/** The request could not be written: it did not run. */
class NotSent extends Error {}

/** One socket to the daemon, newline-delimited JSON. */
class Connection {
  static open(path, onNotification) {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new Connection(socket, onNotification));
      });
      socket.once('error', reject);
    });
  }

  constructor(socket, onNotification) {
    this.socket = socket;
    this.onNotification = onNotification;
    this.nextId = 1;
    this.pending = new Map();
    this.closed = false;
    this.buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => this.#received(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.#ended());
  }

  /** Sends a request; resolves to `[id, answer]`, `answer` a promise of its result. */
  send(method, params, onProgress) {
    if (this.closed) return Promise.reject(new NotSent());
    const id = this.nextId++;
    const answer = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
    });
    answer.catch(() => {}); // handled by whoever awaits it
    const message = { jsonrpc: '2.0', id, method };
    if (params !== undefined && params !== null) message.params = params;
    return new Promise((resolve, reject) => {
      this.socket.write(`${JSON.stringify(message)}\n`, (error) => {
        if (error) {
          this.pending.delete(id);
          reject(new NotSent());
        } else {
          resolve([id, answer]);
        }
      });
    });
  }

  notify(method, params) {
    if (!this.closed) this.socket.write(`${JSON.stringify({ jsonrpc: '2.0', method, params })}\n`);
  }

  forget(id) {
    this.pending.delete(id);
  }

  #received(chunk) {
    this.buffered += chunk;
    let newline;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      this.#dispatch(line);
    }
  }

  #dispatch(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      return; // a client ignores what it cannot read
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return;
    if (message.method === undefined) {
      const request = this.pending.get(message.id);
      if (!request) return;
      this.pending.delete(message.id);
      if (message.error) request.reject(fromErrorObject(message.error));
      else request.resolve(message.result ?? null);
      return;
    }
    const params = message.params;
    if (message.method === '$/progress' && params && typeof params === 'object') {
      const request = this.pending.get(params.id);
      if (request?.onProgress) {
        request.onProgress(params);
        return;
      }
    }
    this.onNotification?.(message.method, params);
  }

  #ended() {
    this.closed = true;
    const lost = new ConnectionLost('the connection to the daemon closed before the answer came');
    for (const request of this.pending.values()) request.reject(lost);
    this.pending.clear();
  }

  close() {
    this.closed = true;
    this.socket.destroy();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A lease on the daemon (`daemon/lease`): it does not idle out while the lease is held. */
export class Lease {
  constructor(client, id) {
    this.client = client;
    this.id = id;
  }

  async release() {
    if (!this.client.leases.delete(this)) return;
    try {
      await this.client.call('daemon/release', { lease_id: this.id });
    } catch (error) {
      if (!(error instanceof WarmError)) throw error; // the lease went with its connection
    }
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    await this.release();
  }
}

export class Client {
  /**
   * Calls to the daemon of `service` for the project at `root`.
   * Options: `warm` (the binary), `busyTimeout` (ms, 60 s), `maxRestarts` (2),
   * `onNotification(method, params)`.
   */
  constructor({ service, root, warm, busyTimeout = 60_000, maxRestarts = 2, onNotification } = {}) {
    this.target = new Target({ service, root, warm });
    this.busyTimeout = busyTimeout;
    this.maxRestarts = maxRestarts;
    this.onNotification = onNotification;
    this.connection = null;
    this.connecting = null;
    // Connections given up for new calls (their daemon is stopping) whose calls in flight
    // still get their answers; the daemon closes them when it has drained.
    this.retired = new Set();
    this.leases = new Set();
    /** What the daemon said in its hello (`pid`, `version`, `service`, `root`). */
    this.daemon = null;
  }

  /**
   * Calls `method`; resolves to its result. Options: `onProgress(params)` for each
   * `$/progress` of the call, `timeout` (ms: the call is cancelled and rejects with
   * WarmTimeoutError), `signal` (an AbortSignal: the call is cancelled and rejects with
   * CancelledError).
   */
  async call(method, params = null, { onProgress, timeout, signal } = {}) {
    const deadline = timeout === undefined ? null : Date.now() + timeout;
    const busyUntil = Date.now() + this.busyTimeout;
    let restarts = 0;
    for (;;) {
      if (signal?.aborted) throw new CancelledError('cancelled before it was sent', CANCELLED);
      const connection = await this.#connected();
      let id;
      let answer;
      try {
        [id, answer] = await connection.send(method, params, onProgress);
      } catch (error) {
        if (!(error instanceof NotSent)) throw error;
        restarts = this.#restarted(connection, restarts);
        continue;
      }
      try {
        return await this.#wait(connection, id, answer, deadline, signal);
      } catch (error) {
        if (error instanceof ShuttingDown) {
          restarts = this.#restarted(connection, restarts);
        } else if (error instanceof BusyError) {
          const pause = error.retryAfterMs * (0.8 + Math.random() * 0.4);
          if (Date.now() + pause > busyUntil) throw error;
          await sleep(pause);
        } else {
          if (error instanceof ConnectionLost) this.#retire(connection);
          throw error;
        }
      }
    }
  }

  #wait(connection, id, answer, deadline, signal) {
    const cancel = () => connection.notify('$/cancelRequest', { id });
    return new Promise((resolve, reject) => {
      let timer = null;
      const settle = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', cancel);
      };
      if (deadline !== null) {
        timer = setTimeout(() => {
          cancel();
          connection.forget(id);
          settle();
          reject(new WarmTimeoutError('no answer within the timeout; the call was cancelled', TIMEOUT));
        }, Math.max(0, deadline - Date.now()));
      }
      signal?.addEventListener('abort', cancel, { once: true });
      answer.then(
        (result) => {
          settle();
          resolve(result);
        },
        (error) => {
          settle();
          reject(error);
        },
      );
    });
  }

  #restarted(connection, restarts) {
    this.#retire(connection);
    if (restarts >= this.maxRestarts) {
      throw new UnavailableError(
        `the daemon was restarted ${restarts + 1} times during this call and is still not answering`,
      );
    }
    return restarts + 1;
  }

  /** New calls go to another connection; this one keeps serving the calls it has in flight
   * until the daemon closes it. */
  #retire(connection) {
    if (this.connection !== connection) return;
    this.connection = null;
    for (const old of this.retired) if (old.closed) this.retired.delete(old);
    this.retired.add(connection);
  }

  async #connected() {
    if (this.connection && !this.connection.closed) return this.connection;
    // Concurrent calls share one connection attempt.
    this.connecting ??= this.#connect().finally(() => {
      this.connecting = null;
    });
    this.connection = await this.connecting;
    return this.connection;
  }

  async #connect() {
    const status = await this.target.start();
    let connection;
    try {
      connection = await Connection.open(status.socket, this.onNotification);
    } catch (error) {
      throw new UnavailableError(`cannot connect to ${status.socket}: ${error.message}`);
    }
    const ask = async (method) => {
      const [, answer] = await connection.send(method);
      let timer;
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer to ${method}`)), HELLO_TIMEOUT_MS);
      });
      try {
        return await Promise.race([answer, late]);
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      this.daemon = await ask('daemon/hello');
      // Leases taken on a connection now gone are taken again on this one.
      for (const lease of this.leases) lease.id = (await ask('daemon/lease')).lease_id;
    } catch (error) {
      connection.close();
      throw new UnavailableError(`the daemon did not answer its hello: ${error.message}`);
    }
    return connection;
  }

  /** Takes a lease on the daemon, held until `release()` (or the end of an `await using`
   * block), and taken again after a reconnection. */
  async lease() {
    const { lease_id: id } = await this.call('daemon/lease');
    const lease = new Lease(this, id);
    this.leases.add(lease);
    return lease;
  }

  close() {
    for (const connection of [this.connection, ...this.retired]) connection?.close();
    this.connection = null;
    this.retired.clear();
  }
}
