// Opens one YAML file in the real yaml-language-server (the server behind VS Code's YAML extension and the
// usual choice of Neovim, Helix, Zed, ...) over stdio, as an editor does, and prints the diagnostics it
// publishes for the file as JSON. Schema store off: only the file's own `$schema=` line can supply a schema.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");
const { pathToFileURL } = require("url");

const file = path.resolve(process.argv[2]);
const uri = pathToFileURL(file).href;
const settings = { yaml: { validate: true, hover: false, completion: false, schemaStore: { enable: false } } };
const server = spawn(process.execPath, [require.resolve("yaml-language-server/bin/yaml-language-server"), "--stdio"], {
  cwd: path.dirname(file),
  stdio: ["pipe", "pipe", "inherit"],
});

let nextId = 1;
function send(message) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
  server.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
  server.stdin.write(body);
}
function request(method, params) {
  send({ id: nextId++, method, params });
}

let buffer = Buffer.alloc(0);
let latest = null;
let quietTimer = null;
function finish(diagnostics) {
  process.stdout.write(JSON.stringify(diagnostics) + "\n");
  server.kill();
  process.exit(0);
}
setTimeout(() => {
  process.stderr.write("no diagnostics within 60 s\n");
  server.kill();
  process.exit(3);
}, 60000);

function handle(message) {
  if (message.id !== undefined && message.method) {
    // A request from the server: configuration gets our settings, anything else a null result.
    const result = message.method === "workspace/configuration" ? message.params.items.map(() => settings.yaml) : null;
    send({ id: message.id, result });
    return;
  }
  if (message.id === 1) {
    send({ method: "initialized", params: {} });
    send({ method: "workspace/didChangeConfiguration", params: { settings } });
    send({
      method: "textDocument/didOpen",
      params: { textDocument: { uri, languageId: "yaml", version: 1, text: fs.readFileSync(file, "utf8") } },
    });
    return;
  }
  if (message.method === "textDocument/publishDiagnostics" && message.params.uri === uri) {
    latest = message.params.diagnostics;
    // The server may publish more than once (before and after loading the schema): report the last.
    clearTimeout(quietTimer);
    quietTimer = setTimeout(() => finish(latest), 2000);
  }
}

server.stdout.on("data", (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const length = Number(/Content-Length: (\d+)/i.exec(buffer.subarray(0, end).toString())[1]);
    if (buffer.length < end + 4 + length) return;
    const body = buffer.subarray(end + 4, end + 4 + length).toString("utf8");
    buffer = buffer.subarray(end + 4 + length);
    handle(JSON.parse(body));
  }
});

request("initialize", {
  processId: process.pid,
  rootUri: pathToFileURL(path.dirname(file)).href,
  workspaceFolders: [{ uri: pathToFileURL(path.dirname(file)).href, name: "game" }],
  capabilities: { workspace: { configuration: true }, textDocument: { publishDiagnostics: {} } },
});
