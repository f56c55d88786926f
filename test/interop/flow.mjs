// Runs a relying party built on openid-client (a strict, widely used
// OpenID Connect library) against a running Stepgate, and drives the
// browser part of each flow (sign-in and step-up forms) with fetch and a
// small cookie jar. It prints one line per step and exits non-zero, with
// the reason, on the first failure.
//
// The Go test TestInteropNodeOpenIDClient starts the server and this
// script; to run it by hand against a server of your own, set:
//
//   STEPGATE_ISSUER         issuer URL, e.g. http://127.0.0.1:8080
//   STEPGATE_CLIENT_ID      confidential client (client_secret_basic)
//   STEPGATE_CLIENT_SECRET
//   STEPGATE_REDIRECT_URI   a redirect URI registered for it; nothing
//                           needs to listen there, the script reads the
//                           redirect instead of following it
//   STEPGATE_USERNAME       a password user who reaches context c1 with
//   STEPGATE_PASSWORD       a password alone and cannot reach c2 (MFA)

import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as client from 'openid-client';

const env = (name) => {
  const v = process.env[name];
  if (!v) fail('setup', `environment variable ${name} is not set`);
  return v;
};

function fail(step, msg) {
  console.error(`FAIL ${step}: ${msg}`);
  process.exit(1);
}

function ok(step, detail) {
  console.log(`ok   ${step}${detail ? ': ' + detail : ''}`);
}

// describe renders an error with what openid-client attaches to it (its
// code, the OAuth error and the server's description), so a failure says
// which check refused what.
function describe(err) {
  const parts = [String(err?.message ?? err)];
  if (err?.code) parts.push(`code=${err.code}`);
  if (err?.error) parts.push(`error=${err.error}`);
  if (err?.error_description) parts.push(`error_description=${err.error_description}`);
  if (err?.cause && !(err.cause instanceof URLSearchParams)) {
    parts.push(`cause=${err.cause instanceof Error ? err.cause.message : JSON.stringify(err.cause)}`);
  }
  return parts.join('; ');
}

// step runs fn and fails the script with the step's name if it throws.
async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    fail(name, describe(err));
  }
}

function check(name, cond, msg) {
  if (!cond) fail(name, msg);
}

const issuer = new URL(env('STEPGATE_ISSUER'));
const clientId = env('STEPGATE_CLIENT_ID');
const clientSecret = env('STEPGATE_CLIENT_SECRET');
const redirectUri = env('STEPGATE_REDIRECT_URI');
const username = env('STEPGATE_USERNAME');
const password = env('STEPGATE_PASSWORD');

// Browser is the user agent: one cookie jar for the issuer's origin (all
// of Stepgate's cookies have Path=/) and redirects handled by hand, so the
// script sees every hop and stops at the one that leaves the server.
class Browser {
  #cookies = new Map();

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.#cookies.size > 0) {
      headers.set('Cookie', [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const resp = await fetch(url, {
      ...init,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    });
    for (const line of resp.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(-\d+|0)\s*$/i.test(a));
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return resp;
  }

  // location returns the absolute target of a redirect response.
  static location(resp, base) {
    if (resp.status !== 302 && resp.status !== 303) return null;
    const loc = resp.headers.get('Location');
    return loc ? new URL(loc, base) : null;
  }
}

const csrfRe = /name="csrf_token" value="([^"]+)"/;

// submitForm loads page (for its CSRF token and cookie) and posts fields
// to action as the browser would after the user typed them.
async function submitForm(browser, page, action, fields) {
  const get = await browser.request(page);
  const html = await get.text();
  const m = csrfRe.exec(html);
  if (get.status !== 200 || !m) {
    throw new Error(`GET ${page}: status ${get.status}, no CSRF token in the page`);
  }
  const post = await browser.request(action, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: issuer.origin },
    body: new URLSearchParams({ ...fields, csrf_token: m[1] }),
  });
  await post.body?.cancel();
  const next = Browser.location(post, action);
  if (!next) throw new Error(`POST ${action.pathname}: status ${post.status}, want a redirect`);
  return next;
}

