"""The Python client's own tests: the wire and the error types alone, then calls to a real
daemon started through the `warm` binary ($WARM), sync and asyncio. The behaviour every
client must have is the conformance suite's (clients/conformance)."""
import asyncio
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import warm_client  # noqa: E402
from warm_client import errors, protocol  # noqa: E402


class Wire(unittest.TestCase):
    def test_frames_are_one_json_line(self):
        frame = protocol.encode(protocol.request(7, "echo", {"a": "é"}))
        self.assertEqual(frame, b'{"jsonrpc":"2.0","id":7,"method":"echo","params":{"a":"\\u00e9"}}\n')
        self.assertNotIn("params", protocol.request(1, "daemon/ping"))

    def test_incoming_messages_are_told_apart(self):
        self.assertEqual(protocol.classify(b'{"jsonrpc":"2.0","id":3,"result":[1]}'),
                         ("answer", 3, ("result", [1])))
        kind, request_id, (outcome, error) = protocol.classify(
            b'{"jsonrpc":"2.0","id":4,"error":{"code":-32000,"message":"busy","data":{"retry_after_ms":7}}}')
        self.assertEqual((kind, request_id, outcome), ("answer", 4, "error"))
        self.assertIsInstance(error, warm_client.BusyError)
        self.assertEqual(error.retry_after_ms, 7)
        self.assertEqual(protocol.classify(b'{"jsonrpc":"2.0","method":"$/progress","params":{"id":5,"done":1}}'),
                         ("progress", 5, {"id": 5, "done": 1}))
        self.assertEqual(protocol.classify(b'{"jsonrpc":"2.0","method":"note","params":[1]}'),
                         ("notification", "note", [1]))
        for garbage in (b"not json", b"[1, 2]", b"null"):
            self.assertIsNone(protocol.classify(garbage))

    def test_each_code_has_its_type(self):
        for code, cls in ((-32000, warm_client.BusyError), (-32001, warm_client.WarmTimeoutError),
                          (-32002, warm_client.UnavailableError), (-32004, warm_client.TooLargeError),
                          (-32005, warm_client.CancelledError), (-32601, warm_client.RpcError)):
            error = errors.from_error_object({"code": code, "message": "m", "data": {"k": 1}})
            self.assertIsInstance(error, cls)
            self.assertIsInstance(error, warm_client.WarmError)
            self.assertEqual((error.code, error.message, error.data), (code, "m", {"k": 1}))
        self.assertIsInstance(errors.from_error_object({"code": -32001}), TimeoutError)

    def test_a_cancel_token_runs_what_subscribed_once(self):
        token, seen = warm_client.CancelToken(), []
        undo = token._subscribe(lambda: seen.append("a"))
        token._subscribe(lambda: seen.append("b"))
        undo()
        token.cancel()
        token.cancel()
        token._subscribe(lambda: seen.append("late"))
        self.assertEqual(seen, ["b", "late"])


class WithDaemon(unittest.TestCase):
    """Calls to the built-in `echo` service of a throwaway project."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = os.path.join(self.tmp.name, "project")
        os.makedirs(os.path.join(self.root, ".git"))
        runtime = os.path.join(self.tmp.name, "rt")
        os.mkdir(runtime, 0o700)
        self.saved = dict(os.environ)
        os.environ["WARM_RUNTIME_DIR"] = runtime

    def tearDown(self):
        subprocess.run([os.environ.get("WARM", "warm"), "stop", "--all"], capture_output=True)
        os.environ.clear()
        os.environ.update(self.saved)
        self.tmp.cleanup()

    def test_sync_calls_progress_and_leases(self):
        with warm_client.Client("echo", self.root) as client:
            self.assertEqual(client.call("echo", {"x": [1, "é"]}), {"x": [1, "é"]})
            seen = []
            self.assertEqual(client.call("sleep", {"ms": 60, "steps": 2}, on_progress=seen.append),
                             {"slept_ms": 60})
            self.assertEqual([p["done"] for p in seen], [1, 2])
            with client.lease() as lease:
                self.assertIsNotNone(lease.id)
                self.assertEqual(client.call("daemon/status")["leases"], 1)
            self.assertEqual(client.call("daemon/status")["leases"], 0)
            self.assertEqual(client.daemon["service"], "echo")
            with self.assertRaises(warm_client.RpcError) as raised:
                client.call("no/such/method")
            self.assertEqual(raised.exception.code, -32601)

    def test_asyncio_calls_and_task_cancellation(self):
        async def scenario():
            async with warm_client.AsyncClient("echo", self.root) as client:
                answers = await asyncio.gather(*(client.call("echo", [i]) for i in range(20)))
                self.assertEqual(answers, [[i] for i in range(20)])
                task = asyncio.create_task(client.call("sleep", {"ms": 20000}))
                while (await client.call("daemon/status"))["in_flight"] == 0:
                    await asyncio.sleep(0.01)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                for _ in range(500):
                    if (await client.call("daemon/status"))["in_flight"] == 0:
                        break
                    await asyncio.sleep(0.01)
                self.assertEqual((await client.call("daemon/status"))["in_flight"], 0)
        asyncio.run(scenario())

    def test_no_warm_binary_is_an_unavailable_error(self):
        with self.assertRaises(warm_client.UnavailableError):
            warm_client.Client("echo", self.root, warm="/nonexistent/warm").call("echo", [])


if __name__ == "__main__":
    unittest.main()
