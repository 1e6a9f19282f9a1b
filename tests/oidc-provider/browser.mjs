// A scripted "browser" for fedbridge end-to-end login tests: follows redirects,
// keeps one cookie jar (persisted as JSON), fills in the provider's login form
// and its logout confirmation.  No dependencies beyond Node itself.
//
//   node browser.mjs login  --jar JAR --user U --password P --stop PREFIX URL
//   node browser.mjs logout --jar JAR [--stop PREFIX] URL
//   node browser.mjs get    --jar JAR URL
//
// Exit codes: 0 success; 1 unexpected final response (stdout: "status CODE"
// then the body, truncated at 4000 chars); 2 usage error, network error or too
// many hops (message on stderr).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

const MAX_HOPS = 20;
const BODY_LIMIT = 4000;

function die(msg, code = 2) {
  process.stderr.write(`browser: ${msg}\n`);
  process.exit(code);
}

// ---- arguments -----------------------------------------------------------
const USAGE = 'usage: browser.mjs login --jar JAR --user U --password P --stop PREFIX URL\n'
  + '       browser.mjs logout --jar JAR [--stop PREFIX] URL\n'
  + '       browser.mjs get --jar JAR URL';

function parseArgs(argv) {
  const [cmd, ...rest] = argv;
  const opts = { cmd };
  const positional = [];
  for (let i = 0; i < rest.length; i += 1) {
    const a = rest[i];
    const m = /^--(jar|user|password|stop)(?:=(.*))?$/.exec(a);
    if (m) {
      if (m[2] !== undefined) opts[m[1]] = m[2];
      else if (i + 1 < rest.length) { opts[m[1]] = rest[i + 1]; i += 1; } else die(`${a} needs a value\n${USAGE}`);
    } else if (a.startsWith('--')) {
      die(`unknown option ${a}\n${USAGE}`);
    } else {
      positional.push(a);
    }
  }
  if (!['login', 'logout', 'get'].includes(cmd)) die(USAGE);
  if (positional.length !== 1) die(`exactly one URL expected\n${USAGE}`);
  [opts.url] = positional;
  if (!opts.jar) die(`--jar is required\n${USAGE}`);
  if (cmd === 'login' && (opts.user === undefined || opts.password === undefined || !opts.stop)) {
    die(`login needs --user, --password and --stop\n${USAGE}`);
  }
  try { new URL(opts.url); } catch { die(`not a URL: ${opts.url}`); }
  return opts;
}

