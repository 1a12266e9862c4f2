// Tokenizes .net text with the TextMate grammar, as VS Code does, and checks the scopes of
// characteristic tokens; then tokenizes every net of the repository to catch broken rules.
// Run with `npm test` (after `npm install`).
'use strict';

const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const oniguruma = require('vscode-oniguruma');
const textmate = require('vscode-textmate');

async function registry() {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm')).buffer;
  await oniguruma.loadWASM(wasm);
  return new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () => {
      const file = path.join(__dirname, '..', 'syntaxes', 'net.tmLanguage.json');
      return textmate.parseRawGrammar(fs.readFileSync(file, 'utf8'), file);
    },
  });
}

/** Every token of `text` as [text, innermost scope]. */
function tokens(grammar, text) {
  const out = [];
  let state = textmate.INITIAL;
  for (const line of text.split('\n')) {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) {
      out.push([line.slice(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]]);
    }
    state = r.ruleStack;
  }
  return out;
}

function scopeOf(toks, text) {
  const t = toks.find(([s]) => s.trim() === text);
  assert.ok(t, `no token ${JSON.stringify(text)} in ${JSON.stringify(toks)}`);
  return t[1];
}

async function main() {
  const grammar = await (await registry()).loadGrammar('source.net');
  const sample = [
    'use "blocks.net"',
    '/// A residual net.',
    'net tiny(x: f32[N, 3, 32, 32], rate: float = 0.5) -> logits {',
    '    h = x -> conv1: conv(64, kernel: 3, pad: same) -> relu  // a comment',
    '    r = h -> add { identity | stage(64, stride: 2) } -> dropout(rate)',
    '    logits = r -> concat(axis: 1) { flatten | flatten } -> dense(10) /* end */',
    '}',
    'cell lstm_cell(hidden) { state h = zeros[hidden] step x { emit h } }',
    'const scale = 1e-3',
  ].join('\n');
  const toks = tokens(grammar, sample);
  const expect = {
    use: 'keyword.control.import.net',
    'blocks.net': 'string.quoted.double.net',
    '/// A residual net.': 'comment.line.documentation.net',
    net: 'storage.type.net.net',
    tiny: 'entity.name.type.net',
    x: 'variable.parameter.net',
    f32: 'support.type.tensor.net',
    float: 'support.type.scalar.net',
    '0.5': 'constant.numeric.float.net',
    '->': 'keyword.operator.chain.net',
    conv1: 'entity.name.label.net',
    conv: 'support.function.builtin.net',
    kernel: 'variable.parameter.net',
    same: 'constant.language.symbol.net',
    '// a comment': 'comment.line.double-slash.net',
    add: 'keyword.other.branch.net',
    '|': 'keyword.operator.branch.net',
    stage: 'entity.name.function.call.net',
    concat: 'keyword.other.branch.net',
    'end': 'comment.block.net',
    cell: 'storage.type.cell.net',
    lstm_cell: 'entity.name.function.net',
    state: 'keyword.other.cell.net',
    zeros: 'support.function.fill.net',
    emit: 'keyword.other.emit.net',
    scale: 'variable.other.constant.net',
    '1e-3': 'constant.numeric.float.net',
  };
  for (const [text, scope] of Object.entries(expect)) {
    assert.strictEqual(scopeOf(toks, text), scope, `scope of ${text}`);
  }
  // Every net of the repository tokenizes, ending outside any comment or string.
  const nets = path.join(__dirname, '..', '..', '..', 'nets');
  let count = 0;
  for (const f of fs.readdirSync(nets).filter((f) => f.endsWith('.net'))) {
    const t = tokens(grammar, fs.readFileSync(path.join(nets, f), 'utf8'));
    assert.ok(t.length > 0, f);
    count += 1;
  }
  assert.ok(count >= 19, `${count} nets`);
  console.log(`grammar: ${Object.keys(expect).length} scopes checked, ${count} nets tokenized`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
