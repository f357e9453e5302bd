// mmms-client: the MMMS HTTP API from a browser page or Node 18+ (SPEC section 14).
// No dependencies: fetch, URLSearchParams and async iterators. Every method resolves to the
// answer's `data`; every failure rejects with an MmmsError.

/** A refused or failed call: the service's error envelope, or a network failure (status 0). */
export class MmmsError extends Error {
  constructor(status, errorType, message, details = null, requestId = null) {
    super(message);
    this.name = 'MmmsError';
    this.status = status;
    this.errorType = errorType;
    this.details = details;
    this.requestId = requestId;
  }
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
// A path segment as RFC 3986 allows it: `@`, `+`, `:` and the like stay as they are.
const seg = (value) => encodeURIComponent(value).replace(/%(24|26|2B|2C|3A|3B|3D|40)/g, decodeURIComponent);

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date), or null. */
const retryAfter = (value) => {
  if (!value) return null;
  const ms = /^\d+$/.test(value) ? value * 1000 : Date.parse(value) - Date.now();
  return Number.isNaN(ms) ? null : Math.max(0, ms);
};

const query = (params = {}) => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value != null) search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
};

export class MmmsClient {
  /**
   * @param {object} options baseUrl (required), apiKey, adminToken, captchaToken, origin (Node
   *   only: browsers send their own), retries (3), retryDelay (ms, 500), maxRetryDelay (ms,
   *   30000: a longer Retry-After is not waited for), timeout (ms per attempt, 30000), fetch.
   */
  constructor({
    baseUrl,
    apiKey,
    adminToken,
    captchaToken,
    origin,
    retries = 3,
    retryDelay = 500,
    maxRetryDelay = 30000,
    timeout = 30000,
    fetch: fetcher,
  } = {}) {
    if (!baseUrl) throw new TypeError('MmmsClient: baseUrl is required');
    this.baseUrl = String(baseUrl).replace(/\/+$/, '');
    Object.assign(this, { apiKey, adminToken, captchaToken, origin, retries, retryDelay });
    Object.assign(this, { maxRetryDelay, timeout });
    this.fetch = fetcher || ((...args) => globalThis.fetch(...args));
  }

