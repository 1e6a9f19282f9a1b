// A small, real OpenID provider for fedbridge end-to-end tests, built on
// panva/oidc-provider 9 (OpenID-certified).
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json: { port, host, issuer, keys?, clients: [...], users: [...] }
// (see README.md).  Prints exactly one line "ready ISSUER" on stdout once it
// listens, logs everything else on stderr, exits 0 on SIGTERM/SIGINT.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';

// oidc-provider prints its development notices with console.info (stdout).
// stdout belongs to the "ready" line alone, so send all console output to stderr.
console.info = console.error;
console.log = console.error;

function fail(msg) {
  process.stderr.write(`provider: ${msg}\n`);
  process.exit(2);
}

if (process.argv.length !== 3) fail('usage: node provider.mjs CONFIG.json');

let config;
try {
  config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
} catch (err) {
  fail(`cannot read config ${process.argv[2]}: ${err.message}`);
}

const host = config.host || '127.0.0.1';
const users = Array.isArray(config.users) ? config.users : [];
const usersBySub = new Map(users.map((u) => [String(u.sub), u]));

// ---- signing keys --------------------------------------------------------
function loadKeys() {
  if (config.keys) {
    let jwks;
    try {
      jwks = JSON.parse(fs.readFileSync(config.keys, 'utf8'));
    } catch (err) {
      fail(`cannot read keys ${config.keys}: ${err.message}`);
    }
    if (!jwks || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
      fail(`keys file ${config.keys} is not a JWKS with a "keys" array`);
    }
    for (const k of jwks.keys) {
      if (!k.d) fail(`keys file ${config.keys}: key ${k.kid || '?'} has no private part`);
    }
    return jwks;
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = crypto.createHash('sha256').update(jwk.n).digest('base64url').slice(0, 16);
  return { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] };
}

// ---- clients -------------------------------------------------------------
function normalizeClient(c) {
  const client = { ...c };
  client.response_types ??= ['code'];
  client.grant_types ??= ['authorization_code', 'refresh_token'];
  client.token_endpoint_auth_method ??= 'client_secret_basic';
  client.id_token_signed_response_alg ??= 'RS256';
  return client;
}

// ---- accounts ------------------------------------------------------------
async function findAccount(ctx, sub) {
  const user = usersBySub.get(String(sub));
  if (!user) return undefined;
  return {
    accountId: String(user.sub),
    // oidc-provider filters these by the granted scopes / claims.
    async claims() {
      return { ...(user.claims || {}), sub: String(user.sub) };
    },
  };
}

// ---- HTML ----------------------------------------------------------------
function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (ch) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[ch]);
}

function loginPage(uid, clientId, error, username) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Sign-in</title></head>
<body>
<h1>Sign in to ${esc(clientId)}</h1>
${error ? `<p class="error" id="error">${esc(error)}</p>` : ''}
<form method="POST" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <input type="text" name="username" placeholder="username" value="${esc(username)}" autofocus>
  <input type="password" name="password" placeholder="password">
  <button type="submit">Sign-in</button>
