#!/usr/bin/env node
// Load generator for `dseek serve` (or any OpenAI-compatible server that streams /v1/completions).
//
// For each concurrency level, N virtual users each loop sending streaming POST /v1/completions requests
// (stream, include_usage, ignore_eos, temperature 0.8, a different seed per request) until the level's
// --duration is up; the level then waits for the requests still in flight (aborting everything at
// duration + 120 s). Per request it measures
//   TTFT = time from sending the request to the first chunk whose choices[0].text is non-empty (a request whose
//          tokens all decode to no text, as a random model's ids beyond the tokenizer's vocabulary do, is counted
//          in the tokens but not timed),
//   TPOT = (time of the last text chunk - time of the first text chunk) / (completion_tokens - 1),
// with completion_tokens taken from the final usage chunk. Per level it reports requests, errors, generated
// tokens, wall time (level start to the last completion), aggregate tokens/s = tokens / wall, p50/p95 TTFT and
// TPOT, per-stream tokens/s = 1000 / p50 TPOT, and from GET /metrics scraped before and after the level the
// delta of dseek_engine_steps_total and the mean batch = delta generation tokens / delta engine steps (engine
// steps include prefill steps, so this slightly understates the decode batch).
//
// Node 18+, no dependencies. Only talks to 127.0.0.1 / localhost.
//
// Usage:
//   node bench/serve_load.mjs --base http://127.0.0.1:8080 [--model NAME] [--levels 1,4,16,64]
//        [--duration 20] [--max-tokens 64] [--prompt TEXT] [--warmup 1] [--api-key K] [--json out.jsonl]

import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const DEFAULT_PROMPT =
  'The old lighthouse keeper climbed the narrow stairs every evening at dusk, lit the great lamp, ' +
  'and watched the ships pass safely through the dark water while he wrote long letters to his ' +
  'daughter about the storms and the sea.';

const USAGE = `usage: node bench/serve_load.mjs --base http://127.0.0.1:PORT [options]
  --base URL         server root (http://127.0.0.1:PORT or http://localhost:PORT; a trailing /v1 is accepted)
  --model NAME       "model" field of each request (default: omitted, the server's model)
  --levels LIST      concurrent streams per level, comma-separated (default 1,4,16,64)
  --duration S       seconds per level during which users start new requests (default 20)
  --max-tokens N     tokens per request, generated exactly (ignore_eos) (default 64)
  --prompt TEXT      prompt (default: a fixed 40-word English sentence)
  --warmup N         untimed requests before the first level (default 1)
  --api-key K        send 'Authorization: Bearer K'
  --json FILE        append one JSON object per level to FILE (JSON lines)`;

