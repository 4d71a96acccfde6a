"""An MCP client built on the official Python SDK (`mcp` on PyPI): the agent's side of
`warm mcp`, for the tests.

    mcp_client.py WARM ROOT STEPS_JSON

Spawns `WARM mcp` in ROOT over stdio, initializes, lists the tools, then runs STEPS, a JSON
list of `["call", TOOL, ARGUMENTS]` (a tool call), `["write", PATH, TEXT]` (a file written
on disk between calls) or `["raw", TOOL, ARGUMENTS]` (a call whose protocol error is
recorded instead of raised). Prints one JSON object: the tool names, and for each call
`{error, text}`.
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main():
    warm, root, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    server = StdioServerParameters(command=warm, args=["mcp"], cwd=root, env=dict(os.environ))
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
                try:
                    result = await session.call_tool(step[1], step[2])
                    text = "".join(c.text for c in result.content if c.type == "text")
                    results.append({"error": bool(result.isError), "text": text})
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
