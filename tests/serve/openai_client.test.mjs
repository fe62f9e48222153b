// `dseek serve` driven by the official `openai` npm client over real HTTP on 127.0.0.1.
//
// The fixture trains its own model in ~2 s: a tokenizer and a tiny MLA + MoE model (configs/tiny.json) fine-tuned
// (dseek sft) on three chats, one of which answers with R1-style reasoning, so at temperature 0 the replies are
// known text. Run: DSEEK_BINARY=build/dseek node --test tests/serve/openai_client.test.mjs (ctest does).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const bin = path.resolve(process.env.DSEEK_BINARY || path.join(root, 'build/dseek'));
const KEY = 'test-key';
let dir, server, port, base, client, serverLog = '';

function dseek(args) {
  const r = spawnSync(bin, args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dseek ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const CHATS = [
  ['What is six times seven?', '<think>six sevens are forty-two</think>The answer is 42.'],
  ['Name a colour.', '<think>any colour will do</think>Blue.'],
  ['Say hello.', 'Hello there, friend.'],
];

// Starts `dseek serve` on a free port; resolves once it prints "listening".
export function startServer(model, extra = []) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, ['serve', '--model', model, '--port', '0', '--threads', '1', ...extra],
                    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stderr.on('data', (d) => { serverLog += d; });
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve({ proc: p, port: Number(m[1]) });
    });
    p.on('exit', (code) => reject(new Error(`server exited with ${code} before listening:\n${out}\n${serverLog}`)));
  });
}

async function metrics() {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && !k.startsWith('#')) m[k] = Number(v);
  }
  return m;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dseek-serve-'));
  fs.writeFileSync(path.join(dir, 'chats.jsonl'),
    CHATS.map(([u, a]) => JSON.stringify({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] })).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'corpus.txt'), CHATS.flat().join('\n') + '\n');
  const cfg = JSON.parse(fs.readFileSync(path.join(root, 'configs/tiny.json'), 'utf8'));
  cfg.max_position_embeddings = 4096;  // room for long requests (cancellation, SIGTERM, 429)
  fs.writeFileSync(path.join(dir, 'tiny.json'), JSON.stringify(cfg));
  dseek(['tokenizer', 'train', '--vocab-size', '512', '--input', 'corpus.txt', '--out', 'tok']);
  dseek(['init', '--config', 'tiny.json', '--tokenizer', 'tok', '--out', 'init']);
  dseek(['sft', '--model', 'init', '--data', 'chats.jsonl', '--out', 'run', '--steps', '300', '--lr', '3e-3',
         '--batch-size', '4', '--seq-len', '64', '--threads', '1']);
  ({ proc: server, port } = await startServer('run/final', ['--api-key', KEY, '--served-model-name', 'tiny',
                                                            '--parallel', '4', '--max-queue', '2']));
  base = `http://127.0.0.1:${port}`;
  client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 60000 });
});

after(() => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const ask = (content, extra = {}) =>
  client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content }], temperature: 0, ...extra });

test('models, health and metrics', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['tiny']);
  const h = await fetch(`${base}/health`);
  assert.equal(h.status, 200);
  assert.equal((await metrics()).dseek_ready, 1);
});

