// A campaign through the library in Node, to the end, against the app started as `make run`
// starts it with its local uploads (tests/e2e/test_client_campaigns.py starts it and runs this
// file with MMMS_URL, MMMS_ADMIN_TOKEN and MMMS_CLIENT_MODULE): the file goes to the local
// server's upload URL, the local worker validates it, fans it out and the tick completes it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

const { MmmsClient } = await import(process.env.MMMS_CLIENT_MODULE ?? '../../index.js');
const baseUrl = process.env.MMMS_URL;
const admin = new MmmsClient({ baseUrl, adminToken: process.env.MMMS_ADMIN_TOKEN });
const unique = (name) => `${name}-${randomUUID().slice(0, 8)}`;

test('a campaign created and uploaded from Node reaches completed', async () => {
  const key = await admin.createKey({ name: unique('node-campaign'), origin_names: ['localhost:4321'] });
  const mmms = new MmmsClient({ baseUrl, apiKey: key.api_key, origin: 'http://localhost:4321' });
  const tag = randomUUID().slice(0, 8);
  const csv = 'mail,name,plan\n' + ['a', 'b', 'c'].map((n) => `node-${tag}-${n}@example.org,${n},Pro\n`).join('');
  const created = await mmms.createCampaign({
    email_id: unique('node-campaign'),
    sender_email: 'hello@example.com',
    subject: 'Hi {{ name }}',
    html_template: '<p>Hello {{ name }} on {{ plan }}</p>',
  });
  const progress = [];
  await mmms.uploadCampaignFile(created, csv, { onProgress: ({ loaded, total }) => progress.push([loaded, total]) });
  const seen = [];
  const done = await mmms.waitForCampaign(created.campaign_id, {
    interval: 1000, // a browser key: 60 requests a minute per IP
    timeout: 90000,
    onProgress: (campaign) => seen.push(campaign.status),
  });
  assert.ok(created.upload.url.startsWith(`${baseUrl}/v1/dev/campaign-uploads/`), created.upload.url);
  assert.deepEqual(progress, [[csv.length, csv.length]]);
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.equal(done.counts.queued ?? 0, 0);
  assert.equal((done.counts.sent ?? 0) + (done.counts.delivered ?? 0), 3, JSON.stringify(done.counts));
  assert.equal(seen.at(-1), 'completed');
});