function die(msg) {
  console.error(`serve_load: ${msg}`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    base: null, model: null, levels: [1, 4, 16, 64], duration: 20, maxTokens: 64,
    prompt: DEFAULT_PROMPT, warmup: 1, apiKey: null, json: null,
  };
  const need = (i) => {
    if (i + 1 >= argv.length) die(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  const posInt = (name, v, min = 1) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) die(`${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inline = null;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { inline = a.slice(eq + 1); a = a.slice(0, eq); }
    const val = () => (inline !== null ? inline : need(i++));
    switch (a) {
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      case '--base': o.base = val(); break;
      case '--model': o.model = val(); break;
      case '--levels': {
        const v = val();
        o.levels = v.split(',').filter((s) => s.trim() !== '').map((s) => posInt('--levels', s.trim()));
        if (!o.levels.length) die('--levels is empty');
        break;
      }
      case '--duration': {
        const v = val();
        o.duration = Number(v);
        if (!(o.duration > 0)) die(`--duration must be > 0, got '${v}'`);
        break;
      }
      case '--max-tokens': o.maxTokens = posInt('--max-tokens', val()); break;
      case '--prompt': o.prompt = val(); break;
      case '--warmup': o.warmup = posInt('--warmup', val(), 0); break;
      case '--api-key': o.apiKey = val(); break;
      case '--json': o.json = val(); break;
      default: die(`unknown argument '${argv[i]}'\n${USAGE}`);
    }
  }
  if (!o.base) die(`--base is required\n${USAGE}`);
  let u;
  try { u = new URL(o.base); } catch { die(`--base is not a URL: '${o.base}'`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') die(`--base must be http(s), got '${u.protocol}'`);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') {
    die(`refusing to load a host other than 127.0.0.1/localhost: '${u.hostname}'`);
  }
  let path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/v1')) path = path.slice(0, -3);
  o.base = `${u.protocol}//${u.host}${path}`;
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function headers(opts) {
  const h = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
  if (opts.apiKey) h.Authorization = `Bearer ${opts.apiKey}`;
  return h;
}

let nextSeed = 1;

// One streaming completion. Resolves to {ok, ttft, tpot, tokens, end} or {ok: false, error, end}.
async function oneRequest(opts, signal) {
  const body = {
    prompt: opts.prompt,
    max_tokens: opts.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
    ignore_eos: true,
    temperature: 0.8,
    seed: nextSeed++,
  };
  if (opts.model) body.model = opts.model;
  const t0 = performance.now();
  const fail = (error) => ({ ok: false, error, end: performance.now() });
  let res;
  try {
    res = await fetch(`${opts.base}/v1/completions`, {
      method: 'POST', headers: headers(opts), body: JSON.stringify(body), signal,
    });
  } catch (e) {
    return fail(signal.aborted ? 'aborted (level time cap)' : `fetch failed: ${e.cause?.message || e.message}`);
  }
  if (res.status !== 200) {
    let text = '';
    try { text = await res.text(); } catch { /* ignore */ }
    let msg = text.trim();
    try { msg = JSON.parse(text).error?.message ?? msg; } catch { /* not JSON */ }
    return fail(`HTTP ${res.status}: ${msg.slice(0, 300)}`);
  }
  let firstText = null;
  let lastText = null;
  let tokens = null;
  let done = false;
  let error = null;
  const decoder = new TextDecoder();
  let buf = '';
  const handleEvent = (ev) => {
    const data = ev.split(/\r?\n/).filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    if (data === '') return; // comment / keep-alive
    if (data === '[DONE]') { done = true; return; }
    let obj;
    try { obj = JSON.parse(data); } catch { error = `unparseable event: ${data.slice(0, 200)}`; return; }
    if (obj.error) { error = `error event: ${obj.error.message ?? JSON.stringify(obj.error)}`; return; }
    const text = obj.choices?.[0]?.text;
    if (typeof text === 'string' && text.length > 0) {
      const t = performance.now();
      if (firstText === null) firstText = t;
      lastText = t;
    }
    if (obj.usage && typeof obj.usage.completion_tokens === 'number') tokens = obj.usage.completion_tokens;
  };
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let m;
      while (!done && !error && (m = /\r?\n\r?\n/.exec(buf))) {
        const ev = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        handleEvent(ev);
      }
      if (done || error) break;
    }
    if (!done && !error) {
      buf += decoder.decode();
      if (buf.trim() !== '') handleEvent(buf);
    }
  } catch (e) {
    return fail(signal.aborted ? 'aborted (level time cap)' : `stream failed: ${e.cause?.message || e.message}`);
  } finally {
    if (!done || error) { try { await res.body.cancel(); } catch { /* ignore */ } }
  }
  if (error) return fail(error);
  if (!done) return fail('stream ended without data: [DONE]');
  if (tokens === null) return fail('no usage chunk (stream_options.include_usage ignored?)');
  const end = performance.now();
  // every token decoded to no text (a random model's ids beyond its tokenizer's vocabulary): counted, not timed
  if (firstText === null) return { ok: true, ttft: null, tpot: null, tokens, end };
  return {
    ok: true,
    ttft: firstText - t0,
    tpot: tokens > 1 ? (lastText - firstText) / (tokens - 1) : null,
    tokens,
    end,
  };
}

async function scrapeMetrics(opts) {
  try {
    const h = {};
    if (opts.apiKey) h.Authorization = `Bearer ${opts.apiKey}`;
    const res = await fetch(`${opts.base}/metrics`, { headers: h, signal: AbortSignal.timeout(10000) });
    if (res.status !== 200) return null;
    const text = await res.text();
    const m = new Map();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const mm = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!mm) continue;
      const v = Number(mm[3]);
      if (Number.isFinite(v)) m.set(mm[1], (m.get(mm[1]) ?? 0) + v); // sums over label sets
    }
    return m;
  } catch {
    return null;
  }
}

// Linear interpolation between closest ranks (numpy's default).
function percentile(values, p) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const x = (p / 100) * (s.length - 1);
  const lo = Math.floor(x);
  const hi = Math.ceil(x);
  return s[lo] + (s[hi] - s[lo]) * (x - lo);
}