test('chat: reasoning_content apart from content, usage', async () => {
  const r = await ask('What is six times seven?', { max_tokens: 40 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  const c = r.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.equal(c.message.reasoning_content, 'six sevens are forty-two');
  assert.equal(c.message.content, 'The answer is 42.');
  assert.equal(c.finish_reason, 'stop');
  // the prompt is the chat template's rendering; dseek chat-template renders the same conversation
  // and dseek tokenize encodes, so usage.prompt_tokens is its length
  const rendered = spawnSync(bin, ['chat-template', '--tokenizer', 'run/final', '--add-generation-prompt'], { cwd: dir,
    encoding: 'utf8', input: JSON.stringify([{ role: 'user', content: 'What is six times seven?' }]) + '\n' });
  assert.equal(rendered.status, 0, rendered.stderr);
  const ids = spawnSync(bin, ['tokenize', '--tokenizer', 'run/final'], { cwd: dir, encoding: 'utf8', input: rendered.stdout });
  assert.equal(r.usage.prompt_tokens, JSON.parse(ids.stdout).length);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  const plain = await ask('Say hello.', { max_tokens: 40 });
  assert.equal(plain.choices[0].message.content, 'Hello there, friend.');
  assert.equal(plain.choices[0].message.reasoning_content, undefined);
});

test('chat streaming: role first, one id, reasoning deltas, finish chunk, usage chunk, equal to non-streamed', async () => {
  const stream = await ask('What is six times seven?', { max_tokens: 40, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const ch of stream) chunks.push(ch);
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  let reasoning = '', content = '';
  for (const ch of chunks) for (const c of ch.choices) {
    reasoning += c.delta.reasoning_content ?? '';
    content += c.delta.content ?? '';
  }
  assert.equal(reasoning, 'six sevens are forty-two');
  assert.equal(content, 'The answer is 42.');
  const withFinish = chunks.filter((ch) => ch.choices.length && ch.choices[0].finish_reason);
  assert.equal(withFinish.length, 1);
  assert.equal(withFinish[0].choices[0].finish_reason, 'stop');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  const whole = await ask('What is six times seven?', { max_tokens: 40 });
  assert.deepEqual(last.usage, whole.usage);
  assert.ok(chunks.indexOf(withFinish[0]) < chunks.length - 1);
});

test('completions: seed reproducibility, streamed equals non-streamed, alone and 4 at once', async () => {
  const req = (seed, stream) => client.completions.create({ model: 'tiny', prompt: 'Blue', max_tokens: 48, temperature: 1.0,
                                                            seed, stream, ignore_eos: true });
  const text = async (seed, stream) => {
    const r = await req(seed, stream);
    if (!stream) return r.choices[0].text;
    let s = '';
    for await (const ch of r) s += ch.choices[0]?.text ?? '';
    return s;
  };
  const a = await text(7, false);
  assert.equal(await text(7, false), a);
  assert.equal(await text(7, true), a);
  assert.notEqual(await text(8, false), a);
  const together = await Promise.all([text(7, true), text(7, false), text(9, true), text(9, false)]);
  assert.equal(together[0], a);
  assert.equal(together[1], a);
  assert.equal(together[2], together[3]);
});

test('n choices: one prompt, independent samples, usage counts every choice', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Say', max_tokens: 16, temperature: 1.0, n: 3,
                                             seed: 3, ignore_eos: true });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(r.usage.completion_tokens, 48);
  assert.ok(new Set(r.choices.map((c) => c.text)).size > 1);
  const one = await client.completions.create({ model: 'tiny', prompt: 'Say', max_tokens: 16, temperature: 1.0, seed: 3,
                                               ignore_eos: true });
  assert.equal(one.choices[0].text, r.choices[0].text);  // choice 0 samples with the request's seed
});

test('logprobs: chosen token first at temperature 0, top list sorted, probabilities below 1', async () => {
  const r = await ask('Name a colour.', { max_tokens: 20, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.ok(content.length > 3);
  for (const e of content) {
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].token, e.token);
    assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6);
    for (let i = 1; i < 3; i++) assert.ok(e.top_logprobs[i].logprob <= e.top_logprobs[i - 1].logprob);
    assert.ok(e.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0) <= 1 + 1e-5);
    assert.equal(Buffer.from(e.bytes).toString('utf8'), e.token);
  }
  // the tokens spell the reply (the fixture's model may not have learnt this chat exactly)
  const m = (await ask('Name a colour.', { max_tokens: 20 })).choices[0].message;
  const spelled = content.map((e) => e.token).join('');
  assert.equal(spelled, m.reasoning_content === undefined ? m.content : `<think>${m.reasoning_content}</think>${m.content}`);
  const c = await client.completions.create({ model: 'tiny', prompt: 'Blue', max_tokens: 5, logprobs: 2, temperature: 0,
                                             ignore_eos: true });
  const lp = c.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.tokens.join(''), c.choices[0].text);
  assert.deepEqual(lp.text_offset, lp.tokens.map((t, i) => lp.tokens.slice(0, i).join('').length));
});

test('stop strings end the text before them', async () => {
  const r = await ask('What is six times seven?', { max_tokens: 40, stop: ['forty'] });
  assert.equal(r.choices[0].message.reasoning_content, 'six sevens are ');
  assert.equal(r.choices[0].message.content, '');
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await ask('Say hello.', { max_tokens: 40, stop: 'friend', stream: true });
  let text = '';
  for await (const ch of s) text += ch.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'Hello there, ');
});

test('response_format json_object: the output parses, whatever the model would say', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = await ask('Say hello.', { max_tokens: 24, temperature: 1.0, seed, response_format: { type: 'json_object' } });
    const v = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof v, 'object');
    assert.ok(!Array.isArray(v) && v !== null);
  }
});

