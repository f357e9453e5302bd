// The library in Node against the app started as `make run` starts it (tests/e2e/test_clients.py
// starts it and runs this file with MMMS_URL, MMMS_ADMIN_TOKEN and MMMS_CLIENT_MODULE: the
// package as `npm install` put it in a project of its own).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, test } from 'node:test';

const { MmmsClient, MmmsError } = await import(process.env.MMMS_CLIENT_MODULE ?? '../../index.js');
const baseUrl = process.env.MMMS_URL;
const admin = new MmmsClient({ baseUrl, adminToken: process.env.MMMS_ADMIN_TOKEN });
const origin = 'http://localhost:4321';
const unique = (name) => `${name}-${randomUUID().slice(0, 8)}`;
let key;
let mmms;

const mail = (emailId, recipients) => ({
  email_id: emailId,
  recipients,
  sender_email: 'hello@example.com',
  sender_name: 'Hello Team',
  subject: 'Hi {{ name }}',
  html_template: '<p>Hello {{ name }}</p>',
});

before(async () => {
  key = await admin.createKey({ name: unique('node'), origin_names: ['localhost:4321'] });
  mmms = new MmmsClient({ baseUrl, apiKey: key.api_key, origin });
});

test('one recipient is sent, and sending it again sends nothing more', async () => {
  const emailId = unique('welcome');
  const body = mail(emailId, [{ name: 'Ann', mail: 'ann@example.org', emailRecipientId: 'a' }]);
  const sent = await mmms.sendMail(body);
  const again = await mmms.sendMail(body);
  assert.equal(sent.status.status, 'sent');
  assert.equal(sent.status.provider, 'capture');
  assert.equal(again.message_id, sent.message_id);
  const odd = unique('a/b c#?%é+@'); // path characters that need care, decoded once by the app
  await mmms.sendMail(mail(odd, [{ mail: 'ed@example.org', emailRecipientId: 'e d/1' }]));
  assert.equal((await mmms.getRecipient(odd, 'e d/1')).email_recipient_id, 'e d/1');
  const history = await mmms.getRecipient(emailId, 'a');
  assert.equal(history.recipient, 'ann@example.org');
  assert.ok(history.events.length >= 1);
});

test('a bulk email is paged through by the async iterator', async () => {
  const emailId = unique('news');
  const recipients = ['b', 'c', 'd'].map((id) => ({ name: id, mail: `${id}@example.org`, emailRecipientId: id }));
  const accepted = await mmms.sendMail(mail(emailId, recipients));
  assert.equal(accepted.count, 3);
  const seen = [];
  for await (const recipient of mmms.recipients(emailId, { limit: 1 })) seen.push(recipient.email_recipient_id);
  assert.deepEqual(seen.sort(), ['b', 'c', 'd']);
  const page = await mmms.getEmail(emailId, { limit: 2 });
  assert.equal(page.recipients.length, 2);
  assert.equal(typeof page.next_cursor, 'string');
});

test('refusals are MmmsErrors carrying the envelope and the request id', async () => {
  const stranger = new MmmsClient({ baseUrl, apiKey: 'ak_not_a_key_at_all_0123456789abcdef', origin });
  const unauthorized = await stranger.getEmail('x').catch((error) => error);
  assert.ok(unauthorized instanceof MmmsError);
  assert.equal(unauthorized.status, 401);
  assert.equal(unauthorized.errorType, 'unauthorized');
  assert.match(unauthorized.message, /^Unauthorized - /);
  assert.match(unauthorized.requestId, /\S/);

  const invalid = await mmms.sendMail({ ...mail(unique('bad'), [{ mail: 'not an address' }]) }).catch((e) => e);
  assert.equal(invalid.status, 422);
  assert.equal(invalid.errorType, 'validation_error');
  assert.ok(Array.isArray(invalid.details) && invalid.details.length > 0);

  await assert.rejects(mmms.getEmail(unique('nobody')), { status: 404, errorType: 'not_found' });
});

test('suppressions round-trip, an address with + and @ in the path included', async () => {
  const address = `${unique('x')}+tag@example.org`;
  const added = await admin.addSuppressions([address]);
  assert.deepEqual(added.added.map((entry) => entry.address), [address]);
  const listed = [];
  for await (const entry of admin.suppressions({ limit: 1 })) listed.push(entry.address);
  assert.ok(listed.includes(address));
  const removed = await admin.removeSuppression(address);
  assert.equal(removed.address, address);
  assert.deepEqual((await admin.listSuppressions({ address })).suppressions, []);
});

