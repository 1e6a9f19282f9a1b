// A scripted browser for fedbridge's end-to-end login tests: follows
// redirects across hosts with one cookie jar (a JSON file, so several runs
// share it), fills in the provider's login form, confirms its logout page,
// and submits the self-posting forms of the SAML HTTP-POST binding (what a
// browser's JavaScript would do).
//
//   node browser.mjs login --jar JAR --user U --password P --stop PREFIX URL
//       prints the first redirect target that starts with PREFIX (exit 0);
//       any other end prints "status CODE" and the page (exit 1)
//       --print-saml-response 1: at the SAML POST form, print SAMLResponse, RelayState
//       and the form's action (one a line) instead of posting it (exit 0)
//   node browser.mjs logout --jar JAR URL
//       RP-initiated logout at the provider: confirms and follows to the end (exit 0 on 200)
//
// Cookies are kept by host and path, as RFC 6265 says (ports do not separate
// them); Secure and SameSite are ignored: everything here is http on loopback.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const args = process.argv.slice(2);
const cmd = args.shift();
const opt = {};
while (args.length > 1 && args[0].startsWith('--')) opt[args.shift().slice(2)] = args.shift();
const start = args[0];

const jar = opt.jar && existsSync(opt.jar) ? JSON.parse(readFileSync(opt.jar, 'utf8')) : [];
const save = () => opt.jar && writeFileSync(opt.jar, JSON.stringify(jar));

function store(url, setCookies) {
  for (const line of setCookies) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = '/';
    let expired = false;
    for (const a of attrs) {
      const [k, v] = a.split('=');
      if (k.toLowerCase() === 'path' && v) path = v;
      if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
    }
    const i = jar.findIndex((c) => c.host === url.hostname && c.path === path && c.name === name);
    if (i >= 0) jar.splice(i, 1);
    if (!expired) jar.push({ host: url.hostname, path, name, value });
  }
}

function cookieHeader(url) {
  return jar.filter((c) => c.host === url.hostname && (url.pathname === c.path
      || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
    .map((c) => `${c.name}=${c.value}`).join('; ');
}

async function request(url, method = 'GET', body = undefined) {
  const headers = { cookie: cookieHeader(url) };
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  store(url, res.headers.getSetCookie());
  save();
  return res;
}

// The first form of the page with its action and inputs (name -> value).
function parseForm(html, base) {
  const f = /<form([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!f) return null;
  const action = (/action="([^"]*)"/i.exec(f[1]) || [])[1] || base.href;
  const inputs = {};
  const unescape = (v) => v.replace(/&quot;/g, '"').replace(/&#0?39;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCharCode(Number(d))).replace(/&amp;/g, '&');
  for (const m of f[2].matchAll(/<input([^>]*)>/gi)) {
    const name = (/name="([^"]*)"/i.exec(m[1]) || [])[1];
    if (name) inputs[name] = unescape((/value="([^"]*)"/i.exec(m[1]) || [])[1] || '');
  }
  return { action: new URL(action.replace(/&amp;/g, '&'), base), inputs };
}

async function run() {
  let url = new URL(start);
  let method = 'GET';
  let body;
  let submittedLogin = false;
  for (let hop = 0; hop < 20; hop++) {
    const res = await request(url, method, body);
    method = 'GET';
    body = undefined;
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, url);
      if (opt.stop && next.href.startsWith(opt.stop)) {
        console.log(next.href);
        return 0;
      }
      url = next;
      continue;
    }
    const text = await res.text();
    const form = res.status === 200 ? parseForm(text, url) : null;
    if (cmd === 'login' && form && 'password' in form.inputs && !submittedLogin) {
      submittedLogin = true;
      form.inputs.username = opt.user;
      form.inputs.password = opt.password;
      url = form.action;
      method = 'POST';
      body = new URLSearchParams(form.inputs).toString();
      continue;
    }
    if (form && ('SAMLResponse' in form.inputs || 'SAMLRequest' in form.inputs)) {
      if (opt['print-saml-response'] && 'SAMLResponse' in form.inputs) {
        console.log(form.inputs.SAMLResponse);
        console.log(form.inputs.RelayState || '');
        console.log(form.action.href);
        return 0;
      }
      url = form.action;
      method = 'POST';
      body = new URLSearchParams(form.inputs).toString();
      continue;
    }
    if (cmd === 'logout' && form && 'xsrf' in form.inputs) {
      form.inputs.logout = 'yes';
      url = form.action;
      method = 'POST';
      body = new URLSearchParams(form.inputs).toString();
      continue;
    }
    console.log(`status ${res.status}`);
    console.log(text.slice(0, 4000));
    return cmd === 'logout' && res.status === 200 ? 0 : 1;
  }
  console.error('more than 20 hops');
  return 2;
}

process.exitCode = await run();
