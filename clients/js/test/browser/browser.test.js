// The library in a real browser (Debian's Chromium driven by playwright-core) against the app
// started as `make run` starts it. tests/e2e/test_clients.py starts the app and runs this file
// with MMMS_URL, MMMS_ADMIN_TOKEN, MMMS_CHROMIUM and MMMS_CLIENT_MODULE.
//
// One static server serves the page and the library; the key allows `localhost:PORT`, so the
// page opened as http://localhost:PORT is an allowed origin and http://127.0.0.1:PORT is not.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const libraryPath = process.env.MMMS_CLIENT_MODULE ?? fileURLToPath(new URL('../../index.js', import.meta.url));
const { MmmsClient } = await import(libraryPath);
const baseUrl = process.env.MMMS_URL;
const admin = new MmmsClient({ baseUrl, adminToken: process.env.MMMS_ADMIN_TOKEN });
const unique = (name) => `${name}-${randomUUID().slice(0, 8)}`;

const PAGE = `<!doctype html><title>mmms-client</title>
<script type="module">
  import { MmmsClient, MmmsError } from '/mmms-client.js';
  window.mmms = { MmmsClient, MmmsError };
  document.title = 'ready';
</script>`;

let pages;
let port;
let browser;
let key;

before(async () => {
  const library = await readFile(libraryPath);
  pages = createServer((request, response) => {
    const js = request.url === '/mmms-client.js';
    response.writeHead(200, { 'content-type': js ? 'text/javascript' : 'text/html' });
    response.end(js ? library : PAGE);
  });
  await new Promise((ready) => pages.listen(0, '127.0.0.1', ready));
  port = pages.address().port;
  key = await admin.createKey({ name: unique('browser'), origin_names: [`localhost:${port}`] });
  browser = await chromium.launch({
    executablePath: process.env.MMMS_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((done) => (pages ? pages.close(done) : done()));
});

async function open(origin) {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => document.title === 'ready');
  return page;
}

const mail = (emailId) => ({
  email_id: emailId,
  recipients: [{ name: 'Ann', mail: 'ann@example.org', emailRecipientId: 'a' }],
  sender_email: 'hello@example.com',
  subject: 'Hi {{ name }}',
  html_template: '<p>Hello {{ name }}</p>',
});

test('a page on an allowed origin sends and reads the status through the library', async () => {
  const page = await open(`http://localhost:${port}`);
  const emailId = unique('browser');
  const seen = await page.evaluate(
    async ({ baseUrl, apiKey, body }) => {
      const client = new window.mmms.MmmsClient({ baseUrl, apiKey });
      const sent = await client.sendMail(body);
      const status = await client.getEmail(body.email_id);
      const refused = await client.sendMail({ ...body, email_id: '' }).catch((error) => error);
      return {
        origin: location.origin,
        sent,
        status,
        refused: {
          isMmmsError: refused instanceof window.mmms.MmmsError,
          status: refused.status,
          errorType: refused.errorType,
          requestId: refused.requestId,
        },
      };
    },
    { baseUrl, apiKey: key.api_key, body: mail(emailId) },
  );
  assert.equal(seen.origin, `http://localhost:${port}`);
  assert.equal(seen.sent.status.status, 'sent');
  assert.equal(seen.status.email_id, emailId);
  assert.deepEqual(seen.status.recipients.map((r) => r.email_recipient_id), ['a']);
  assert.ok(['sent', 'delivered'].includes(seen.status.recipients[0].status));
  // The error envelope and X-Request-Id are readable across origins (exposed by CORS).
  assert.deepEqual(
    { ...seen.refused, requestId: typeof seen.refused.requestId },
    { isMmmsError: true, status: 422, errorType: 'validation_error', requestId: 'string' },
  );
});

test('a page on an unlisted origin gets a clear MmmsError, and nothing is sent', async () => {
  const page = await open(`http://127.0.0.1:${port}`);
  const emailId = unique('stranger');
  const seen = await page.evaluate(
    async ({ baseUrl, apiKey, body }) => {
      const client = new window.mmms.MmmsClient({ baseUrl, apiKey, retryDelay: 50 });
      try {
        await client.sendMail(body);
        return { sent: true };
      } catch (error) {
        const { name, status, errorType, message } = error;
        return { isMmmsError: error instanceof window.mmms.MmmsError, name, status, errorType, message };
      }
    },
    { baseUrl, apiKey: key.api_key, body: mail(emailId) },
  );
  assert.equal(seen.isMmmsError, true, JSON.stringify(seen));
  assert.equal(seen.name, 'MmmsError');
  assert.equal(seen.status, 0);
  assert.equal(seen.errorType, 'network_error');
  assert.ok(seen.message.includes(`this page's origin (http://127.0.0.1:${port}) is not allowed`), seen.message);
  const mmms = new MmmsClient({ baseUrl, apiKey: key.api_key, origin: `http://localhost:${port}` });
  await assert.rejects(mmms.getEmail(emailId), { status: 404 });
});

/** Sends `body` from `page` with a client made of `options`; what came back, or the error. */
const sendFrom = (page, options, body) =>
  page.evaluate(
    async ({ options, body }) => {
      const client = new window.mmms.MmmsClient(options);
      try {
        return { sent: await client.sendMail(body) };
      } catch (error) {
        const { name, status, errorType, message, details } = error;
        return { isMmmsError: error instanceof window.mmms.MmmsError, name, status, errorType, message, details };
      }
    },
    { options: { baseUrl, ...options }, body },
  );

test('a server key used from a page is refused, and nothing is sent', async () => {
  const server = await admin.createKey({ name: unique('server'), kind: 'server' });
  const page = await open(`http://localhost:${port}`);
  const emailId = unique('pasted');
  const seen = await sendFrom(page, { apiKey: server.api_key }, mail(emailId));
  assert.equal(seen.isMmmsError, true, JSON.stringify(seen));
  assert.deepEqual([seen.status, seen.errorType], [403, 'forbidden']);
  assert.deepEqual(seen.details.map((detail) => detail.loc), [['Origin']]);
  const backend = new MmmsClient({ baseUrl, apiKey: server.api_key });
  await assert.rejects(backend.getEmail(emailId), { status: 404 });
});

test('a page sends its CAPTCHA token to a key that requires one', async () => {
  const origin = `localhost:${port}`;
  const guarded = await admin.createKey({
    name: unique('captcha'),
    origin_names: [origin],
    policy: { require_captcha: true },
  });
  const page = await open(`http://localhost:${port}`);
  const withToken = await sendFrom(page, { apiKey: guarded.api_key, captchaToken: 'good-token' }, mail(unique('human')));
  const without = await sendFrom(page, { apiKey: guarded.api_key }, mail(unique('robot')));
  assert.equal(withToken.sent?.status?.status, 'sent', JSON.stringify(withToken));
  assert.deepEqual([without.status, without.errorType], [403, 'forbidden'], JSON.stringify(without));
  assert.deepEqual(without.details.map((detail) => detail.loc), [['X-Captcha-Token']]);
});

test("a page reads the service's Retry-After (exposed by CORS): a wait over maxRetryDelay is not attempted", async () => {
  const limited = await admin.createKey({
    name: unique('limited'),
    origin_names: [`localhost:${port}`],
    policy: { per_ip_per_minute: 1 },
  });
  const page = await open(`http://localhost:${port}`);
  const seen = await page.evaluate(
    async ({ baseUrl, apiKey, body }) => {
      const asked = [];
      const counting = (url, init) => {
        asked.push(init.method);
        return fetch(url, init);
      };
      const client = new window.mmms.MmmsClient({ baseUrl, apiKey, fetch: counting, retryDelay: 10, maxRetryDelay: 500 });
      await client.sendMail(body);
      const error = await client.getEmail(body.email_id).catch((caught) => caught);
      return { asked, status: error.status, errorType: error.errorType, message: error.message };
    },
    { baseUrl, apiKey: limited.api_key, body: mail(unique('limited')) },
  );
  // The second request is over the key's one a minute: 429 with Retry-After (1-60 s), which the
  // page can read, so it is not waited for. Unreadable, it would have been retried 3 times.
  assert.deepEqual([seen.status, seen.errorType], [429, 'rate_limited'], JSON.stringify(seen));
  assert.deepEqual(seen.asked, ['POST', 'GET']);
});
