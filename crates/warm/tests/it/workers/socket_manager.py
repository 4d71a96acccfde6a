"""The service manager's side of socket activation, as systemd plays it, for tests.

Usage: socket_manager.py SOCKET COMMAND...

It listens on the Unix socket SOCKET and, whenever a connection waits while no service runs,
starts COMMAND with the listening socket as descriptor 3 (LISTEN_FDS=1, LISTEN_PID = the
service's own pid: sd_listen_fds(3)) and a NOTIFY_SOCKET whose notes (READY=1, STATUS=...,
STOPPING=1: sd_notify(3)) it reads. It keeps the socket open across the service's exits, so
connections that arrive meanwhile wait in its queue, and starts nothing while none waits
(systemd's Restart=no). systemd-socket-activate execs the service once and is gone; this
stays, which is what re-activation needs.

With $DROP_CONNECTIONS=N, the first N connections are closed unanswered, as by a service
that died at once. Every start, exit, dropped connection and note is a JSON line on stdout; notes arrive at $NOTIFY_PATH (a
temporary directory's if unset). SIGTERM stops the service, then it.
"""
import json
import os
import select
import signal
import socket
import sys
import tempfile

path, command = sys.argv[1], sys.argv[2:]
# Its directory, private, as systemd makes it (DirectoryMode=0700).
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
os.chmod(path, 0o600)
listener.listen(4096)
# Where the notes arrive: $NOTIFY_PATH, else a private temporary directory.
notes_path = os.environ.get("NOTIFY_PATH") or os.path.join(tempfile.mkdtemp(prefix="notify-"), "notify")
notes = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notes.bind(notes_path)
notes.setblocking(False)


def report(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def start():
    pid = os.fork()
    if pid == 0:
        try:
            # Inheritable, as the protocol wants it (dup2 onto itself would keep CLOEXEC).
            if listener.fileno() != 3:
                os.dup2(listener.fileno(), 3)
            os.set_inheritable(3, True)
            env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                       LISTEN_FDNAMES="warm", NOTIFY_SOCKET=notes_path)
            os.execvpe(command[0], command, env)
        finally:
            os._exit(127)
    report(event="start", pid=pid)
    return pid


stopping = False


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
service = None
drops_left = int(os.environ.get("DROP_CONNECTIONS", "0"))
while not stopping:
    watched = [notes] if service else [notes, listener]
    try:
        readable, _, _ = select.select(watched, [], [], 0.05)
    except InterruptedError:
        continue
    while notes in readable:
        try:
            text = notes.recv(4096).decode(errors="replace")
        except BlockingIOError:
            break
        report(event="notify", pid=service, lines=text.splitlines())
    if service:
        done, status = os.waitpid(service, os.WNOHANG)
        if done:
            report(event="exit", pid=service, code=os.waitstatus_to_exitcode(status))
            service = None
    elif listener in readable and drops_left > 0:
        # A service that died at once, before answering: the connection is closed.
        listener.accept()[0].close()
        drops_left -= 1
        report(event="dropped")
    elif listener in readable:
        service = start()

if service:
    os.kill(service, signal.SIGTERM)
    _, status = os.waitpid(service, 0)
    report(event="exit", pid=service, code=os.waitstatus_to_exitcode(status))
os.unlink(path)
os.unlink(notes_path)
