// Compiled by `tsc -p .` (never run): the declared surface accepts what the contract accepts.
import { MmmsClient, MmmsError, type Schemas } from '../../index.js';

const client = new MmmsClient({ baseUrl: 'http://127.0.0.1:8000', apiKey: 'ak_x', origin: 'http://localhost:4321' });

export async function usage(): Promise<void> {
  const sent = await client.sendMail({
    email_id: 'welcome-1',
    recipients: [{ mail: 'ann@example.org', name: 'Ann', emailRecipientId: 'a' }],
    sender_email: 'hello@example.com',
    subject: 'Hi {{ name }}',
    html_template: '<p>Hello {{ name }}</p>',
  });
  if ('email_recipient_ids' in sent || 'message_id' in sent) void sent;
  const page: Schemas['EmailStatusData'] = await client.getEmail('welcome-1', { limit: 10, status: 'sent' });
  for await (const recipient of client.recipients('welcome-1', { limit: 100 })) {
    const status: Schemas['DeliveryState'] | string = recipient.status;
    void status;
  }
  for await (const entry of client.suppressions()) void entry.address;
  await client.addSuppressions(['ann@example.org']);
  const key = await client.createKey({ name: 'front end', origin_names: ['app.example.com'] });
  await client.addOrigins(key.key_id, ['*.example.org']);
  void page;
  const template = await client.createTemplate({ name: 'welcome', subject: 'Hi {{ name }}', html: '<p>Hi</p>' });
  const preview: Schemas['TemplatePreview'] = await client.previewTemplate(template.template_id, { params: { plan: 'Pro' } });
  for await (const stored of client.templates({ limit: 10 })) void stored.version;
  const details = await client.updateKey(key.key_id, { policy: { require_captcha: true } });
  void [preview, details.policy, (await client.getKey(key.key_id)).recipients_today];
  try {
    await client.removeSuppression('ann@example.org');
  } catch (error) {
    if (error instanceof MmmsError) void [error.status, error.errorType, error.details, error.requestId];
  }
}
