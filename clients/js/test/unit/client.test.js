import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MmmsClient, MmmsError } from '../../index.js';
import { failure, ok, scripted } from './server.js';

const servers = [];
after(() => Promise.all(servers.map((server) => server.close())));

async function serve(...answers) {
  const server = await scripted(answers);
  servers.push(server);
  return server;
}

const client = (url, options = {}) =>
  new MmmsClient({ baseUrl: `${url}/`, apiKey: 'ak_test', adminToken: 'admin-secret', retryDelay: 10, ...options });

const MAIL = {
  email_id: 'welcome-1',
  recipients: [{ mail: 'ann@example.org' }],
  sender_email: 'hello@example.com',
  subject: 'Hi',
  html_template: '<p>Hi</p>',
};

test('a 429 with Retry-After is waited for, then the 200 resolves to data', async () => {
  const server = await serve(
    failure(429, 'rate_limited', 'Too many requests', { headers: { 'retry-after': '1' } }),
    ok({ message_id: 'm-1', ses_response: null, status: { status: 'sent' } }),
  );
  const data = await client(server.url).sendMail(MAIL);
  assert.equal(data.message_id, 'm-1');
  assert.equal(server.requests.length, 2);
  assert.deepEqual(JSON.parse(server.requests[1].body), MAIL);
  assert.ok(server.requests[1].at - server.requests[0].at >= 950, 'Retry-After: 1 was honoured');
});

test('a 503 and a dropped connection are retried for a GET', async () => {
  const server = await serve(failure(503, 'service_unavailable', 'Database unavailable'), 'drop', ok({ n: 1 }));
  assert.deepEqual(await client(server.url).getRecipient('e', 'r'), { n: 1 });
  assert.equal(server.requests.length, 3);
});

test('a call that is not idempotent is never retried', async () => {
  const server = await serve(failure(503, 'service_unavailable', 'Database unavailable'), ok({}));
  await assert.rejects(client(server.url).createKey({ name: 'k', origin_names: [] }), {
    name: 'MmmsError',
    status: 503,
    errorType: 'service_unavailable',
  });
  assert.equal(server.requests.length, 1);
});

test('a new template version (PUT) is never retried; a preview is', async () => {
  const unavailable = failure(503, 'service_unavailable', 'Database unavailable');
  const server = await serve(unavailable, unavailable, ok({ subject: 'Hi' }));
  const body = { name: 'welcome', subject: 'Hi', html: '<p>Hi</p>' };
  await assert.rejects(client(server.url).updateTemplate('tpl_1', body), { status: 503 });
  assert.deepEqual(await client(server.url).previewTemplate('tpl_1'), { subject: 'Hi' });
  assert.deepEqual(
    server.requests.map((request) => [request.method, request.url, request.headers.authorization]),
    [
      ['PUT', '/v1/templates/tpl_1', 'Bearer admin-secret'],
      ['POST', '/v1/templates/tpl_1/preview', 'Bearer admin-secret'],
      ['POST', '/v1/templates/tpl_1/preview', 'Bearer admin-secret'],
    ],
  );
  assert.equal(server.requests[1].headers['x-api-key'], 'ak_test');
});

test('retries stop after `retries`, rejecting with the last answer', async () => {
  const server = await serve(failure(429, 'rate_limited', 'Too many requests', { headers: { 'retry-after': '0' } }));
  await assert.rejects(client(server.url, { retries: 2 }).getEmail('e'), { status: 429, errorType: 'rate_limited' });
  assert.equal(server.requests.length, 3);
});

test('with the defaults a 429 without Retry-After is tried 4 times, 0.5 s, 1 s and 2 s apart', async () => {
  const server = await serve(failure(429, 'rate_limited', 'Too many requests'));
  const mmms = new MmmsClient({ baseUrl: server.url, apiKey: 'ak_test' });
  await assert.rejects(mmms.getEmail('e'), { status: 429, errorType: 'rate_limited' });
  const gaps = server.requests.slice(1).map((request, i) => request.at - server.requests[i].at);
  assert.equal(gaps.length, 3);
  gaps.forEach((gap, i) => assert.ok(gap >= 500 * 2 ** i - 5 && gap < 500 * 2 ** i + 400, `${gaps}`));
});

test('a Retry-After given as an HTTP date is waited for until then', async () => {
  const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2000);
  const server = await serve(
    failure(429, 'rate_limited', 'Too many requests', { headers: { 'retry-after': at.toUTCString() } }),
    ok({ n: 1 }),
  );
  assert.deepEqual(await client(server.url).getEmail('e'), { n: 1 });
  assert.ok(server.requests[1].at >= at.getTime() - 5, `${server.requests[1].at - at.getTime()} ms early`);
});

test('a Retry-After longer than maxRetryDelay is not waited for', async () => {
  const server = await serve(failure(429, 'rate_limited', 'Daily quota used', { headers: { 'retry-after': '3600' } }));
  await assert.rejects(client(server.url).getEmail('e'), { status: 429 });
  assert.equal(server.requests.length, 1);
});

test('an error envelope becomes an MmmsError with every field', async () => {
  const details = [{ type: 'missing', loc: ['body', 'subject'], msg: 'Field required', input: null }];
  const server = await serve(failure(422, 'validation_error', 'Request validation failed', { details }));
  const error = await client(server.url).sendMail(MAIL).catch((caught) => caught);
  assert.ok(error instanceof MmmsError);
  assert.ok(error instanceof Error);
  assert.deepEqual(
    [error.status, error.errorType, error.message, error.details, error.requestId],
    [422, 'validation_error', 'Request validation failed', details, 'req-1'],
  );
  assert.equal(server.requests.length, 1);
});