// authorize follows an authorization request through sign-in and
// step-up pages until the server redirects to the client, and returns
// that URL with the pages the user had to pass.
async function authorize(browser, authURL) {
  let url = authURL;
  const pages = [];
  for (let hop = 0; hop < 12; hop++) {
    if (url.origin !== issuer.origin) return { callback: url, pages };
    const returnTo = url.searchParams.get('return_to') ?? '';
    if (url.pathname === '/login') {
      pages.push('login');
      url = await submitForm(browser, url, new URL('/login', issuer), { username, password, return_to: returnTo });
      continue;
    }
    if (url.pathname === '/stepup') {
      pages.push('stepup');
      url = await submitForm(browser, url, new URL('/stepup', issuer), { password, return_to: returnTo });
      continue;
    }
    const resp = await browser.request(url);
    const body = await resp.text();
    const next = Browser.location(resp, url);
    if (!next) throw new Error(`GET ${url.pathname}: status ${resp.status}, want a redirect: ${body.slice(0, 300)}`);
    url = next;
  }
  throw new Error('the flow did not leave the server within 12 redirects');
}

// atHash computes the at_hash of accessToken for the ID token's alg
// (OIDC Core 3.1.3.6): the left half of the hash, base64url.
function atHash(alg, accessToken) {
  const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[alg.slice(-3)] ?? (alg === 'EdDSA' ? 'sha512' : null);
  if (!hash) throw new Error(`no at_hash hash function known for alg ${alg}`);
  const digest = createHash(hash).update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
}

// Stepgate under test listens on loopback http. openid-client refuses
// non-TLS endpoints unless allowInsecureRequests is set; that option only
// permits http transport. Every response and token check (issuer, iss
// authorization response parameter, state, nonce, PKCE, ID token
// signature against the JWKS, audience, expiry, auth_time/max_age,
// userinfo subject) stays in force.
const config = await step('discovery', () =>
  client.discovery(issuer, clientId, undefined, client.ClientSecretBasic(clientSecret), {
    execute: [client.allowInsecureRequests],
  }),
);
{
  const md = config.serverMetadata();
  check('discovery', md.issuer === issuer.href.replace(/\/$/, ''), `issuer = ${md.issuer}, want ${issuer.href}`);
  check('discovery', md.authorization_response_iss_parameter_supported === true, 'iss parameter not advertised');
  check('discovery', md.code_challenge_methods_supported?.includes('S256'), 'S256 not advertised');
  ok('discovery', `issuer ${md.issuer}`);
}

const browser = new Browser();

// login runs one authorization code flow with PKCE (S256), state and
// nonce, exchanges the code and returns the validated token response and
// the pages the user passed.
async function login(name, extra = {}, checks = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const authURL = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const { callback, pages } = await step(`${name}/browser`, () => authorize(browser, authURL));
  ok(`${name}/browser`, `passed ${pages.join(', ') || 'no page'}; redirected with ${[...callback.searchParams.keys()].join(', ')}`);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
    ...checks,
  });
  return { tokens, pages };
}

// The first sign-in: the user passes the sign-in page.
const first = await step('code-flow', () => login('code-flow'));
const claims = first.tokens.claims();
{
  const s = 'code-flow';
  check(s, first.pages.includes('login'), `the user never saw the sign-in page (pages: ${first.pages})`);
  check(s, first.tokens.token_type?.toLowerCase() === 'bearer', `token_type = ${first.tokens.token_type}`);
  check(s, typeof first.tokens.refresh_token === 'string', 'no refresh token for offline_access');
  check(s, typeof claims.auth_time === 'number', 'no auth_time in the ID token');
  check(s, Array.isArray(claims.amr) && claims.amr.includes('pwd'), `amr = ${JSON.stringify(claims.amr)}, want pwd`);
  check(s, typeof claims.email === 'string', 'no email claim for the email scope');
  if (claims.at_hash !== undefined) {
    const want = atHash(jwtHeader(first.tokens.id_token).alg, first.tokens.access_token);
    check(s, claims.at_hash === want, `at_hash = ${claims.at_hash}, want ${want}`);
  }
  ok(s, `sub ${claims.sub}, acr ${claims.acr}, amr ${claims.amr}, at_hash ${claims.at_hash ? 'valid' : 'absent'}`);
}

