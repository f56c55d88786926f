// Runs the OAuth 2.0 Device Authorization Grant (RFC 8628) of
// openid-client against a running Stepgate: a public client starts a
// device authorization and polls with openid-client's own poller
// (honouring interval and slow_down), while a small browser signs in and
// approves on the device page; then a second one is denied. It prints one
// line per step and exits non-zero, with the reason, on the first
// failure.
//
// The Go test TestInteropNodeDeviceFlow starts the server and this
// script; to run it by hand, set:
//
//   STEPGATE_ISSUER            issuer URL, e.g. http://127.0.0.1:8080
//   STEPGATE_DEVICE_CLIENT_ID  a public client with the grant
//                              urn:ietf:params:oauth:grant-type:device_code
//                              and refresh_token
//   STEPGATE_USERNAME          a user whose password alone meets the
//   STEPGATE_PASSWORD          policies for that client

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

function describe(err) {
  const parts = [String(err?.message ?? err)];
  if (err?.code) parts.push(`code=${err.code}`);
  if (err?.error) parts.push(`error=${err.error}`);
  if (err?.error_description) parts.push(`error_description=${err.error_description}`);
  return parts.join('; ');
}

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
const clientId = env('STEPGATE_DEVICE_CLIENT_ID');
const username = env('STEPGATE_USERNAME');
const password = env('STEPGATE_PASSWORD');

// Browser keeps the issuer's cookies and does not follow redirects.
class Browser {
  #cookies = new Map();

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.#cookies.size > 0) {
      headers.set('Cookie', [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const resp = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    for (const line of resp.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return resp;
  }

  // form loads page and returns its CSRF token.
  async form(page) {
    const resp = await this.request(page);
    const html = await resp.text();
    const m = /name="csrf_token" value="([^"]+)"/.exec(html);
    if (resp.status !== 200 || !m) throw new Error(`GET ${page}: status ${resp.status}, no form: ${html.slice(0, 300)}`);
    return { csrf: m[1], html };
  }

  async post(action, fields) {
    return this.request(action, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: issuer.origin },
      body: new URLSearchParams(fields),
    });
  }
}

// The server listens on loopback http: allowInsecureRequests permits the
// transport only; every response check of openid-client stays on.
const config = await step('discovery', () =>
  client.discovery(issuer, clientId, undefined, client.None(), { execute: [client.allowInsecureRequests] }),
);
{
  const md = config.serverMetadata();
  check('discovery', md.device_authorization_endpoint === new URL('/oauth2/device_authorization', issuer).href,
    `device_authorization_endpoint = ${md.device_authorization_endpoint}`);
  check('discovery', md.grant_types_supported?.includes('urn:ietf:params:oauth:grant-type:device_code'), 'device_code grant not advertised');
  ok('discovery', md.device_authorization_endpoint);
}

const browser = new Browser();
{
  const { csrf } = await step('sign-in page', () => browser.form(new URL('/login', issuer)));
  const resp = await step('sign-in', () => browser.post(new URL('/login', issuer), { csrf_token: csrf, username, password, return_to: '/account' }));
  check('sign-in', resp.status === 303, `status ${resp.status}, want 303`);
  ok('sign-in', username);
}

// answer opens the verification_uri_complete of a device authorization
// and posts decision on the page.
async function answer(name, da, decision) {
  const page = new URL(da.verification_uri_complete);
  check(name, page.origin === issuer.origin && page.pathname === '/device', `verification_uri_complete ${page}`);
  const { csrf, html } = await step(`${name} page`, () => browser.form(page));
  check(name, html.includes(da.user_code), 'the page does not show the user code');
  const resp = await step(name, () => browser.post(new URL('/device', issuer), { csrf_token: csrf, user_code: da.user_code, decision }));
  check(name, resp.status === 200, `status ${resp.status}`);
  ok(name, da.user_code);
}

{
  const da = await step('device authorization', () => client.initiateDeviceAuthorization(config, { scope: 'openid profile offline_access' }));
  check('device authorization', /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(da.user_code), `user_code ${da.user_code}`);
  check('device authorization', da.interval >= 1 && da.expires_in > 0, `interval ${da.interval}, expires_in ${da.expires_in}`);
  ok('device authorization', `user_code ${da.user_code}, interval ${da.interval}s`);

  // The poller starts before the user answers: it hears
  // authorization_pending until the approval.
  const polled = client.pollDeviceAuthorizationGrant(config, da);
  await new Promise((r) => setTimeout(r, 1500));
  await answer('approve', da, 'approve');
  const tokens = await step('poll', () => polled);
  const claims = tokens.claims();
  check('poll', claims?.sub && claims.preferred_username === username, `ID token claims ${JSON.stringify(claims)}`);
  check('poll', tokens.access_token && tokens.refresh_token, 'no access or refresh token');
  ok('poll', `tokens for ${claims.preferred_username}, acr ${claims.acr}`);

  const refreshed = await step('refresh', () => client.refreshTokenGrant(config, tokens.refresh_token));
  check('refresh', refreshed.access_token && refreshed.access_token !== tokens.access_token, 'no new access token');
  ok('refresh');

  const again = await client.pollDeviceAuthorizationGrant(config, da).then(() => null, (err) => err);
  check('reuse', again?.error === 'invalid_grant', `a second redemption: ${again ? describe(again) : 'tokens'}`);
  ok('reuse', 'invalid_grant');
}

{
  const da = await step('device authorization 2', () => client.initiateDeviceAuthorization(config, { scope: 'openid' }));
  const polled = client.pollDeviceAuthorizationGrant(config, da).then(() => null, (err) => err);
  await answer('deny', da, 'deny');
  const err = await polled;
  check('denied', err?.error === 'access_denied', `the poller after a denial: ${err ? describe(err) : 'tokens'}`);
  ok('denied', 'access_denied');
}
