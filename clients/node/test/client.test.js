// The Node client's own tests: the error types alone, then calls to a real daemon started
// through the `warm` binary ($WARM). The behaviour every client must have is the
// conformance suite's (clients/conformance).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as warm from '../index.js';
import { fromErrorObject } from '../lib/errors.js';

test('each code has its type, keeping code, message and data', () => {
  const cases = [
    [-32000, warm.BusyError],
    [-32001, warm.WarmTimeoutError],
    [-32002, warm.UnavailableError],
    [-32004, warm.TooLargeError],
    [-32005, warm.CancelledError],
    [-32601, warm.RpcError],
  ];
  for (const [code, Class] of cases) {
    const error = fromErrorObject({ code, message: 'm', data: { retry_after_ms: 7 } });
    assert.ok(error instanceof Class, `${code}`);
    assert.ok(error instanceof warm.WarmError);
    assert.deepEqual([error.code, error.message, error.data], [code, 'm', { retry_after_ms: 7 }]);
  }
  assert.equal(fromErrorObject({ code: -32000, message: 'busy' }).retryAfterMs, 100);
});

describe('with a daemon', () => {
  let tmp;
  let root;
  let client;
  before(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'warm-node-'));
    root = path.join(tmp, 'project');
    mkdirSync(path.join(root, '.git'), { recursive: true });
    mkdirSync(path.join(tmp, 'rt'), { mode: 0o700 });
    process.env.WARM_RUNTIME_DIR = path.join(tmp, 'rt');
    client = new warm.Client({ service: 'echo', root });
  });
  after(() => {
    client.close();
    execFileSync(process.env.WARM ?? 'warm', ['stop', '--all']);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('calls, progress and leases', async () => {
    assert.deepEqual(await client.call('echo', { x: [1, 'é'] }), { x: [1, 'é'] });
    const answers = await Promise.all([...Array(20).keys()].map((i) => client.call('echo', [i])));
    assert.deepEqual(answers, [...Array(20).keys()].map((i) => [i]));
    const seen = [];
    const slept = await client.call('sleep', { ms: 60, steps: 2 }, { onProgress: (p) => seen.push(p.done) });
    assert.deepEqual([slept, seen], [{ slept_ms: 60 }, [1, 2]]);
    // An async disposable (what `await using` calls, where the runtime has the syntax).
    const lease = await client.lease();
    assert.ok(lease.id);
    assert.equal((await client.call('daemon/status')).leases, 1);
    await lease[Symbol.asyncDispose]();
    assert.equal((await client.call('daemon/status')).leases, 0);
    assert.equal(client.daemon.service, 'echo');
    await assert.rejects(client.call('no/such/method'), (e) => e instanceof warm.RpcError && e.code === -32601);
  });

  test('an aborted signal cancels the call, in the daemon too', async () => {
    const controller = new AbortController();
    const running = client.call('sleep', { ms: 20000 }, { signal: controller.signal });
    while ((await client.call('daemon/status')).in_flight === 0) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await assert.rejects(running, warm.CancelledError);
    assert.equal((await client.call('daemon/status')).in_flight, 0);
    await assert.rejects(client.call('echo', [], { signal: controller.signal }), warm.CancelledError);
  });

  test('no warm binary is an UnavailableError', async () => {
    const broken = new warm.Client({ service: 'echo', root, warm: '/nonexistent/warm' });
    await assert.rejects(broken.call('echo', []), warm.UnavailableError);
  });
});
