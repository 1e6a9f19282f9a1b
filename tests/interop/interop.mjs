#!/usr/bin/env node
// fedbridge federation tokens checked with an independent JOSE implementation
// (panva/jose), both ways:
//
//   node interop.mjs verify --jwks FILE --issuer URL --audience TID --token TOKEN
//       verifies a token fedbridge issued (signature, typ fed+jwt, iss, aud,
//       time) and that it holds exactly the contract's header and claims;
//       prints the payload as JSON.
//   node interop.mjs sign --key PEM_FILE --kid KID --alg ES256|EdDSA
//                         --claims JSON_FILE_OR_STRING [--extra-header JSON]
//       signs the claims as given (nothing added) with the PKCS#8 private key
//       under the protected header {alg, typ: "fed+jwt", kid}; prints the
//       compact token. --extra-header adds members to that header, only to
//       make tokens the contract forbids.
//
// Exits 0 on success, 1 with "interop: ..." on standard error on any failure,
// 2 on a usage error.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, importPKCS8, jwtVerify, SignJWT } from 'jose';

const ALGS = ['ES256', 'EdDSA'];
const TYP = 'fed+jwt';
const HEADER = ['alg', 'kid', 'typ'];
const REQUIRED = ['attrs', 'aud', 'cnf', 'exp', 'iat', 'iss', 'jti', 'nbf', 'sid', 'sub', 'tid'];
const OPTIONAL = ['acr', 'amr', 'idp'];

class Failure extends Error {}

function usage(msg) {
	process.stderr.write(
		`interop: ${msg}\n` +
			'usage: node interop.mjs verify --jwks FILE --issuer URL --audience TID --token TOKEN\n' +
			'       node interop.mjs sign --key PEM_FILE --kid KID --alg ES256|EdDSA ' +
			'--claims JSON_FILE_OR_STRING [--extra-header JSON]\n',
	);
	process.exit(2);
}

function parseArgs(argv, names) {
	const out = {};
	for (let i = 0; i < argv.length; i += 2) {
		const flag = argv[i];
		if (!flag.startsWith('--') || !names.includes(flag.slice(2))) usage(`unknown option ${flag}`);
		if (i + 1 >= argv.length) usage(`${flag} needs a value`);
		out[flag.slice(2)] = argv[i + 1];
	}
	return out;
}

function need(opts, names) {
	for (const n of names) if (opts[n] === undefined || opts[n] === '') usage(`--${n} is required`);
}

function isObject(v) {
	return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactly(what, obj, required, optional = []) {
	const keys = Object.keys(obj);
	const extra = keys.filter((k) => !required.includes(k) && !optional.includes(k));
	const missing = required.filter((k) => !keys.includes(k));
	if (extra.length) throw new Failure(`${what} has members outside the contract: ${extra.join(', ')}`);
	if (missing.length) throw new Failure(`${what} lacks ${missing.join(', ')}`);
}

function nonEmptyString(name, v) {
	if (typeof v !== 'string' || v.length === 0) throw new Failure(`${name} must be a non-empty string`);
}

// The contract's shape beyond what jwtVerify already enforced.
function checkContract(header, payload) {
	exactly('the protected header', header, HEADER);
	if (header.typ !== TYP) throw new Failure(`typ is ${JSON.stringify(header.typ)}, not ${TYP}`);
	if (!ALGS.includes(header.alg)) throw new Failure(`alg ${header.alg} is not ES256 or EdDSA`);
	nonEmptyString('kid', header.kid);

	exactly('the payload', payload, REQUIRED, OPTIONAL);
	for (const c of ['iss', 'sub', 'tid', 'aud', 'jti', 'sid']) nonEmptyString(c, payload[c]);
	for (const c of ['iat', 'nbf', 'exp']) {
		if (!Number.isSafeInteger(payload[c]) || payload[c] < 0)
			throw new Failure(`${c} must be a non-negative integer`);
	}
	if (payload.exp <= payload.nbf || payload.exp <= payload.iat)
		throw new Failure('exp must come after iat and nbf');
	if (!payload.sub.startsWith(`fid:0/${payload.tid}/`))
		throw new Failure(`sub ${payload.sub} is not a fid of tenant ${payload.tid}`);
	if (!isObject(payload.cnf)) throw new Failure('cnf must be an object');
	exactly('cnf', payload.cnf, ['x5t#S256']);
	if (!/^[A-Za-z0-9_-]{43}$/.test(payload.cnf['x5t#S256']))
		throw new Failure('cnf.x5t#S256 must be a base64url SHA-256 (43 characters)');
	if (!isObject(payload.attrs)) throw new Failure('attrs must be an object');
	for (const [k, v] of Object.entries(payload.attrs)) {
		const ok = typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
		if (!ok) throw new Failure(`attrs.${k} must be a string or a list of strings`);
	}
	for (const c of ['idp', 'acr']) if (c in payload) nonEmptyString(c, payload[c]);
	if ('amr' in payload && !(Array.isArray(payload.amr) && payload.amr.every((s) => typeof s === 'string')))
		throw new Failure('amr must be a list of strings');
}

async function verify(argv) {
	const o = parseArgs(argv, ['jwks', 'issuer', 'audience', 'token']);
	need(o, ['jwks', 'issuer', 'audience', 'token']);
	const jwks = createLocalJWKSet(JSON.parse(readFileSync(o.jwks, 'utf8')));
	const { payload, protectedHeader } = await jwtVerify(o.token.trim(), jwks, {
		algorithms: ALGS,
		typ: TYP,
		issuer: o.issuer,
		audience: o.audience,
		requiredClaims: REQUIRED,
	});
	if (typeof payload.aud !== 'string') throw new Failure('aud must be one string, not a list');
	checkContract(protectedHeader, payload);
	process.stdout.write(`${JSON.stringify(payload)}\n`);
}

async function sign(argv) {
	const o = parseArgs(argv, ['key', 'kid', 'alg', 'claims', 'extra-header']);
	need(o, ['key', 'kid', 'alg', 'claims']);
	if (!ALGS.includes(o.alg)) usage('--alg must be ES256 or EdDSA');
	const text = o.claims.trimStart().startsWith('{') ? o.claims : readFileSync(o.claims, 'utf8');
	const claims = JSON.parse(text);
	if (!isObject(claims)) throw new Failure('--claims must be a JSON object');
	const extra = o['extra-header'] === undefined ? {} : JSON.parse(o['extra-header']);
	const key = await importPKCS8(readFileSync(o.key, 'utf8'), o.alg);
	const token = await new SignJWT(claims)
		.setProtectedHeader({ alg: o.alg, typ: TYP, kid: o.kid, ...extra })
		.sign(key);
	process.stdout.write(`${token}\n`);
}

const [mode, ...rest] = process.argv.slice(2);
const modes = { verify, sign };
if (!modes[mode]) usage('the mode is verify or sign');
try {
	await modes[mode](rest);
} catch (e) {
	const code = e.code ? `${e.code}: ` : '';
	process.stderr.write(`interop: ${mode} failed: ${code}${e.message}\n`);
	process.exit(1);
}