  /**
   * One call to the API: `auth` is 'key', 'admin', 'any' (both credentials) or 'none'.
   * Only `idempotent` calls are retried (on 429, 503 and network errors).
   */
  async request(method, path, { params, body, auth = 'key', idempotent = method !== 'POST' } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth !== 'none' && auth !== 'admin' && this.apiKey) headers['x-api-key'] = this.apiKey;
    if (auth !== 'none' && auth !== 'key' && this.adminToken) {
      headers.authorization = `Bearer ${this.adminToken}`;
    }
    if (this.captchaToken && auth !== 'none') headers['x-captcha-token'] = this.captchaToken;
    if (this.origin && typeof document === 'undefined') headers.origin = this.origin;
    const url = this.baseUrl + path + query(params);
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    for (let attempt = 0; ; attempt++) {
      const retry = idempotent && attempt < this.retries;
      const backoff = Math.min(this.maxRetryDelay, this.retryDelay * 2 ** attempt);
      let response;
      try {
        response = await this.fetch(url, { ...init, signal: AbortSignal.timeout(this.timeout) });
      } catch (error) {
        if (retry) {
          await sleep(backoff * (0.5 + Math.random() / 2));
          continue;
        }
        throw networkError(method, url, error);
      }
      if (retry && (response.status === 429 || response.status === 503)) {
        const wait = retryAfter(response.headers.get('retry-after')) ?? backoff;
        if (wait <= this.maxRetryDelay) {
          await response.body?.cancel();
          await sleep(wait);
          continue;
        }
      }
      return answer(response, method, path);
    }
  }

  /** Yields every item of a paged list (`data[key]`), following `next_cursor`. */
  async *pages(path, key, params = {}, auth = 'key') {
    let cursor = params.cursor;
    do {
      const data = await this.request('GET', path, { params: { ...params, cursor }, auth });
      yield* data[key];
      cursor = data.next_cursor;
    } while (cursor);
  }

  // Health and contract
  health() {
    return this.request('GET', '/v1/health', { auth: 'none' });
  }
  ready() {
    return this.request('GET', '/v1/health/ready', { auth: 'none' });
  }
  openapi() {
    return this.request('GET', '/v1/openapi.json', { auth: 'none' });
  }

  // Mail and its status (API key): POST /v1/mail is idempotent by email_id.
  sendMail(body) {
    return this.request('POST', '/v1/mail', { body, idempotent: true });
  }
  getEmail(emailId, params) {
    return this.request('GET', `/v1/mail/${seg(emailId)}`, { params });
  }
  recipients(emailId, params) {
    return this.pages(`/v1/mail/${seg(emailId)}`, 'recipients', params);
  }
  getRecipient(emailId, emailRecipientId) {
    return this.request('GET', `/v1/mail/${seg(emailId)}/recipients/${seg(emailRecipientId)}`);
  }

  // API keys (admin): a path takes the key or its key_id.
  createKey(body) {
    return this.request('POST', '/v1/api-key', { body, auth: 'admin' });
  }
  deleteKey(apiKey) {
    return this.request('DELETE', `/v1/api-key/${seg(apiKey)}`, { auth: 'admin' });
  }
  addOrigins(apiKey, originNames) {
    const body = { origin_names: originNames };
    const path = `/v1/api-key/${seg(apiKey)}/origins`;
    return this.request('POST', path, { body, auth: 'admin', idempotent: true });
  }

  getKey(apiKey) {
    return this.request('GET', `/v1/api-key/${seg(apiKey)}`, { auth: 'admin' });
  }
  updateKey(apiKey, body) {
    // Sets the fields it names: sending it twice leaves the same key, so a retry is safe.
    return this.request('PATCH', `/v1/api-key/${seg(apiKey)}`, { body, auth: 'admin' });
  }

  // Stored templates (admin; a preview also with a key allowed to use the template)
  createTemplate(body) {
    return this.request('POST', '/v1/templates', { body, auth: 'admin' });
  }
  listTemplates(params) {
    return this.request('GET', '/v1/templates', { params, auth: 'admin' });
  }
  templates(params) {
    return this.pages('/v1/templates', 'templates', params, 'admin');
  }
  getTemplate(templateId, params) {
    return this.request('GET', `/v1/templates/${seg(templateId)}`, { params, auth: 'admin' });
  }
  updateTemplate(templateId, body) {
    // Each PUT makes a new version: never retried.
    const path = `/v1/templates/${seg(templateId)}`;
    return this.request('PUT', path, { body, auth: 'admin', idempotent: false });
  }
  deleteTemplate(templateId) {
    return this.request('DELETE', `/v1/templates/${seg(templateId)}`, { auth: 'admin' });
  }
  previewTemplate(templateId, body = {}) {
    const path = `/v1/templates/${seg(templateId)}/preview`;
    return this.request('POST', path, { body, auth: 'any', idempotent: true });
  }

  // Campaigns (API key: its policy applies to every row of the file)
  createCampaign(body) {
    return this.request('POST', '/v1/campaigns', { body });
  }
  listCampaigns(params) {
    return this.request('GET', '/v1/campaigns', { params });
  }
  campaigns(params) {
    return this.pages('/v1/campaigns', 'campaigns', params);
  }
  getCampaign(campaignId) {
    return this.request('GET', `/v1/campaigns/${seg(campaignId)}`);
  }
  cancelCampaign(campaignId) {
    // A second cancel is a 409: never retried.
    return this.request('POST', `/v1/campaigns/${seg(campaignId)}/cancel`);
  }

  /**
   * Sends the recipients' file (File, Blob, ArrayBuffer, typed array or string) where
   * `createCampaign` said (`campaign.upload`); `onProgress({loaded, total})` as it goes.
   * Never retried: the campaign accepts one upload.
   */
  async uploadCampaignFile(campaign, file, { onProgress } = {}) {
    const upload = campaign.upload || campaign;
    const blob = file instanceof Blob ? file : new Blob([file]);
    if (blob.size > upload.max_bytes) {
      throw new MmmsError(413, 'payload_too_large', `The file has ${blob.size} bytes; at most ${upload.max_bytes}`);
    }
    const send = typeof XMLHttpRequest === 'function' ? sendWithXhr : sendWithFetch;
    return answer(await send(upload, blob, onProgress, this.fetch), upload.method, upload.url);
  }

  /** Polls the campaign until it is completed, cancelled or failed; `onProgress(campaign)`. */
  async waitForCampaign(campaignId, { interval = 2000, timeout = 0, onProgress } = {}) {
    const deadline = timeout ? Date.now() + timeout : Infinity;
    for (;;) {
      const campaign = await this.getCampaign(campaignId);
      onProgress?.(campaign);
      if (['completed', 'cancelled', 'failed'].includes(campaign.status)) return campaign;
      if (Date.now() + interval > deadline) {
        throw new MmmsError(0, 'timeout', `Campaign ${campaignId} is still ${campaign.status}`);
      }
      await sleep(interval);
    }
  }

  // Suppression list (admin)
  listSuppressions(params) {
    return this.request('GET', '/v1/suppressions', { params, auth: 'admin' });
  }
  suppressions(params) {
    return this.pages('/v1/suppressions', 'suppressions', params, 'admin');
  }
  addSuppressions(addresses, reason) {
    const body = { addresses, reason };
    return this.request('POST', '/v1/suppressions', { body, auth: 'admin', idempotent: true });
  }
  removeSuppression(address) {
    return this.request('DELETE', `/v1/suppressions/${seg(address)}`, { auth: 'admin' });
  }
}