</form>
</body>
</html>
`;
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 64 * 1024) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---- interactions --------------------------------------------------------
let provider; // set once the server listens (the issuer may depend on the port)

// Grants whatever the consent prompt says is missing: test users consent implicitly.
async function autoConsent(req, res, details) {
  const { prompt, params, session, grantId: existing } = details;
  let grant;
  if (existing) grant = await provider.Grant.find(existing);
  if (!grant) {
    grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  const missing = prompt.details || {};
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  const consent = existing ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, url) {
  const m = /^\/interaction\/([^/]+)(\/login)?\/?$/.exec(url.pathname);
  if (!m) return send(res, 404, 'not found\n', 'text/plain; charset=utf-8');
  const [, uid, login] = m;

  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    // expired / unknown interaction, or its cookie is missing
    process.stderr.write(`provider: interaction ${uid}: ${err.message}\n`);
    return send(res, 400, `interaction not found: ${esc(err.message)}\n`, 'text/plain; charset=utf-8');
  }
  if (details.uid !== uid) {
    return send(res, 400, 'interaction mismatch\n', 'text/plain; charset=utf-8');
  }
  const { prompt, params } = details;

  if (!login && req.method === 'GET') {
    if (prompt.name === 'login') return send(res, 200, loginPage(uid, params.client_id));
    if (prompt.name === 'consent') return autoConsent(req, res, details);
    return send(res, 400, `unsupported prompt ${esc(prompt.name)}\n`, 'text/plain; charset=utf-8');
  }

  if (login && req.method === 'POST') {
    if (prompt.name !== 'login') {
      return send(res, 400, 'no login expected here\n', 'text/plain; charset=utf-8');
    }
    const form = new URLSearchParams(await readBody(req));
    const username = form.get('username') || '';
    const password = form.get('password') || '';
    const user = users.find((u) => u.username === username);
    const ok = user && typeof user.password === 'string'
      && user.password.length === password.length
      && crypto.timingSafeEqual(Buffer.from(user.password), Buffer.from(password));
    if (!ok) {
      return send(res, 200, loginPage(uid, params.client_id, 'Invalid username or password.', username));
    }
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: String(user.sub) } },
      { mergeWithLastSubmission: false },
    );
  }

  return send(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8');
}

// ---- server --------------------------------------------------------------
let callback;
const server = http.createServer((req, res) => {
  if (!provider) return send(res, 503, 'starting\n', 'text/plain; charset=utf-8');
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/interaction' || url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((err) => {
      process.stderr.write(`provider: interaction error: ${err.stack || err}\n`);
      if (!res.headersSent) send(res, 500, 'internal error\n', 'text/plain; charset=utf-8');
      else res.end();
    });
    return undefined;
  }
  return callback(req, res);
});

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.on('error', (err) => fail(`listen: ${err.message}`));

server.listen(Number(config.port) || 0, host, () => {
  const { port } = server.address();
  let issuer = config.issuer;
  if (!issuer || !Number(config.port)) {
    // port 0: the real port is known only now
    const hostPart = host.includes(':') ? `[${host}]` : host;
    issuer = issuer
      ? issuer.replace(/:(0|PORT)(?=\/|$)/, `:${port}`)
      : `http://${hostPart}:${port}`;
  }
  issuer = issuer.replace(/\/$/, '');

  try {
    provider = new Provider(issuer, {
      clients: (config.clients || []).map(normalizeClient),
      findAccount,
      jwks: loadKeys(),
      cookies: {
        // a random signing key per run; plain http on 127.0.0.1, so never Secure
        keys: [crypto.randomBytes(32).toString('base64url')],
        long: { httpOnly: true, sameSite: 'lax', secure: false },
        short: { httpOnly: true, sameSite: 'lax', secure: false },
      },
      responseTypes: ['code'],
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
      claims: {
        acr: null,
        sid: null,
        auth_time: null,
        iss: null,
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name'],
        groups: ['groups', 'department', 'employee_number'],
      },
      // put the claims of the requested scopes into the ID token itself
      conformIdTokenClaims: false,
      // S256 only is what oidc-provider 9 accepts; require it for every client
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        rpInitiatedLogout: { enabled: true },
        backchannelLogout: { enabled: true },
        userinfo: { enabled: true },
        revocation: { enabled: true },
        introspection: { enabled: true },
      },
      // oidc-provider 9 guards its outgoing requests (back-channel logout
      // tokens among them) against SSRF: a dispatcher that refuses loopback and
      // private addresses.  Our relying parties live on 127.0.0.1, so drop it.
      fetch(url, options) {
        const { dispatcher, ...rest } = options;
        return globalThis.fetch(url, rest);
      },
      interactions: {
        url: (ctx, interaction) => `/interaction/${interaction.uid}`,
      },
      renderError(ctx, out) {
        ctx.type = 'html';
        ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>error</title></head><body>${
          Object.entries(out).map(([k, v]) => `<p><b>${esc(k)}</b>: ${esc(v)}</p>`).join('')}</body></html>\n`;
      },
    });
  } catch (err) {
    fail(`configuration: ${err.stack || err.message}`);
  }

  for (const ev of ['server_error', 'backchannel.error', 'authorization.error', 'grant.error',
    'end_session.error', 'userinfo.error', 'introspection.error']) {
    provider.on(ev, (...args) => {
      const err = args.find((a) => a instanceof Error);
      process.stderr.write(`provider: ${ev}: ${err ? `${err.message}${err.error_description ? ` (${err.error_description})` : ''}` : ''}\n`);
    });
  }
  provider.on('backchannel.success', (ctx, client, accountId, sid) => {
    process.stderr.write(`provider: back-channel logout sent to ${client.clientId} sub=${accountId} sid=${sid}\n`);
  });

  callback = provider.callback();
  process.stdout.write(`ready ${issuer}\n`);
});
