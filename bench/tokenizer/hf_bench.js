// Single-thread encode throughput of Hugging Face's Rust tokenizers (npm "tokenizers", the official Node
// binding of the Rust library) on the documents bench_tokenizer gives it: one encode call per document,
// awaited one after the other, as the shared reference measurements do.
//   node hf_bench.js TOKENIZER_JSON DOCS_JSON PASSES IDS_OUT
// Prints {"seconds": [per pass]}; writes the ids of the last pass (JSON array of arrays) to IDS_OUT.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', '..', 'node_modules', 'tokenizers'));

const [tokenizerPath, docsPath, passesArg, idsOut] = process.argv.slice(2);
const docs = JSON.parse(fs.readFileSync(docsPath, 'utf8'));
const t = Tokenizer.fromFile(tokenizerPath);

(async () => {
  const seconds = [];
  let ids = [];
  for (let p = 0; p < Number(passesArg); p++) {
    ids = [];
    const start = process.hrtime.bigint();
    for (const d of docs) ids.push((await t.encode(d, null, { addSpecialTokens: false })).getIds());
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  fs.writeFileSync(idsOut, JSON.stringify(ids.map((a) => Array.from(a))));
  console.log(JSON.stringify({ seconds }));
})();