// ---- cookie jar ----------------------------------------------------------
// Cookies are keyed by host name WITHOUT the port, as RFC 6265 (section 8.5)
// and real browsers do: the bridge and the provider both listen on 127.0.0.1
// on different ports and share one cookie space, exactly as they would in a
// browser, so name clashes between them show up here too.  A cookie without a
// Domain attribute is host-only (sent to that exact host name only); with a
// Domain attribute it is sent to the domain and its subdomains.  Secure and
// SameSite are ignored (everything is plain http on 127.0.0.1).  Cookies
// without Expires/Max-Age are kept in the jar file too, as if the browser
// stayed open between invocations.
class Jar {
  constructor(file) {
    this.file = file;
    this.cookies = [];
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file, 'utf8');
      if (text.trim()) {
        const data = JSON.parse(text);
        this.cookies = Array.isArray(data) ? data : (data.cookies || []);
      }
    }
    this.purge();
  }

  purge() {
    const now = Date.now();
    this.cookies = this.cookies.filter((c) => c.expires == null || c.expires > now);
  }

  save() {
    this.purge();
    const tmp = `${this.file}.tmp${process.pid}`;
    fs.writeFileSync(tmp, `${JSON.stringify({ cookies: this.cookies }, null, 2)}\n`);
    fs.renameSync(tmp, this.file);
  }

  static defaultPath(url) {
    const p = url.pathname;
    if (!p.startsWith('/')) return '/';
    const i = p.lastIndexOf('/');
    return i <= 0 ? '/' : p.slice(0, i);
  }

  static pathMatch(reqPath, cookiePath) {
    if (reqPath === cookiePath) return true;
    if (!reqPath.startsWith(cookiePath)) return false;
    return cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/';
  }

  static domainMatch(host, domain) {
    return host === domain || (host.endsWith(`.${domain}`) && !/^[\d.]+$/.test(host));
  }

  store(url, header) {
    const parts = header.split(';');
    const first = parts.shift();
    const eq = first.indexOf('=');
    if (eq < 0) return;
    const name = first.slice(0, eq).trim();
    const value = first.slice(eq + 1).trim();
    if (!name) return;
    const host = url.hostname.toLowerCase();
    let domain = null;
    let path = null;
    let expires = null;
    let maxAge = null;
    for (const part of parts) {
      const i = part.indexOf('=');
      const key = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
      const val = i < 0 ? '' : part.slice(i + 1).trim();
      if (key === 'domain' && val) {
        domain = val.replace(/^\./, '').toLowerCase();
      } else if (key === 'path') {
        path = val.startsWith('/') ? val : null;
      } else if (key === 'max-age' && /^-?\d+$/.test(val)) {
        maxAge = Number(val);
      } else if (key === 'expires') {
        const t = Date.parse(val);
        if (!Number.isNaN(t)) expires = t;
      }
    }
    if (maxAge !== null) expires = maxAge <= 0 ? 0 : Date.now() + maxAge * 1000;
    if (domain && !Jar.domainMatch(host, domain)) return; // foreign domain: reject
    const cookie = {
      name,
      value,
      host: domain || host,
      hostOnly: !domain,
      path: path || Jar.defaultPath(url),
      expires,
    };
    this.cookies = this.cookies.filter((c) => !(c.name === cookie.name
      && c.host === cookie.host && c.path === cookie.path));
    if (expires === null || expires > Date.now()) this.cookies.push(cookie);
  }

  header(url) {
    this.purge();
    const host = url.hostname.toLowerCase();
    const path = url.pathname || '/';
    const matching = this.cookies
      .filter((c) => (c.hostOnly ? c.host === host : Jar.domainMatch(host, c.host)))
      .filter((c) => Jar.pathMatch(path, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

// ---- HTTP ----------------------------------------------------------------
function request(jar, method, url, body) {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const headers = {
      'user-agent': 'fedbridge-test-browser/1',
      accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
    };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    let payload;
    if (body !== undefined) {
      payload = Buffer.from(body, 'utf8');
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(payload.length);
    }
    const req = mod.request(url, { method, headers, timeout: 15000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        for (const sc of [].concat(res.headers['set-cookie'] || [])) jar.store(url, sc);
        jar.save();
        resolve({
          status: res.statusCode,
          location: res.headers.location,
          type: String(res.headers['content-type'] || ''),
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${method} ${url.href}`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

const isRedirect = (s) => s >= 300 && s < 400;

// ---- minimal HTML form parsing -------------------------------------------
function decodeEntities(s) {
  return String(s).replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (all, e) => {
    const l = e.toLowerCase();
    if (l === 'amp') return '&';
    if (l === 'lt') return '<';
    if (l === 'gt') return '>';
    if (l === 'quot') return '"';
    if (l === 'apos') return "'";
    if (l.startsWith('#x')) return String.fromCodePoint(parseInt(l.slice(2), 16));
    return String.fromCodePoint(parseInt(l.slice(1), 10));
  });
}

function attrs(tag) {
  const out = {};
  const re = /([^\s=<>"'/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g;
  const inner = tag.replace(/^<\s*[a-z]+/i, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner))) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

// Returns [{ id, action, method, inputs: [{name, value, type}], buttons: [...] }].
// Buttons and inputs outside a <form> that name it with form="ID" (as
// oidc-provider's logout page does) are attached to that form.
function parseForms(html) {
  const forms = [];
  const formRe = /<form\b[^>]*>([\s\S]*?)<\/form\s*>/gi;
  let m;
  while ((m = formRe.exec(html))) {
    const open = /^<form\b[^>]*>/i.exec(m[0])[0];
    const a = attrs(open);
    forms.push({
      id: a.id,
      action: a.action ?? '',
      method: (a.method || 'get').toUpperCase(),
      inputs: [],
      buttons: [],
      start: m.index,
      end: m.index + m[0].length,
    });
  }
  const fieldRe = /<(input|button)\b[^>]*>/gi;
  while ((m = fieldRe.exec(html))) {
    const a = attrs(m[0]);
    let form;
    if (a.form) form = forms.find((f) => f.id === a.form);
    else form = forms.find((f) => m.index > f.start && m.index < f.end);
    if (!form || !a.name) continue;
    const field = { name: a.name, value: a.value ?? '', type: (a.type || (m[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase() };
    if (m[1].toLowerCase() === 'button' || field.type === 'submit') form.buttons.push(field);
    else form.inputs.push(field);
  }
  return forms;
}

const isHtml = (res) => /html/i.test(res.type) || /^\s*<(!doctype|html)/i.test(res.body);

function printFinal(res) {
  process.stdout.write(`status ${res.status}\n`);
  const body = res.body.length > BODY_LIMIT ? `${res.body.slice(0, BODY_LIMIT)}\n[truncated]` : res.body;
  process.stdout.write(body.endsWith('\n') || body === '' ? body : `${body}\n`);
}

// ---- commands ------------------------------------------------------------
async function login(jar, opts) {
  let url = new URL(opts.url);
  let method = 'GET';
  let body;
  let formsPosted = 0;
  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    const res = await request(jar, method, url, body);
    if (isRedirect(res.status) && res.location) {
      const next = new URL(res.location, url);
      if (res.location.startsWith(opts.stop) || next.href.startsWith(opts.stop)) {
        process.stdout.write(`${next.href}\n`);
        return 0;
      }
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }
    if (res.status === 200 && isHtml(res)) {
      const form = parseForms(res.body).find((f) => f.inputs.some((i) => i.name === 'password'));
      if (form) {
        if (formsPosted > 0) {
          // the login form again: the password was refused
          printFinal(res);
          return 1;
        }
        formsPosted += 1;
        const fields = new URLSearchParams();
        let sawUser = false;
        for (const i of form.inputs) {
          if (i.type === 'password') fields.append(i.name, opts.password);
          else if (['username', 'login', 'user', 'email'].includes(i.name) && !sawUser) {
            fields.append(i.name, opts.user);
            sawUser = true;
          } else if (!['checkbox', 'radio'].includes(i.type)) fields.append(i.name, i.value);
        }
        if (!sawUser) fields.append('username', opts.user);
        url = new URL(form.action || url.href, url);
        method = form.method === 'GET' ? 'GET' : 'POST';
        if (method === 'GET') {
          url.search = fields.toString();
          body = undefined;
        } else {
          body = fields.toString();
        }
        continue;
      }
    }
    printFinal(res);
    return 1;
  }
  die(`more than ${MAX_HOPS} hops, last URL ${url.href}`);
  return 2;
}

async function logout(jar, opts) {
  let url = new URL(opts.url);
  let method = 'GET';
  let body;
  let formsPosted = 0;
  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    const res = await request(jar, method, url, body);
    if (isRedirect(res.status) && res.location) {
      const next = new URL(res.location, url);
      if (opts.stop && (res.location.startsWith(opts.stop) || next.href.startsWith(opts.stop))) {
        process.stdout.write(`${next.href}\n`);
        return 0;
      }
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }
    if (res.status === 200 && isHtml(res) && formsPosted === 0) {
      // oidc-provider's confirmation page: <form id="op.logoutForm" method="post"
      // action=".../session/end/confirm"><input type="hidden" name="xsrf" ...></form>
      // plus <button form="op.logoutForm" name="logout" value="yes">; without a
      // session it renders an auto-submitting form with xsrf and logout=yes.
      const form = parseForms(res.body).find((f) => f.inputs.some((i) => i.name === 'xsrf'));
      if (form) {
        formsPosted += 1;
        const fields = new URLSearchParams();
        for (const i of form.inputs) if (i.name !== 'logout') fields.append(i.name, i.value);
        fields.append('logout', 'yes');
        url = new URL(form.action || url.href, url);
        method = 'POST';
        body = fields.toString();
        continue;
      }
    }
    if (res.status === 200) {
      process.stdout.write(`status ${res.status}\n`);
      return 0;
    }
    printFinal(res);
    return 1;
  }
  die(`more than ${MAX_HOPS} hops, last URL ${url.href}`);
  return 2;
}

async function get(jar, opts) {
  const res = await request(jar, 'GET', new URL(opts.url));
  process.stdout.write(`status ${res.status}\n`);
  if (res.location) process.stdout.write(`location: ${res.location}\n`);
  process.stdout.write(res.body);
  return 0;
}

const opts = parseArgs(process.argv.slice(2));
let jar;
try {
  jar = new Jar(opts.jar);
} catch (err) {
  die(`cannot read jar ${opts.jar}: ${err.message}`);
}
const run = { login, logout, get }[opts.cmd];
run(jar, opts).then((code) => {
  process.exitCode = code;
}, (err) => die(err.message));