async function runLevel(opts, concurrency) {
  const before = await scrapeMetrics(opts);
  const ctrl = new AbortController();
  const start = performance.now();
  const stopAt = start + opts.duration * 1000;
  const cap = setTimeout(() => ctrl.abort(), (opts.duration + 120) * 1000);
  const results = [];
  const user = async () => {
    while (performance.now() < stopAt && !ctrl.signal.aborted) {
      const r = await oneRequest(opts, ctrl.signal);
      results.push(r);
      if (!r.ok) await sleep(100); // don't spin on a server that refuses instantly
    }
  };
  await Promise.all(Array.from({ length: concurrency }, user));
  clearTimeout(cap);
  const after = await scrapeMetrics(opts);

  const ok = results.filter((r) => r.ok);
  const errs = results.filter((r) => !r.ok);
  const tokens = ok.reduce((s, r) => s + r.tokens, 0);
  const lastEnd = ok.length ? Math.max(...ok.map((r) => r.end)) : performance.now();
  const wall = (lastEnd - start) / 1000;
  const ttfts = ok.map((r) => r.ttft).filter((v) => v !== null);
  const tpots = ok.map((r) => r.tpot).filter((v) => v !== null);
  const tpotP50 = percentile(tpots, 50);
  const delta = (name) => (before && after && before.has(name) && after.has(name)
    ? after.get(name) - before.get(name) : null);
  const steps = delta('dseek_engine_steps_total');
  const genTokens = delta('dseek_generation_tokens_total');
  return {
    concurrency,
    requests: ok.length,
    errors: errs.length,
    first_error: errs.length ? errs[0].error : null,
    tokens,
    wall_s: wall,
    tokens_per_s: wall > 0 ? tokens / wall : null,
    ttft_p50_ms: percentile(ttfts, 50),
    ttft_p95_ms: percentile(ttfts, 95),
    tpot_p50_ms: tpotP50,
    tpot_p95_ms: percentile(tpots, 95),
    per_stream_tokens_per_s: tpotP50 ? 1000 / tpotP50 : null,
    engine_steps: steps,
    server_generation_tokens: genTokens,
    mean_batch: steps && genTokens !== null ? genTokens / steps : null,
  };
}

const f = (v, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const health = await fetch(`${opts.base}/health`, { signal: AbortSignal.timeout(10000) }).catch((e) => e);
  if (health instanceof Error) die(`cannot reach ${opts.base}/health: ${health.cause?.message || health.message}`);
  if (health.status !== 200) console.error(`serve_load: warning: GET /health answered ${health.status}`);

  console.log(`serve_load: ${opts.base}, levels ${opts.levels.join(',')}, ${opts.duration} s per level, ` +
    `max_tokens ${opts.maxTokens}, prompt ${opts.prompt.split(/\s+/).filter(Boolean).length} words`);
  for (let i = 0; i < opts.warmup; i++) {
    const r = await oneRequest(opts, AbortSignal.timeout(120000));
    if (!r.ok) console.error(`serve_load: warmup request failed: ${r.error}`);
  }

  const rows = [];
  for (const c of opts.levels) {
    const r = await runLevel(opts, c);
    rows.push(r);
    console.log(`level ${c}: ${r.requests} req, ${r.errors} err, ${r.tokens} tok in ${f(r.wall_s, 2)} s = ` +
      `${f(r.tokens_per_s)} tok/s | TTFT p50 ${f(r.ttft_p50_ms)} p95 ${f(r.ttft_p95_ms)} ms | ` +
      `TPOT p50 ${f(r.tpot_p50_ms, 2)} p95 ${f(r.tpot_p95_ms, 2)} ms | per stream ${f(r.per_stream_tokens_per_s)} tok/s | ` +
      `steps ${r.engine_steps ?? 'n/a'}, mean batch ${f(r.mean_batch, 2)}`);
    if (r.first_error) console.log(`  first error: ${r.first_error}`);
    if (opts.json) {
      appendFileSync(opts.json, JSON.stringify({
        time: new Date().toISOString(), base: opts.base, model: opts.model, duration_s: opts.duration,
        max_tokens: opts.maxTokens, prompt_chars: opts.prompt.length, ...r,
      }) + '\n');
    }
  }

  console.log('');
  console.log('| streams | requests | errors | tokens | wall s | agg tok/s | TTFT p50 ms | TTFT p95 ms | ' +
    'TPOT p50 ms | TPOT p95 ms | per-stream tok/s | engine steps | mean batch |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.concurrency} | ${r.requests} | ${r.errors} | ${r.tokens} | ${f(r.wall_s, 2)} | ` +
      `${f(r.tokens_per_s)} | ${f(r.ttft_p50_ms)} | ${f(r.ttft_p95_ms)} | ${f(r.tpot_p50_ms, 2)} | ` +
      `${f(r.tpot_p95_ms, 2)} | ${f(r.per_stream_tokens_per_s)} | ${r.engine_steps ?? 'n/a'} | ${f(r.mean_batch, 2)} |`);
  }
  const failed = rows.some((r) => r.errors > 0 || r.requests === 0);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.error(`serve_load: ${e.stack || e}`);
  process.exit(1);
});
