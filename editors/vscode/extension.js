// The netc extension: starts `netc lsp` for .net files and hands it to VS Code's language
// client. Highlighting comes from syntaxes/net.tmLanguage.json; everything else (diagnostics,
// hover, go to definition, completion, outline, inlay hints) from the server.
'use strict';

const vscode = require('vscode');
const { LanguageClient, State } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

/** The client for the configured `netc` executable. */
function createClient() {
  const command = vscode.workspace.getConfiguration('netc').get('path') || 'netc';
  // No `transport` field: the client then talks over stdio without adding `--stdio`.
  const serverOptions = { command, args: ['lsp'] };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'net' },
      { scheme: 'untitled', language: 'net' },
    ],
    outputChannelName: 'netc',
  };
  return new LanguageClient('netc', 'netc language server', serverOptions, clientOptions);
}

async function start() {
  client = createClient();
  try {
    await client.start();
  } catch (err) {
    const path = vscode.workspace.getConfiguration('netc').get('path') || 'netc';
    vscode.window.showErrorMessage(
      `netc: could not start \`${path} lsp\` (${err && err.message ? err.message : err}). ` +
        'Install netc (cargo install --path . in the netc repository) or set "netc.path".'
    );
  }
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('netc.restartServer', async () => {
      if (client && client.state === State.Running) {
        await client.stop();
      }
      await start();
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('netc.path')) {
        await vscode.commands.executeCommand('netc.restartServer');
      }
    })
  );
  await start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
