// Runs node-postgres (the npm package pg) against Stepgate's database
// gateway, over TLS verified with the certificate the server hands out,
// with an access token issued for the database as the password. pg uses
// the extended query protocol for every query with parameters: each step
// checks what the gateway relays and what it refuses. It prints one line
// per step and exits non-zero, with the reason, on the first failure.
//
// The Go test TestInteropNodePgExtendedProtocol starts the server and
// this script; to run it by hand, set:
//
//   STEPGATE_PG_HOST, STEPGATE_PG_PORT  the gateway's address
//   STEPGATE_PG_DATABASE                the database's name (dbname)
//   STEPGATE_PG_USER                    the Stepgate user name
//   STEPGATE_PG_PASSWORD                an access token for the database
//   STEPGATE_PG_CA                      the CA certificate file (PEM)
//
// The database holds customers (id int, name text), rows 1 Ada and
// 2 Bob, and refuses UPDATE without WHERE (refuse_no_where).

import { readFileSync } from 'node:fs';
import pg from 'pg';

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

function expect(step, cond, msg) {
  if (!cond) fail(step, msg);
}

const client = new pg.Client({
  host: env('STEPGATE_PG_HOST'),
  port: Number(env('STEPGATE_PG_PORT')),
  database: env('STEPGATE_PG_DATABASE'),
  user: env('STEPGATE_PG_USER'),
  password: env('STEPGATE_PG_PASSWORD'),
  // verify-full: the chain against the handed-out certificate, and the
  // host name (an IP address here) against its names.
  ssl: { ca: readFileSync(env('STEPGATE_PG_CA'), 'utf8'), rejectUnauthorized: true },
  connectionTimeoutMillis: 10000,
  query_timeout: 20000,
});

async function step(name, fn) {
  try {
    await fn();
  } catch (err) {
    fail(name, `${err?.message ?? err} (code=${err?.code})`);
  }
}

async function refused(name, query, values) {
  try {
    await client.query(query, values);
  } catch (err) {
    return err;
  }
  fail(name, `${query} was not refused`);
}

await step('connect', async () => {
  await client.connect();
  ok('connect', 'TLS verified, token accepted');
});

await step('parameterised-query', async () => {
  const r = await client.query('SELECT id, name FROM customers WHERE id = $1', [1]);
  expect('parameterised-query', r.rows.length === 1 && r.rows[0].name === 'Ada', JSON.stringify(r.rows));
  ok('parameterised-query', 'id 1 is Ada');
});

await step('parameter-types', async () => {
  const r = await client.query('SELECT $1::int + $2::int AS sum, $3::text AS t, $4::text IS NULL AS n', [40, 2, "it's; DROP TABLE customers", null]);
  const row = r.rows[0];
  expect('parameter-types', row.sum === 42 && row.t === "it's; DROP TABLE customers" && row.n === true, JSON.stringify(row));
  ok('parameter-types', 'a value holding SQL is a value');
});

await step('named-statement-twice', async () => {
  const q = (id) => ({ name: 'customer-by-id', text: 'SELECT name FROM customers WHERE id = $1', values: [id] });
  const first = await client.query(q(1));
  const second = await client.query(q(2));
  expect('named-statement-twice', first.rows[0]?.name === 'Ada' && second.rows[0]?.name === 'Bob',
    `${JSON.stringify(first.rows)} ${JSON.stringify(second.rows)}`);
  ok('named-statement-twice', 'parsed once, executed twice: Ada, Bob');
});

await step('refused-statement', async () => {
  const err = await refused('refused-statement', 'UPDATE customers SET name = $1', ['everyone']);
  expect('refused-statement', typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code), `no SQLSTATE: ${err.message}`);
  expect('refused-statement', /WHERE/.test(err.message), `message does not say why: ${err.message}`);
  console.log(`     SQLSTATE ${err.code}: ${err.message}`);
  ok('refused-statement', 'UPDATE without WHERE refused');
});

await step('usable-after-refusal', async () => {
  const r = await client.query('SELECT count(*)::int AS n FROM customers WHERE name = $1', ['everyone']);
  expect('usable-after-refusal', r.rows[0].n === 0, `the refused UPDATE ran: ${r.rows[0].n} rows`);
  const again = await client.query({ name: 'customer-by-id', text: 'SELECT name FROM customers WHERE id = $1', values: [1] });
  expect('usable-after-refusal', again.rows[0]?.name === 'Ada', JSON.stringify(again.rows));
  ok('usable-after-refusal', 'nothing changed; the named statement still runs');
});

await step('refusal-in-transaction', async () => {
  await client.query('BEGIN');
  await client.query('UPDATE customers SET name = $1 WHERE id = $2', ['Ada L.', 1]);
  const err = await refused('refusal-in-transaction', 'DELETE FROM customers', []);
  expect('refusal-in-transaction', /WHERE/.test(err.message), err.message);
  const aborted = await refused('refusal-in-transaction', 'SELECT 1', []);
  expect('refusal-in-transaction', aborted.code === '25P02', `after the refusal: ${aborted.code} ${aborted.message}`);
  await client.query('ROLLBACK');
  const r = await client.query('SELECT name FROM customers WHERE id = $1', [1]);
  expect('refusal-in-transaction', r.rows[0].name === 'Ada', `the transaction was not rolled back: ${r.rows[0].name}`);
  ok('refusal-in-transaction', 'aborted as PostgreSQL aborts it (25P02), rolled back');
});

await client.end();
ok('done');
