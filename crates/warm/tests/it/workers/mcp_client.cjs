// An MCP client built on the official TypeScript SDK (`@modelcontextprotocol/sdk` on npm,
// installed globally by scripts/setup-tests; found through NODE_PATH): the agent's side of
// `warm mcp`, for the tests.
//
//     node mcp_client.cjs WARM ROOT STEPS_JSON
//
// Spawns `WARM mcp` in ROOT over stdio, lists the tools, runs STEPS (a JSON list of
// `["call", TOOL, ARGUMENTS]`) and prints one JSON object: the tool names, and for each call
// `{error, text}`.
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

async function main() {
  const [warm, root, stepsJson] = process.argv.slice(2);
  const transport = new StdioClientTransport({
    command: warm,
    args: ["mcp"],
    cwd: root,
    env: process.env,
    stderr: "inherit",
  });
  const client = new Client({ name: "warm-tests", version: "1.0.0" });
  await client.connect(transport);
  const tools = await client.listTools();
  const calls = [];
  for (const [kind, name, args] of JSON.parse(stepsJson)) {
    if (kind !== "call") throw new Error(`unknown step ${kind}`);
    const result = await client.callTool({ name, arguments: args });
    const text = result.content.filter((c) => c.type === "text").map((c) => c.text).join("");
    calls.push({ error: Boolean(result.isError), text });
  }
  await client.close();
  console.log(JSON.stringify({ tools: tools.tools.map((t) => t.name).sort(), calls }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
