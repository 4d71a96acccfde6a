// A Node `net` IPC peer: a line echo server on a Unix socket, and its clients.
//   node node_peer.js serve SOCKET | call SOCKET | loop SOCKET N
const net = require("net");
const fs = require("fs");
const [mode, path, n] = process.argv.slice(2);
const LINE = '{"jsonrpc":"2.0","id":1,"method":"ping"}\n';

if (mode === "serve") {
  try { fs.unlinkSync(path); } catch (_) {}
  net.createServer((socket) => socket.pipe(socket)).listen(path);
} else {
  const socket = net.createConnection(path);
  const total = mode === "loop" ? Number(n) : 1;
  const micros = [];
  let start = 0;
  let pending = "";
  const send = () => { start = process.hrtime.bigint(); socket.write(LINE); };
  socket.on("connect", send);
  socket.on("data", (chunk) => {
    pending += chunk;
    if (!pending.endsWith("\n")) return;
    pending = "";
    micros.push(Number(process.hrtime.bigint() - start) / 1000);
    if (micros.length < total) return send();
    socket.end();
    if (mode === "loop") console.log(JSON.stringify(micros));
  });
}
