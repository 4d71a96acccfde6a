"""An MCP client built on the official Python SDK (`mcp` on PyPI): the agent's side of
`warm mcp`, for the tests.

    mcp_client.py WARM ROOT STEPS_JSON [ARGS_JSON]

Spawns `WARM mcp` (or `WARM ARGS`) in ROOT over stdio, initializes, lists the tools, then runs STEPS, a JSON
list of `["call", TOOL, ARGUMENTS]` (a tool call), `["progress", TOOL, ARGUMENTS]` (a call
that asks for progress notifications and records their messages), `["write", PATH, TEXT]`
(a file written on disk between calls) or `["raw", TOOL, ARGUMENTS]` (a call whose protocol
error is recorded instead of raised). Prints one JSON object: the tool names and schemas,
and for each call `{error, text}` (and `progress`, the messages heard).
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main():
    warm, root, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    args = json.loads(sys.argv[4]) if len(sys.argv) > 4 else ["mcp"]
    server = StdioServerParameters(command=warm, args=args, cwd=root, env=dict(os.environ))
    results = []
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            for step in steps:
                kind = step[0]
                if kind == "write":
                    with open(os.path.join(root, step[1]), "w") as f:
                        f.write(step[2])
                    continue
                heard = []

                async def on_progress(progress, total, message):
                    heard.append(message)

                callback = on_progress if kind == "progress" else None
                try:
                    result = await session.call_tool(step[1], step[2], progress_callback=callback)
                    text = "".join(c.text for c in result.content if c.type == "text")
                    results.append({"error": bool(result.isError), "text": text, "progress": heard})
                except Exception as error:  # a protocol error (e.g. an unknown tool)
                    if kind != "raw":
                        raise
                    results.append({"error": True, "protocol_error": True, "text": str(error)})
    print(json.dumps({
        "tools": sorted(t.name for t in tools.tools),
        "schemas": {t.name: t.inputSchema for t in tools.tools},
        "calls": results,
    }))


asyncio.run(main())
