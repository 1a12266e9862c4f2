// Drives `netc lsp` with vscode-jsonrpc, the JSON-RPC library inside VS Code's language client:
// initialize, open a broken file, receive its diagnostic at the UTF-16 range, fix it with an
// incremental change, see the diagnostics clear, shut down. The server is `$NETC`, or the
// repository's target/debug/netc (build it first with `cargo build`).
'use strict';

const assert = require('node:assert');
const cp = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const rpc = require('vscode-jsonrpc/node');

const netc = process.env.NETC || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'netc');

async function main() {
  if (!fs.existsSync(netc)) {
    throw new Error(`no netc at ${netc}: run \`cargo build\` or set NETC`);
  }
  const child = cp.spawn(netc, ['lsp'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const conn = rpc.createMessageConnection(
    new rpc.StreamMessageReader(child.stdout),
    new rpc.StreamMessageWriter(child.stdin)
  );
  const published = [];
  let wake = () => {};
  conn.onNotification('textDocument/publishDiagnostics', (p) => {
    published.push(p);
    wake();
  });
  conn.listen();
  const next = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no diagnostics within 20 s')), 20000);
      const check = () => {
        if (published.length > 0) {
          clearTimeout(timer);
          resolve(published.shift());
        } else {
          wake = check;
        }
      };
      check();
    });

  const init = await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
  assert.strictEqual(init.capabilities.textDocumentSync.change, 2);
  conn.sendNotification('initialized', {});
  const uri = 'file:///tmp/netc-vscode-test/broken.net';
  const text = 'net a(x: f32[N, 3, 8, 8]) -> y {\n    y = x -> /* é😀 */ conv(8, kernel= 3)\n}\n';
  conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'net', version: 1, text } });
  const first = await next();
  assert.strictEqual(first.diagnostics.length, 1, JSON.stringify(first));
  const d = first.diagnostics[0];
  assert.deepStrictEqual(d.range.start, { line: 1, character: 37 });
  assert.strictEqual(d.code, 'E0100');
  const range = { start: { line: 1, character: 37 }, end: { line: 1, character: 38 } };
  conn.sendNotification('textDocument/didChange', {
    textDocument: { uri, version: 2 },
    contentChanges: [{ range, text: ':' }],
  });
  const second = await next();
  assert.deepStrictEqual(second.diagnostics, [], JSON.stringify(second));
  await conn.sendRequest('shutdown');
  conn.sendNotification('exit');
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.strictEqual(code, 0);
  conn.dispose();
  console.log('server: diagnostics at the UTF-16 range, cleared by an incremental fix, clean exit');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
