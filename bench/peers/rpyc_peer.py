"""An RPyC peer: a threaded server on a Unix socket exposing ping(), and its clients.
    python rpyc_peer.py serve SOCKET | call SOCKET | loop SOCKET N
"""
import json
import os
import sys
import time

import rpyc
from rpyc.utils.server import ThreadedServer


class PingService(rpyc.Service):
    def exposed_ping(self):
        return "pong"


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "serve":
        if os.path.exists(path):
            os.remove(path)
        ThreadedServer(PingService, socket_path=path).start()
    elif mode == "call":
        rpyc.utils.factory.unix_connect(path).root.ping()
    else:
        connection = rpyc.utils.factory.unix_connect(path)
        micros = []
        for _ in range(int(sys.argv[3])):
            start = time.perf_counter()
            connection.root.ping()
            micros.append((time.perf_counter() - start) * 1e6)
        print(json.dumps(micros))


main()
