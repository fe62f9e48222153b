#!/usr/bin/env node
// Soak test of `dseek serve`: several clients send a mix of valid, malformed, oversized and cancelled requests for
// a fixed time. Every valid request must be answered correctly (greedy and seeded requests give the text they gave
// at the start; streamed text equals the whole response's; json_object parses), every bad one must get its 4xx in
// OpenAI's error format, the server must stay up, and its memory must stay bounded (RSS sampled every 10 s).
//   node scripts/serve-soak.mjs --model DIR [--seconds 600] [--clients 6] [--threads 2]
// Prints a summary (requests by kind, failures, RSS at start / peak / end) and exits 1 on any failure.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const model = arg('model');
if (!model) { console.error('usage: serve-soak.mjs --model DIR [--seconds 600] [--clients 6] [--threads 2]'); process.exit(2); }
const seconds = Number(arg('seconds', '600')), clients = Number(arg('clients', '6'));
const bin = path.resolve(process.env.DSEEK || path.join(root, 'build/dseek'));

const server = spawn(bin, ['serve', '--model', model, '--port', '0', '--threads', arg('threads', '2'), '--parallel', '8',
                           '--max-queue', '16', '--max-body-bytes', String(1 << 20), '--prefix-cache-mib', '64'],
                     { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => { out += d; const m = out.match(/127\.0\.0\.1:(\d+)/); if (m) resolve(Number(m[1])); });
  server.on('exit', (c) => reject(new Error(`server exited with ${c}`)));
});
const base = `http://127.0.0.1:${port}/v1`;
const rssMiB = () => Number(fs.readFileSync(`/proc/${server.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;

const post = (route, body, signal) => fetch(`${base}/${route}`, { method: 'POST', signal, body: typeof body === 'string' ? body : JSON.stringify(body),
                                                                   headers: { 'Content-Type': 'application/json' } });
async function sseText(res, field) {  // the concatenated text of an SSE stream, and whether it ended with [DONE]
  const reader = res.body.getReader(), dec = new TextDecoder();
  let buf = '', text = '', done = false;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ')) continue;
      if (ev === 'data: [DONE]') { done = true; continue; }
      const j = JSON.parse(ev.slice(6));
      if (j.error) throw new Error(`error event: ${j.error.message}`);
      for (const c of j.choices) text += field(c) ?? '';
    }
  }
  return { text, done };
}

// references, computed before the load starts
const CHAT = { messages: [{ role: 'user', content: 'Speak, good sir.' }], max_tokens: 48, temperature: 0 };
const SEEDS = [1, 2, 3, 4];
const completion = (seed) => ({ prompt: 'ROMEO:', max_tokens: 40, temperature: 0.9, seed, ignore_eos: true });
const ref = { chat: (await (await post('chat/completions', CHAT)).json()).choices[0].message.content, seeded: {} };
for (const s of SEEDS) ref.seeded[s] = (await (await post('completions', completion(s))).json()).choices[0].text;

const kinds = {
  async greedy_chat() {
    const r = await post('chat/completions', CHAT);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    const c = (await r.json()).choices[0].message.content;
    if (c !== ref.chat) throw new Error(`greedy chat changed: ${JSON.stringify(c)}`);
  },
  async seeded_stream() {
    const s = SEEDS[Math.floor(Math.random() * SEEDS.length)];
    const r = await post('completions', { ...completion(s), stream: true });
    const { text, done } = await sseText(r, (c) => c.text);
    if (!done || text !== ref.seeded[s]) throw new Error(`seed ${s}: streamed ${JSON.stringify(text)} != ${JSON.stringify(ref.seeded[s])}`);
  },
  async n_logprobs_json() {
    const r = await post('chat/completions', { ...CHAT, temperature: 1, n: 2, logprobs: true, top_logprobs: 2,
                                               response_format: { type: 'json_object' }, max_tokens: 32 });
    const j = await r.json();
    if (j.choices.length !== 2) throw new Error('n');
    for (const c of j.choices) {
      JSON.parse(c.message.content);
      if (!c.logprobs.content.length) throw new Error('logprobs');
    }
  },
  async malformed() {
    const bodies = ['{"messages": [', '{"messages": 3}', '{"prompt": {"a": 1}}', '{"prompt": "x", "temperature": "hot"}',
                    '{"prompt": "x", "max_tokens": -1}', '{"prompt": "x", "n": 1.5}', '[]', '\u0000\u0001'];
    const b = bodies[Math.floor(Math.random() * bodies.length)];
    const r = await post(b.includes('messages') ? 'chat/completions' : 'completions', b);
    const j = await r.json();
    if (r.status !== 400 || !j.error || !('param' in j.error)) throw new Error(`malformed ${JSON.stringify(b)}: ${r.status}`);
  },
  async oversized() {
    const r = await post('completions', { prompt: 'x'.repeat(1.5 * (1 << 20)) });
    if (r.status !== 413) throw new Error(`oversized: ${r.status}`);
    await r.text();
  },
  async too_long() {
    const r = await post('completions', { prompt: 'ROMEO:', max_tokens: 1 << 20 });
    if (r.status !== 400) throw new Error(`too long: ${r.status}`);
    await r.text();
  },
  async cancelled() {
    const ac = new AbortController();
    const r = await post('completions', { prompt: 'ROMEO:', max_tokens: 400, ignore_eos: true, stream: true }, ac.signal);
    const reader = r.body.getReader();
    await reader.read();
    ac.abort();
  },
};
const names = Object.keys(kinds);
const stats = Object.fromEntries(names.map((k) => [k, { ok: 0, busy: 0, fail: 0 }]));
const failures = [];
const rss = { start: rssMiB(), peak: 0, samples: [] };
const t0 = Date.now();
const sampler = setInterval(() => {
  const v = rssMiB(); rss.peak = Math.max(rss.peak, v); rss.samples.push([Math.round((Date.now() - t0) / 1000), Math.round(v)]);
  const total = Object.values(stats).reduce((a, s) => a + s.ok + s.fail + s.busy, 0);
  process.stderr.write(`soak: ${Math.round((Date.now() - t0) / 1000)} s, ${total} requests, ${failures.length} failures, RSS ${v.toFixed(0)} MiB\n`);
}, 10000);
await Promise.all(Array.from({ length: clients }, async () => {
  while (Date.now() - t0 < seconds * 1000) {
    const k = names[Math.floor(Math.random() * names.length)];
    try {
      await kinds[k]();
      stats[k].ok++;
    } catch (e) {
      if (/429|busy/.test(String(e))) { stats[k].busy++; continue; }
      if (k === 'cancelled' && e.name === 'AbortError') { stats[k].ok++; continue; }
      stats[k].fail++;
      failures.push(`${k}: ${e.message}`);
    }
  }
}));
clearInterval(sampler);
const health = (await fetch(`http://127.0.0.1:${port}/health`)).status;
rss.end = rssMiB();
server.kill('SIGTERM');
const code = await new Promise((r) => server.on('exit', r));
const summary = { seconds, clients, requests: stats, failures: failures.slice(0, 10), failure_count: failures.length,
                  health_at_end: health, exit_code: code, rss_mib: { start: Math.round(rss.start), peak: Math.round(rss.peak), end: Math.round(rss.end) },
                  rss_samples: rss.samples.map(([t, v]) => `${t}s:${v}`).join(' ') };
console.log(JSON.stringify(summary, null, 1));
process.exit(failures.length || health !== 200 || code !== 0 ? 1 : 0);