async function answer(response, method, path) {
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (response.ok) return json && typeof json === 'object' && 'data' in json ? json.data : json;
  const envelope = json && typeof json === 'object' ? json : {};
  throw new MmmsError(
    response.status,
    envelope.error_type || 'http_error',
    envelope.message || `${method} ${path} answered ${response.status}`,
    envelope.details ?? null,
    envelope.request_id || response.headers.get('x-request-id'),
  );
}

// Browsers: XMLHttpRequest, the one API that reports upload progress.
function sendWithXhr(upload, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(upload.headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress?.({ loaded: event.loaded, total: blob.size });
    xhr.onload = () =>
      resolve({
        ok: xhr.status >= 200 && xhr.status < 300,
        status: xhr.status,
        headers: { get: (name) => xhr.getResponseHeader(name) },
        text: async () => xhr.responseText,
      });
    xhr.onerror = xhr.onabort = () => reject(networkError(upload.method, upload.url, new Error('upload failed')));
    xhr.send(blob);
  });
}

// Node: fetch with a counted stream and its Content-Length (S3 takes no chunked uploads).
async function sendWithFetch(upload, blob, onProgress, fetcher) {
  let loaded = 0;
  const body = new ReadableStream({
    async pull(controller) {
      if (loaded >= blob.size) return controller.close();
      const chunk = new Uint8Array(await blob.slice(loaded, loaded + 65536).arrayBuffer());
      loaded += chunk.byteLength;
      controller.enqueue(chunk);
      onProgress?.({ loaded, total: blob.size });
    },
  });
  const headers = { ...upload.headers, 'content-length': String(blob.size) };
  try {
    return await fetcher(upload.url, { method: upload.method, headers, body, duplex: 'half' });
  } catch (error) {
    throw networkError(upload.method, upload.url, error);
  }
}

function networkError(method, url, error) {
  const page = globalThis.location?.origin;
  const hint = page ? `, or this page's origin (${page}) is not allowed to call it (CORS)` : '';
  const why = error?.name === 'TimeoutError' ? 'timed out' : error?.message || String(error);
  return new MmmsError(0, 'network_error', `${method} ${url} failed: ${why}: the service is unreachable${hint}`);
}
