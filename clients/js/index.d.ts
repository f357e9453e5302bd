// Types of mmms-client: every body and answer is a type of openapi.d.ts, which
// openapi-typescript generates from the service's contract (docs/openapi.json).
import type { components, operations } from './openapi.js';

export type { components, operations, paths } from './openapi.js';
export type Schemas = components['schemas'];
/** The query parameters of an operation of the contract. */
export type Query<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>;
/** Which credentials a call carries: the API key, the admin token, either, or none. */
export type Auth = 'key' | 'admin' | 'any' | 'none';
type Paging<Op extends keyof operations> = Omit<Query<Op>, 'cursor'> & { cursor?: string | null };

export interface MmmsClientOptions {
  /** The service's address, e.g. `https://mail.example.com` (no `/v1`). */
  baseUrl: string;
  /** An API key (`ak_…`) for mail and status calls. */
  apiKey?: string;
  /** The admin token, for keys and suppressions: never in a browser page. */
  adminToken?: string;
  /** Sent as `X-Captcha-Token` when the key's policy requires a CAPTCHA. */
  captchaToken?: string;
  /** The `Origin` header to send from Node (browsers send their own). */
  origin?: string;
  /** Attempts after the first for idempotent calls on 429, 503 and network errors (3). */
  retries?: number;
  /** First backoff in ms, doubled each attempt, with jitter (500). */
  retryDelay?: number;
  /** Longest wait in ms; a longer `Retry-After` fails at once instead (30000). */
  maxRetryDelay?: number;
  /** Time limit of one attempt in ms (30000). */
  timeout?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  params?: Record<string, string | number | boolean | null | undefined>;
  body?: unknown;
  auth?: Auth;
  /** Retried on 429, 503 and network errors (default: every method but POST). */
  idempotent?: boolean;
}

/** A refused or failed call. `status` 0 and `errorType` `network_error`: no answer at all. */
export class MmmsError extends Error {
  constructor(
    status: number,
    errorType: string,
    message: string,
    details?: unknown,
    requestId?: string | null,
  );
  readonly name: 'MmmsError';
  status: number;
  errorType: string;
  /** The envelope's details: Pydantic's error list for a 422, `{loc, …}` for a 403. */
  details: unknown;
  /** The `X-Request-Id` of the answer: quote it when reporting a problem. */
  requestId: string | null;
}

export class MmmsClient {
  constructor(options: MmmsClientOptions);
  readonly baseUrl: string;
  request<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<T>;
  pages<T = unknown>(
    path: string,
    key: string,
    params?: RequestOptions['params'],
    auth?: Auth,
  ): AsyncGenerator<T, void, undefined>;

  health(): Promise<string>;
  ready(): Promise<string>;
  openapi(): Promise<Record<string, unknown>>;

  sendMail(body: Schemas['SendMailRequest']): Promise<Schemas['SingleSendData'] | Schemas['BulkAcceptedData']>;
  getEmail(emailId: string, params?: Query<'get_email_status'>): Promise<Schemas['EmailStatusData']>;
  recipients(
    emailId: string,
    params?: Paging<'get_email_status'>,
  ): AsyncGenerator<Schemas['RecipientStatus'], void, undefined>;
  getRecipient(emailId: string, emailRecipientId: string): Promise<Schemas['RecipientStatusData']>;

  createKey(body: Schemas['CreateApiKeyRequest']): Promise<Schemas['ApiKeyCreated']>;
  deleteKey(apiKey: string): Promise<Schemas['ApiKeyDeleted']>;
  addOrigins(apiKey: string, originNames: string[]): Promise<Schemas['OriginsAdded']>;

  getKey(apiKey: string): Promise<Schemas['ApiKeyDetails']>;
  updateKey(apiKey: string, body: Schemas['UpdateApiKeyRequest']): Promise<Schemas['ApiKeyDetails']>;

  createTemplate(body: Schemas['TemplateRequest']): Promise<Schemas['TemplateOut']>;
  listTemplates(params?: Query<'list_templates'>): Promise<Schemas['TemplateList']>;
  templates(params?: Paging<'list_templates'>): AsyncGenerator<Schemas['TemplateOut'], void, undefined>;
  getTemplate(templateId: string, params?: Query<'get_template'>): Promise<Schemas['TemplateOut']>;
  /** A new version (n+1) of the template; older versions stay. Never retried. */
  updateTemplate(templateId: string, body: Schemas['TemplateRequest']): Promise<Schemas['TemplateOut']>;
  /** Archives the template: new sends get 404, queued ones still render. */
  deleteTemplate(templateId: string): Promise<Schemas['TemplateArchived']>;
  previewTemplate(templateId: string, body?: Schemas['PreviewRequest']): Promise<Schemas['TemplatePreview']>;

  createCampaign(body: Schemas['CreateCampaignRequest']): Promise<Schemas['CampaignCreated']>;
  listCampaigns(params?: Query<'list_campaigns'>): Promise<Schemas['CampaignList']>;
  campaigns(params?: Paging<'list_campaigns'>): AsyncGenerator<Schemas['CampaignData'], void, undefined>;
  getCampaign(campaignId: string): Promise<Schemas['CampaignData']>;
  /** Rows not yet handed to a provider become cancelled; a finished campaign is a 409. */
  cancelCampaign(campaignId: string): Promise<Schemas['CampaignData']>;
  /** Sends the recipients' file where `createCampaign` said; never retried. */
  uploadCampaignFile(
    campaign: Schemas['CampaignCreated'] | Schemas['UploadTarget'],
    file: Blob | ArrayBuffer | ArrayBufferView | string,
    options?: { onProgress?: (progress: { loaded: number; total: number }) => void },
  ): Promise<unknown>;
  /** Polls until completed, cancelled or failed (an MmmsError `timeout` after `timeout` ms). */
  waitForCampaign(
    campaignId: string,
    options?: { interval?: number; timeout?: number; onProgress?: (campaign: Schemas['CampaignData']) => void },
  ): Promise<Schemas['CampaignData']>;

  listSuppressions(params?: Query<'list_suppressions'>): Promise<Schemas['SuppressionList']>;
  suppressions(
    params?: Paging<'list_suppressions'>,
  ): AsyncGenerator<Schemas['SuppressionOut'], void, undefined>;
  addSuppressions(
    addresses: string[],
    reason?: Schemas['AddSuppressionsRequest']['reason'],
  ): Promise<Schemas['SuppressionsAdded']>;
  removeSuppression(address: string): Promise<Schemas['SuppressionDeleted']>;
}