test('a deleted key is refused from then on', async () => {
  const doomed = await admin.createKey({ name: unique('doomed'), origin_names: ['localhost:4321'] });
  await admin.addOrigins(doomed.key_id, ['app.example.com']);
  await admin.deleteKey(doomed.key_id);
  const client = new MmmsClient({ baseUrl, apiKey: doomed.api_key, origin });
  await assert.rejects(client.sendMail(mail(unique('late'), [{ mail: 'late@example.org' }])), { status: 401 });
});

test('stored templates: versions, preview, sending with params, archive', async () => {
  const body = { name: unique('tpl'), subject: 'Hi {{ name }}', html: '<p>{{ name }} on {{ plan }}</p>', sample_params: { plan: 'Pro' } };
  const created = await admin.createTemplate(body);
  const updated = await admin.updateTemplate(created.template_id, { ...body, subject: 'Hello {{ name }}' });
  const first = await admin.getTemplate(created.template_id, { version: 1 });
  const names = [];
  for await (const template of admin.templates({ limit: 1 })) names.push(template.name);
  const preview = await admin.previewTemplate(created.template_id, { params: { plan: 'Team' }, recipient: { name: 'Bo' } });
  const emailId = unique('tpl');
  const sent = await mmms.sendMail({
    email_id: emailId,
    sender_email: 'hello@example.com',
    recipients: [{ name: 'Ann', mail: 'ann@example.org' }],
    template_id: created.template_id,
    params: { plan: 'Pro' },
  });
  const archived = await admin.deleteTemplate(created.template_id);
  assert.deepEqual([created.version, updated.version, first.subject], [1, 2, 'Hi {{ name }}']);
  assert.deepEqual(created.params, ['plan']);
  assert.ok(names.includes(body.name));
  assert.equal(preview.subject, 'Hello Bo');
  assert.match(preview.html, /Bo on Team/);
  assert.equal(sent.status.status, 'sent');
  assert.equal(archived.archived, true);
  await assert.rejects(mmms.sendMail({ ...mail(unique('late'), [{ mail: 'x@example.org' }]), subject: undefined, html_template: undefined, template_id: created.template_id }), { status: 404 });
});

test('a key shows its policy with defaults, and PATCH changes it', async () => {
  const shown = await admin.getKey(key.key_id);
  const patched = await admin.updateKey(key.key_id, { policy: { allowed_senders: ['@example.com'] } });
  assert.equal(shown.kind, 'browser');
  assert.deepEqual(shown.origin_names, ['localhost:4321']);
  assert.equal(shown.policy.inline_templates, true);
  assert.deepEqual(patched.policy.allowed_senders, ['@example.com']);
  const refused = await mmms.sendMail({ ...mail(unique('sender'), [{ mail: 'x@example.org' }]), sender_email: 'a@other.org' }).catch((e) => e);
  assert.deepEqual([refused.status, refused.errorType, refused.details[0].loc], [403, 'forbidden', ['sender_email']]);
  await admin.updateKey(key.key_id, { policy: { allowed_senders: null } });
});

test('a campaign: created, its file streamed to the presigned URL with progress, cancelled', async () => {
  // tests/e2e/test_clients.py checks that the bucket holds exactly these bytes.
  const csv = 'mail,name\n' + Array.from({ length: 4000 }, (_, i) => `n${i}@example.org,N ${i}\n`).join('');
  const created = await mmms.createCampaign({
    email_id: unique('campaign'),
    sender_email: 'hello@example.com',
    subject: 'Hi {{ name }}',
    html_template: '<p>Hello {{ name }}</p>',
  });
  const progress = [];
  await mmms.uploadCampaignFile(created, csv, { onProgress: ({ loaded, total }) => progress.push([loaded, total]) });
  const listed = [];
  for await (const campaign of mmms.campaigns({ limit: 1 })) listed.push(campaign.campaign_id);
  const cancelled = await mmms.cancelCampaign(created.campaign_id);
  assert.equal(created.status, 'awaiting_upload');
  assert.equal(progress.length, Math.ceil(csv.length / 65536));
  assert.deepEqual(progress.at(-1), [csv.length, csv.length]);
  assert.ok(listed.includes(created.campaign_id));
  assert.equal(cancelled.status, 'cancelled');
  await assert.rejects(mmms.cancelCampaign(created.campaign_id), { status: 409, errorType: 'conflict' });
  const waited = await mmms.waitForCampaign(created.campaign_id, { interval: 10 });
  assert.equal(waited.status, 'cancelled');
});
