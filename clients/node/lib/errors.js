// The errors a warm call can end in, one class per thing a caller does differently. Every
// class derives from WarmError; an error answered by the daemon keeps its JSON-RPC `code`,
// `message` and `data`.

export const BUSY = -32000;
export const TIMEOUT = -32001;
export const UNAVAILABLE = -32002;
export const SHUTTING_DOWN = -32003;
export const TOO_LARGE = -32004;
export const CANCELLED = -32005;

export class WarmError extends Error {
  constructor(message, code = null, data = null) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
  }
}

/** An error the daemon or its service answered: the request ran, or was refused. */
export class RpcError extends WarmError {}

/** The in-flight limit was reached (-32000): the request did not run. Thrown only when
 * retrying was turned off or ran out of time; `retryAfterMs` says when to try again. */
export class BusyError extends WarmError {
  get retryAfterMs() {
    return this.data?.retry_after_ms ?? 100;
  }
}

/** No daemon could be reached or started, or its worker is unavailable (-32002). */
export class UnavailableError extends WarmError {}

/** The call outlived its timeout (it was cancelled), or the service answered -32001. */
export class WarmTimeoutError extends WarmError {}

/** The call was cancelled (-32005): it may have partly run. */
export class CancelledError extends WarmError {}

/** A frame over the daemon's limit (-32004). */
export class TooLargeError extends WarmError {}

/** The connection closed after the request was written: it may have run, so it is not resent. */
export class ConnectionLost extends WarmError {}

/** -32003: the request did not run (the daemon is stopping); the client resends it to the
 * next daemon and never throws this to its caller. */
export class ShuttingDown extends WarmError {}

const BY_CODE = new Map([
  [BUSY, BusyError],
  [TIMEOUT, WarmTimeoutError],
  [UNAVAILABLE, UnavailableError],
  [SHUTTING_DOWN, ShuttingDown],
  [TOO_LARGE, TooLargeError],
  [CANCELLED, CancelledError],
]);

/** The error for a JSON-RPC error object. */
export function fromErrorObject(error) {
  const Class = BY_CODE.get(error?.code) ?? RpcError;
  return new Class(error?.message ?? 'error', error?.code ?? null, error?.data ?? null);
}
