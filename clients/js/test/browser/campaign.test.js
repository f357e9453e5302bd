// A campaign from a real browser page (Debian's Chromium driven by playwright-core) against the
// app started as `make run` starts it, uploads included: the upload URL is the local server's
// (tests/e2e/test_client_campaigns.py starts the app and runs this file with MMMS_URL,
// MMMS_ADMIN_TOKEN, MMMS_CHROMIUM and MMMS_CLIENT_MODULE).
//
// The page (http://localhost:PORT, an origin its key allows) creates the campaign, hands a File
// to uploadCampaignFile (XHR, progress reported) and waits for the campaign to complete. The PUT
// is cross-origin with a Content-Type no simple request may carry, so it is sent only after the
// local upload route's CORS preflight allowed it.
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

before(async () => {
  const library = await readFile(libraryPath);
  pages = createServer((request, response) => {
    const js = request.url === '/mmms-client.js';
    response.writeHead(200, { 'content-type': js ? 'text/javascript' : 'text/html' });
    response.end(js ? library : PAGE);
  });
  await new Promise((ready) => pages.listen(0, '127.0.0.1', ready));
  port = pages.address().port;
  browser = await chromium.launch({
    executablePath: process.env.MMMS_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((done) => (pages ? pages.close(done) : done()));
});

test('a page creates a campaign, uploads its file with progress, and the campaign completes', async () => {
  const key = await admin.createKey({ name: unique('browser-campaign'), origin_names: [`localhost:${port}`] });
  const page = await browser.newPage();
  const failed = [];
  page.on('requestfailed', (request) => failed.push(`${request.method()} ${request.url()}`));
  await page.goto(`http://localhost:${port}/`);
  await page.waitForFunction(() => document.title === 'ready');
  const tag = randomUUID().slice(0, 8);
  const csv = 'mail,name\n' + ['a', 'b', 'c'].map((n) => `page-${tag}-${n}@example.org,${n}\n`).join('');
  const seen = await page.evaluate(
    async ({ baseUrl, apiKey, emailId, csv }) => {
      const client = new window.mmms.MmmsClient({ baseUrl, apiKey });
      const created = await client.createCampaign({
        email_id: emailId,
        sender_email: 'hello@example.com',
        subject: 'Hi {{ name }}',
        html_template: '<p>Hello {{ name }}</p>',
      });
      const file = new File([csv], 'list.csv', { type: 'text/csv' });
      const progress = [];
      await client.uploadCampaignFile(created, file, { onProgress: ({ loaded, total }) => progress.push([loaded, total]) });
      const again = await client.uploadCampaignFile(created, file).catch((error) => error);
      // Once a second: a browser key allows 60 requests a minute per IP.
      const done = await client.waitForCampaign(created.campaign_id, { interval: 1000, timeout: 90000 });
      return {
        origin: location.origin,
        url: created.upload.url,
        headers: created.upload.headers,
        progress,
        again: { isMmmsError: again instanceof window.mmms.MmmsError, status: again.status },
        done,
      };
    },
    { baseUrl, apiKey: key.api_key, emailId: unique('page-campaign'), csv },
  );
  assert.equal(seen.origin, `http://localhost:${port}`);
  assert.ok(seen.url.startsWith(`${baseUrl}/v1/dev/campaign-uploads/`), seen.url);
  assert.equal(seen.headers['Content-Type'], 'text/csv'); // not CORS-safelisted: a preflight first
  assert.deepEqual(failed, []);
  assert.ok(seen.progress.length >= 1);
  assert.deepEqual(seen.progress.at(-1), [csv.length, csv.length]);
  // A second upload is refused with a status the page can read (the 409 carries CORS headers).
  assert.deepEqual(seen.again, { isMmmsError: true, status: 409 });
  assert.equal(seen.done.status, 'completed', JSON.stringify(seen.done));
  assert.equal((seen.done.counts.sent ?? 0) + (seen.done.counts.delivered ?? 0), 3, JSON.stringify(seen.done.counts));
});
