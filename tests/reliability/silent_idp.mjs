// An OpenID provider that is up but whose token endpoint never answers, for
// the load tests (no package needed): discovery and the key set are served
// as a real IdP serves them, the authorization endpoint is never reached (the
// tests make up their callbacks), and each request to the token endpoint is
// read, logged ("token N", N counting from 1) and left open until the bridge
// gives up on it ("token closed N" once it does).
//
//   node silent_idp.mjs PORT ISSUER_PATH JWKS_FILE
//
// Prints "ready ISSUER" once it listens; stops on SIGTERM.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const [port, path, jwksFile] = process.argv.slice(2);
const iss = `http://127.0.0.1:${port}${path}`;
const jwks = readFileSync(jwksFile);
let tokens = 0;
let closed = 0;

const server = createServer((q, r) => {
  const url = q.url.split('?')[0];
  if (url === `${path}/.well-known/openid-configuration`) {
    r.setHeader('content-type', 'application/json');
    r.end(JSON.stringify({
      issuer: iss, authorization_endpoint: `${iss}/auth`, token_endpoint: `${iss}/token`,
      jwks_uri: `${iss}/certs`, response_types_supported: ['code'], subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'], code_challenge_methods_supported: ['S256'],
    }));
  } else if (url === `${path}/certs`) {
    r.setHeader('content-type', 'application/json');
    r.end(jwks);
  } else if (url === `${path}/token`) {
    console.log(`token ${++tokens}`);
    q.resume(); // read the request, answer nothing
    q.socket.on('close', () => console.log(`token closed ${++closed}`));
  } else {
    r.statusCode = 404;
    r.end();
  }
});
server.keepAliveTimeout = 0;
server.requestTimeout = 0; // never time out a request: the bridge must
server.headersTimeout = 0;
server.listen(Number(port), '127.0.0.1', () => console.log(`ready ${iss}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