// Userinfo, bound to the ID token's subject.
await step('userinfo', async () => {
  const info = await client.fetchUserInfo(config, first.tokens.access_token, claims.sub);
  check('userinfo', info.sub === claims.sub, `sub = ${info.sub}`);
  check('userinfo', info.email === claims.email, `email = ${info.email}, want ${claims.email}`);
  ok('userinfo', `sub ${info.sub}, email ${info.email}`);
});

// Refresh: new tokens; an ID token in the response is validated like the
// first one (and must keep acr and auth_time).
await step('refresh', async () => {
  const refreshed = await client.refreshTokenGrant(config, first.tokens.refresh_token);
  check('refresh', refreshed.access_token !== first.tokens.access_token, 'the access token was not renewed');
  check('refresh', refreshed.refresh_token && refreshed.refresh_token !== first.tokens.refresh_token, 'the refresh token was not rotated');
  const rc = refreshed.claims();
  if (rc) {
    check('refresh', rc.sub === claims.sub, `sub changed: ${rc.sub}`);
    check('refresh', rc.acr === claims.acr && rc.auth_time === claims.auth_time,
      `acr/auth_time changed: ${rc.acr}/${rc.auth_time}, want ${claims.acr}/${claims.auth_time}`);
  }
  ok('refresh', `new access and refresh tokens${rc ? ', ID token valid' : ''}`);
});

// Step-up: the application asks for context c1 with max_age=0, so the
// session cookie alone is not enough; the user proves themselves again
// and the new ID token names c1 with a later auth_time. auth_time has
// one-second resolution, hence the wait.
await sleep(1100);
await step('step-up', async () => {
  const { tokens, pages } = await login('step-up', { acr_values: 'c1', max_age: '0' }, { maxAge: 0 });
  const sc = tokens.claims();
  check('step-up', pages.length > 0, 'max_age=0 issued a code without the user signing in again');
  check('step-up', sc.sub === claims.sub, `sub = ${sc.sub}, want ${claims.sub}`);
  check('step-up', sc.acr === 'c1', `acr = ${sc.acr}, want c1`);
  check('step-up', sc.auth_time > claims.auth_time, `auth_time ${sc.auth_time} is not after ${claims.auth_time}`);
  check('step-up', Array.isArray(sc.amr) && sc.amr.includes('pwd'), `amr = ${JSON.stringify(sc.amr)}, want pwd`);
  ok('step-up', `passed ${pages.join(', ')}; acr ${sc.acr}, auth_time ${sc.auth_time} > ${claims.auth_time}, amr ${sc.amr}`);
});

// A context the user cannot reach (MFA without a second factor): the
// authorization response is RFC 9470's error, which openid-client must
// raise as an authorization response error, never a token.
await step('unmet-acr', async () => {
  let err;
  try {
    await login('unmet-acr', { acr_values: 'c2' });
  } catch (e) {
    err = e;
  }
  check('unmet-acr', err !== undefined, 'acr_values=c2 produced tokens');
  check('unmet-acr', err instanceof client.AuthorizationResponseError,
    `want an AuthorizationResponseError, got ${describe(err)}`);
  check('unmet-acr', err.code === 'OAUTH_AUTHORIZATION_RESPONSE_ERROR', `code = ${err.code}`);
  check('unmet-acr', err.error === 'unmet_authentication_requirements',
    `error = ${err.error}, want unmet_authentication_requirements`);
  ok('unmet-acr', `${err.error}: ${err.error_description ?? ''}`);
});

console.log('PASS openid-client interop');
