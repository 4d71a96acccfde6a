// A Node worker kept warm by warm: newline-delimited JSON-RPC on stdin/stdout.
//   upper {"text": "..."} -> "..." in upper case
//   sum   [1, 2, 3]       -> 6
//   uptime {}             -> seconds since this process started (stays warm between calls)
"use strict";
const readline = require("node:readline");

const started = Date.now();
const methods = {
  upper: (params) => String(params.text ?? "").toUpperCase(),
  sum: (params) => params.reduce((a, b) => a + b, 0),
  uptime: () => (Date.now() - started) / 1000,
};

const send = (message) => process.stdout.write(JSON.stringify(message) + "\n");

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const msg = JSON.parse(line);
  if (msg.id === undefined) return; // notifications ($/cancelRequest) need no answer here
  const method = methods[msg.method];
  if (!method) {
    send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: `unknown method ${msg.method}` } });
    return;
  }
  try {
    send({ jsonrpc: "2.0", id: msg.id, result: method(msg.params ?? {}) });
  } catch (error) {
    send({ jsonrpc: "2.0", id: msg.id, error: { code: -32602, message: String(error) } });
  }
});