test('an answer that is not the envelope still gives an MmmsError with the request id', async () => {
  const server = await serve({ status: 502, text: '<html>Bad gateway</html>', headers: { 'x-request-id': 'gw-7' } });
  await assert.rejects(client(server.url, { retries: 0 }).getEmail('e'), {
    status: 502,
    errorType: 'http_error',
    message: 'GET /v1/mail/e answered 502',
    requestId: 'gw-7',
  });
});

test('an unreachable service is an MmmsError with status 0, not a TypeError', async () => {
  const server = await serve(ok({}));
  await server.close();
  const error = await client(server.url, { retries: 1 }).getEmail('e').catch((caught) => caught);
  assert.ok(error instanceof MmmsError, String(error));
  assert.equal(error.status, 0);
  assert.equal(error.errorType, 'network_error');
  assert.match(error.message, /^GET http:\/\/127\.0\.0\.1:\d+\/v1\/mail\/e failed: .*unreachable/);
});

test('paging follows next_cursor and yields every item', async () => {
  const pages = [
    ok({ email_id: 'e', count: 3, recipients: [{ email_recipient_id: 'a' }, { email_recipient_id: 'b' }], next_cursor: 'c2' }),
    ok({ email_id: 'e', count: 3, recipients: [{ email_recipient_id: 'c' }], next_cursor: null }),
  ];
  const server = await serve(...pages);
  const seen = [];
  for await (const recipient of client(server.url).recipients('e', { limit: 2, status: 'sent' })) {
    seen.push(recipient.email_recipient_id);
  }
  assert.deepEqual(seen, ['a', 'b', 'c']);
  assert.deepEqual(
    server.requests.map((request) => request.url),
    ['/v1/mail/e?limit=2&status=sent', '/v1/mail/e?limit=2&status=sent&cursor=c2'],
  );
});

test('credentials, Origin and the CAPTCHA token travel where they belong', async () => {
  const server = await serve(ok({}));
  const mmms = client(server.url, { origin: 'http://localhost:4321', captchaToken: 'cap-1' });
  await mmms.sendMail(MAIL);
  await mmms.removeSuppression('A+b@x.org');
  await mmms.getRecipient('news 1/2', 'r#1?');
  const [mail, suppression, recipient] = server.requests;
  assert.equal(mail.headers['x-api-key'], 'ak_test');
  assert.equal(mail.headers.authorization, undefined);
  assert.equal(mail.headers.origin, 'http://localhost:4321');
  assert.equal(mail.headers['x-captcha-token'], 'cap-1');
  assert.equal(mail.headers['content-type'], 'application/json');
  assert.equal(suppression.method, 'DELETE');
  assert.equal(suppression.url, '/v1/suppressions/A+b@x.org');
  assert.equal(recipient.url, '/v1/mail/news%201%2F2/recipients/r%231%3F');
  assert.equal(suppression.headers.authorization, 'Bearer admin-secret');
  assert.equal(suppression.headers['x-api-key'], undefined);
});

test('a campaign file goes to its upload target with its length, never with the key', async () => {
  const server = await serve({ status: 200, text: '' }, failure(503, 'service_unavailable', 'Storage unavailable'));
  const upload = { method: 'PUT', url: `${server.url}/uploads/cmp_1.csv`, headers: { 'Content-Type': 'text/csv' }, max_bytes: 1e6 };
  const file = `mail,name\n${'ann@example.org,Ann\n'.repeat(10000)}`;
  const progress = [];
  await client(server.url).uploadCampaignFile({ campaign_id: 'cmp_1', upload }, file, {
    onProgress: ({ loaded, total }) => progress.push([loaded, total]),
  });
  const [sent] = server.requests;
  assert.deepEqual([sent.method, sent.url, sent.body], ['PUT', '/uploads/cmp_1.csv', file]);
  assert.equal(sent.headers['content-type'], 'text/csv');
  assert.equal(sent.headers['content-length'], String(file.length));
  assert.equal(sent.headers['x-api-key'], undefined);
  assert.equal(sent.headers.authorization, undefined);
  assert.ok(progress.length > 1, 'progress in several steps');
  assert.deepEqual(progress.at(-1), [file.length, file.length]);
  await assert.rejects(client(server.url).uploadCampaignFile(upload, new Blob(['x'])), { status: 503 });
  assert.equal(server.requests.length, 2, 'an upload is never retried');
  await assert.rejects(client(server.url).uploadCampaignFile({ ...upload, max_bytes: 3 }, 'mail'), {
    status: 413,
    errorType: 'payload_too_large',
  });
  assert.equal(server.requests.length, 2, 'a file over max_bytes is refused before sending');
});

test('waitForCampaign polls until the campaign is finished', async () => {
  const campaign = (status, queued) => ok({ campaign_id: 'cmp_1', status, counts: { queued, sent: 2 - queued } });
  const server = await serve(campaign('validating', 0), campaign('sending', 2), campaign('completed', 0));
  const seen = [];
  const done = await client(server.url).waitForCampaign('cmp_1', { interval: 5, onProgress: (c) => seen.push(c.status) });
  assert.equal(done.status, 'completed');
  assert.deepEqual(seen, ['validating', 'sending', 'completed']);
  const stuck = await serve(campaign('sending', 2));
  await assert.rejects(client(stuck.url).waitForCampaign('cmp_1', { interval: 5, timeout: 30 }), {
    status: 0,
    errorType: 'timeout',
  });
});