test('errors: 401, 400 naming the field, context overflow, 404 model, malformed JSON, 413', async () => {
  const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${base}/v1`, maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(ask('hi', { temperature: 7 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature' && /temperature/.test(e.message));
  await assert.rejects(ask('hi', { max_tokens: 5000 }),
    (e) => e instanceof OpenAI.BadRequestError && /4096/.test(e.message) && /5000/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(ask('hi', { n: 'three' }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: [{ content: 'hi' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[0].role');
  const post = (body) => fetch(`${base}/v1/chat/completions`, { method: 'POST', body,
    headers: { 'Authorization': `Bearer ${KEY}`, 'Content-Type': 'application/json' } });
  for (const body of ['{"messages": [', 'null', '[1,2]', '{"messages": "hi"}', '{"messages": [{"role": "user", "content": 5}]}']) {
    const r = await post(body);
    assert.equal(r.status, 400, body);
    const e = (await r.json()).error;
    for (const k of ['message', 'type', 'param', 'code']) assert.ok(k in e, `${k} in ${JSON.stringify(e)}`);
  }
  const big = await post(JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(9 << 20) }] }));
  assert.equal(big.status, 413);
  assert.match((await big.json()).error.message, /max-body-bytes/);
  assert.equal((await fetch(`${base}/health`)).status, 200);  // still up
});

test('429 when the queue is full; a client that disconnects frees its slot at once', async () => {
  // 4 running (--parallel 4) and 2 waiting (--max-queue 2) fit; the next one is refused. Stepwise, so that the
  // slots are known to be full whatever the machine's speed.
  const until = async (cond) => {
    for (let i = 0; i < 500; i++) {
      if (cond(await metrics())) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('timed out waiting for the server');
  };
  const ac = new AbortController();
  const long = () => client.completions.create({ model: 'tiny', prompt: 'Say', max_tokens: 4000, ignore_eos: true,
                                                  stream: true }, { signal: ac.signal }).catch((e) => e);
  const running = Array.from({ length: 4 }, long);
  await until((m) => m.dseek_sequences_running === 4);
  const waiting = Array.from({ length: 2 }, long);
  await until((m) => m.dseek_requests_waiting === 2);
  await assert.rejects(long().then((e) => { throw e; }), (e) => e instanceof OpenAI.RateLimitError && e.status === 429);
  ac.abort();
  await Promise.all([...running, ...waiting]);
  // every accepted request has ended (cancelled once its client's socket is found closed)
  await until((m) => m.dseek_requests_finished_total === m.dseek_requests_submitted_total);

  const before = await metrics();
  const ac2 = new AbortController();
  const stream = await client.completions.create({ model: 'tiny', prompt: 'Say', max_tokens: 4000, ignore_eos: true,
                                                  stream: true }, { signal: ac2.signal });
  try {
    for await (const ch of stream) { ac2.abort(); }
  } catch (e) { /* aborted */ }
  let m;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    m = await metrics();
    if (m.dseek_sequences_running === 0) break;
  }
  assert.equal(m.dseek_sequences_running, 0);
  assert.equal(m.dseek_requests_cancelled_total, before.dseek_requests_cancelled_total + 1);
  assert.ok(m.dseek_generation_tokens_total - before.dseek_generation_tokens_total < 2000,
            `${m.dseek_generation_tokens_total - before.dseek_generation_tokens_total} tokens after the abort`);
});

test('a client that leaves a non-streamed request frees its slot too (heartbeat writes notice it)', async () => {
  const before = await metrics();
  const ac = new AbortController();
  const r = client.completions.create({ model: 'tiny', prompt: 'Say', max_tokens: 4000, ignore_eos: true },
                                      { signal: ac.signal }).catch((e) => e);
  await new Promise((res) => setTimeout(res, 100));
  ac.abort();
  await r;
  let m;
  for (let i = 0; i < 300; i++) {
    m = await metrics();
    if (m.dseek_requests_cancelled_total > before.dseek_requests_cancelled_total && m.dseek_sequences_running === 0) break;
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.equal(m.dseek_requests_cancelled_total, before.dseek_requests_cancelled_total + 1);
  assert.equal(m.dseek_sequences_running, 0);
});

test('prefix cache: a repeated long prompt is served from cached blocks with the same output', async () => {
  const prompt = 'Blue. '.repeat(60);
  const a = await client.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0, ignore_eos: true });
  const b = await client.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0, ignore_eos: true });
  assert.equal(a.usage.prompt_tokens_details.cached_tokens, 0);
  const P = b.usage.prompt_tokens;
  assert.equal(b.usage.prompt_tokens_details.cached_tokens, Math.floor((P - 1) / 32) * 32);
  assert.equal(b.choices[0].text, a.choices[0].text);
});

test('a model folder the server cannot load is one clear error and exit 1, not a hang', async () => {
  dseek(['init', '--config', 'tiny.json', '--out', 'no-tokenizer']);
  const p = spawn(bin, ['serve', '--model', 'no-tokenizer', '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => { p.kill('SIGKILL'); resolve('hung'); }, 20000);
    p.on('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.equal(code, 1, err);
  assert.match(err, /dseek: error: .*no tokenizer\.json/);
  // a port in use (the running server's) is an error naming the flag
  const busy = spawnSync(bin, ['serve', '--model', 'run/final', '--port', String(port)], { cwd: dir, encoding: 'utf8',
                                                                                        timeout: 20000 });
  assert.equal(busy.status, 1, busy.stderr);
  assert.match(busy.stderr, new RegExp(`--port ${port}: cannot listen`));
});

test('SIGTERM: running requests finish, then the process exits 0', async () => {
  const running = client.completions.create({ model: 'tiny', prompt: 'Say', max_tokens: 2500, ignore_eos: true });
  await new Promise((r) => setTimeout(r, 30));
  const exited = new Promise((r) => server.on('exit', (code) => r(code)));
  server.kill('SIGTERM');
  const r = await running;
  assert.equal(r.usage.completion_tokens, 2500);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(await exited, 0);
});
