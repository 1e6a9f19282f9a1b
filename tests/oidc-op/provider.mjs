// A real OpenID provider for fedbridge's end-to-end login tests: panva's
// oidc-provider (OpenID-certified), configured from a JSON file, with its own
// login form that checks a password. Consent is implied for the configured
// clients (as for a company's own applications).
//
//   node provider.mjs CONFIG.json
//
// CONFIG: { host, port, issuer, clients: [client metadata...],
//           users: [{ sub, username, password, claims: {...} }],
//           jwks_down_file: PATH (optional) }
// Each start signs with a new RSA key (a new kid), as an IdP rotating its
// key would. While the file jwks_down_file names exists, the key set
// endpoint answers 503 (the fault tests' IdP outage).
// Prints "ready ISSUER" once it listens; stops on SIGTERM.
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(config.users.map((u) => [u.username, u]));
const bySub = new Map(config.users.map((u) => [u.sub, u]));
const scopeClaims = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name'],
  groups: ['groups', 'department', 'employee_number'],
};

const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256',
};

const provider = new Provider(config.issuer, {
  jwks: { keys: [signingKey] },
  clients: config.clients.map((c) => ({ response_types: ['code'], grant_types: ['authorization_code'], ...c })),
  claims: scopeClaims,
  scopes: Object.keys(scopeClaims),
  // The test's mapping reads groups and department from the ID token itself.
  conformIdTokenClaims: false,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
  },
  pkce: { required: () => true },
  // oidc-provider refuses to call special-use addresses (SSRF protection); in
  // this test every party is on loopback, so its back-channel logout calls
  // go out without that dispatcher, and only to loopback.
  fetch(url, options) {
    if (new URL(url).hostname !== '127.0.0.1') throw new Error(`not a loopback URL: ${url}`);
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...u.claims }) };
  },
  // Consent is implied: every scope and claim the client asks for is granted.
  async loadExistingGrant(ctx) {
    const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (id) return ctx.oidc.provider.Grant.find(id);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(Object.keys(scopeClaims).join(' '));
    grant.addOIDCClaims(Object.values(scopeClaims).flat());
    await grant.save();
    return grant;
  },
});

// What the tests may need to see when something goes wrong.
provider.on('backchannel.error', (ctx, err, client) => console.error(`backchannel logout to ${client.clientId} failed: ${err.message} ${err.cause ? err.cause.message || err.cause.code : ""}`));
provider.on('backchannel.success', (ctx, client) => console.error(`backchannel logout sent to ${client.clientId}`));
provider.on('end_session.success', () => console.error('end_session: success'));
provider.on('server_error', (ctx, err) => console.error(`server_error: ${err.message}`));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function loginPage(res, uid, error) {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>Sign in</title></head><body>
<h1>Corporate sign-in</h1>${error ? `<p id="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<input name="username" autocomplete="username"> <input name="password" type="password">
<button type="submit">Sign in</button></form></body></html>`);
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let s = '';
    req.on('data', (d) => { s += d; if (s.length > 65536) reject(new Error('body too large')); });
    req.on('end', () => resolve(new URLSearchParams(s)));
  });
}

function passwordOk(user, given) {
  const a = Buffer.from(user ? user.password : 'x');
  const b = Buffer.from(given || '');
  return user && a.length === b.length && timingSafeEqual(a, b);
}

const callback = provider.callback();
const server = createServer(async (req, res) => {
  if (config.jwks_down_file && req.url.split('?')[0] === '/jwks' && existsSync(config.jwks_down_file)) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    return res.end('key set unavailable\n');
  }
  const m = /^\/interaction\/([^/?]+)(\/login)?$/.exec(req.url.split('?')[0]);
  if (!m) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== m[1] || details.prompt.name !== 'login') {
      // Only the login prompt needs the user: anything else is finished as is.
      return await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
    }
    if (req.method !== 'POST' || !m[2]) return loginPage(res, details.uid);
    const form = await readForm(req);
    const user = users.get(form.get('username'));
    if (!passwordOk(user, form.get('password'))) return loginPage(res, details.uid, 'Wrong user name or password.');
    return await provider.interactionFinished(req, res, { login: { accountId: user.sub } },
      { mergeWithLastSubmission: false });
  } catch (e) {
    console.error(`interaction: ${e.message}`);
    res.writeHead(400, { 'content-type': 'text/plain' });
    return res.end(`interaction failed: ${e.message}`);
  }
});

server.listen(config.port, config.host || '127.0.0.1', () => console.log(`ready ${config.issuer}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
