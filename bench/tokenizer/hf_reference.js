// Reference encoder/decoder for the tokenizer tests: Hugging Face tokenizers, either the Rust library
// through its Node binding (npm "tokenizers") or tokenizers.js (npm "@huggingface/tokenizers").
//   node hf_reference.js rust|js TOKENIZER_JSON [TOKENIZER_CONFIG_JSON] < requests.jsonl > results.jsonl
// Each request line is {"encode": text, "add_special": bool} (answer: [ids]) or
// {"decode": [ids], "skip_special": bool} (answer: "text").
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

const root = path.join(__dirname, '..', '..', 'node_modules');
const [lib, tokenizerPath, configPath] = process.argv.slice(2);
if (!['rust', 'js'].includes(lib) || !tokenizerPath) {
  console.error('usage: node hf_reference.js rust|js TOKENIZER_JSON [TOKENIZER_CONFIG_JSON]');
  process.exit(2);
}

async function makeTokenizer() {
  if (lib === 'rust') {
    const { Tokenizer } = require(path.join(root, 'tokenizers'));
    const t = Tokenizer.fromFile(tokenizerPath);
    return {
      encode: async (text, special) => (await t.encode(text, null, { addSpecialTokens: special })).getIds(),
      decode: async (ids, skip) => t.decode(ids, skip),
    };
  }
  const { Tokenizer } = require(path.join(root, '@huggingface', 'tokenizers'));
  const json = JSON.parse(fs.readFileSync(tokenizerPath, 'utf8'));
  const config = configPath ? JSON.parse(fs.readFileSync(configPath, 'utf8')) : {};
  const t = new Tokenizer(json, config);
  return {
    encode: async (text, special) => t.encode(text, { add_special_tokens: special }).ids,
    decode: async (ids, skip) => t.decode(ids, { skip_special_tokens: skip }),
  };
}

(async () => {
  const t = await makeTokenizer();
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  for await (const line of rl) {
    if (!line) continue;
    const r = JSON.parse(line);
    if ('encode' in r) out.push(JSON.stringify(Array.from(await t.encode(r.encode, !!r.add_special))));
    else out.push(JSON.stringify(await t.decode(r.decode, !!r.skip_special)));
  }
  process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
})().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
