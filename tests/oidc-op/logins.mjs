// Many browser logins at a bridge at once, for fedbridge's load and fault
// tests: each one goes /login/PROVIDER -> the provider's form -> the
// callback -> return_to with a code, which the messenger backend redeems at
// POST /token. What the bridge acknowledged (a session: its refresh token;
// a logout answered 200) is appended to --out at once, one JSON line each,
// so it survives whatever happens to the bridge afterwards; so is each
// failure, with its time (t, ms since the epoch) and reason.
//
//   node logins.mjs run --bridge URL --provider NAME --return-to URL
//        --users U:P[,U:P...] --client ID --secret-file F --out FILE
//        [--count N] [--seconds S] [--concurrency C] [--logout-every K]
//     N logins (or as many as fit in S seconds) by C browsers; every K-th
//     acknowledged session is then ended at POST /logout. Prints a JSON
//     summary: attempts, ok, failed (by reason), rate, latency percentiles.
//   node logins.mjs verify --bridge URL --client ID --secret-file F --in FILE
//     Every acknowledged session must still refresh, every acknowledged
//     logout must stay ended (invalid_grant). Prints a JSON summary; exit 1
//     when anything acknowledged was lost.
import { appendFileSync, readFileSync } from 'node:fs';
import { Browser } from './flow.mjs';

const args = process.argv.slice(2);
const cmd = args.shift();
const opt = {};
while (args.length > 1 && args[0].startsWith('--')) opt[args.shift().slice(2)] = args.shift();

const basic = `Basic ${Buffer.from(`${opt.client}:${readFileSync(opt['secret-file'], 'utf8').trim()}`).toString('base64')}`;

async function backend(path, form) {
  const res = await fetch(`${opt.bridge}${path}`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  let json = {};
  try { json = JSON.parse(text); } catch { /* not JSON: the status says enough */ }
  return { status: res.status, json };
}

// Why a login did not end at return_to, in a word or two.
function reasonOf(lines) {
  const page = lines.join('\n');
  const r = /<code id="reason">([^<]*)</.exec(page);
  return `${lines[0].replace('status ', 'http_')}${r ? `:${r[1]}` : ''}`;
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : 0;
}

async function login(user, password) {
  const returnTo = opt['return-to'];
  const start = `${opt.bridge}/login/${opt.provider}?return_to=${encodeURIComponent(returnTo)}`;
  const { code, lines } = await new Browser().run('login', { user, password, stop: returnTo }, start);
  if (code !== 0) return { reason: reasonOf(lines) };
  const c = new URL(lines[0]).searchParams.get('code');
  const t = await backend('/token', { grant_type: 'authorization_code', code: c, redirect_uri: returnTo });
  if (t.status !== 200 || !t.json.refresh_token) return { reason: `token_${t.status}:${t.json.error || ''}` };
  return { session: { fid: t.json.fid, refresh_token: t.json.refresh_token } };
}

async function run() {
  const users = opt.users.split(',').map((u) => u.split(':'));
  const count = Number(opt.count || 0);
  const until = opt.seconds ? Date.now() + 1000 * Number(opt.seconds) : Infinity;
  const logoutEvery = Number(opt['logout-every'] || 0);
  const failed = {};
  const ms = [];
  let next = 0;
  let ok = 0;
  let logouts = 0;
  const t0 = Date.now();
  async function worker() {
    while ((count === 0 || next < count) && Date.now() < until) {
      const i = next++;
      const [user, password] = users[i % users.length];
      const s = performance.now();
      let r;
      try {
        r = await login(user, password);
      } catch (e) {
        r = { reason: e.cause?.code || e.message };
      }
      if (!r.session) {
        failed[r.reason] = (failed[r.reason] || 0) + 1;
        appendFileSync(opt.out, `${JSON.stringify({ kind: 'fail', i, t: Date.now(), reason: r.reason })}\n`);
        continue;
      }
      ms.push(performance.now() - s);
      ok++;
      appendFileSync(opt.out, `${JSON.stringify({ kind: 'session', i, t: Date.now(), ...r.session })}\n`);
      if (logoutEvery > 0 && ok % logoutEvery === 0) {
        try {
          const l = await backend('/logout', { refresh_token: r.session.refresh_token });
          if (l.status === 200) {
            logouts++;
            appendFileSync(opt.out, `${JSON.stringify({ kind: 'logout', i, refresh_token: r.session.refresh_token })}\n`);
          }
        } catch { /* not acknowledged: nothing to keep */ }
      }
    }
  }
  await Promise.all(Array.from({ length: Number(opt.concurrency || 8) }, worker));
  const seconds = (Date.now() - t0) / 1000;
  ms.sort((a, b) => a - b);
  const nfailed = Object.values(failed).reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({
    attempts: ok + nfailed, ok, failed: nfailed, failures: failed, logouts, seconds,
    rate: Number((ok / seconds).toFixed(1)),
    p50_ms: Math.round(percentile(ms, 0.5)), p95_ms: Math.round(percentile(ms, 0.95)),
    p99_ms: Math.round(percentile(ms, 0.99)), max_ms: Math.round(ms.length ? ms[ms.length - 1] : 0),
  }));
  return 0;
}

async function verify() {
  const records = readFileSync(opt.in, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const ended = new Set(records.filter((r) => r.kind === 'logout').map((r) => r.refresh_token));
  const todo = records.filter((r) => r.kind === 'session');
  const out = { sessions: 0, sessions_lost: 0, logouts: ended.size, logouts_lost: 0, examples: [] };
  let next = 0;
  async function worker() {
    while (next < todo.length) {
      const r = todo[next++];
      const t = await backend('/token', { grant_type: 'refresh_token', refresh_token: r.refresh_token });
      const alive = t.status === 200 && t.json.fid === r.fid;
      if (ended.has(r.refresh_token)) {
        if (alive || t.json.error !== 'invalid_grant') {
          out.logouts_lost++;
          if (out.examples.length < 5) out.examples.push(`logout of session ${r.i} undone: ${t.status} ${t.json.error || ''}`);
        }
      } else {
        out.sessions++;
        if (!alive) {
          out.sessions_lost++;
          if (out.examples.length < 5) out.examples.push(`session ${r.i} lost: ${t.status} ${t.json.error || ''}`);
        }
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  console.log(JSON.stringify(out));
  return out.sessions_lost === 0 && out.logouts_lost === 0 ? 0 : 1;
}

process.exitCode = cmd === 'run' ? await run() : cmd === 'verify' ? await verify() : 2;
