// A scripted HTTP server on a free loopback port: each request gets the next scripted answer
// and is recorded (method, url, headers, body, arrival time) for the test to assert on.
import { createServer } from 'node:http';

export async function scripted(answers) {
  const requests = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ method: request.method, url: request.url, headers: request.headers, body, at: Date.now() });
      const next = answers.length > 1 ? answers.shift() : answers[0];
      if (next === 'drop') {
        request.socket.destroy();
        return;
      }
      const { status = 200, headers = {}, json, text } = typeof next === 'function' ? next(request, body) : next;
      const payload = text ?? JSON.stringify(json ?? { status, message: 'OK', data: {} });
      response.writeHead(status, { 'content-type': text ? 'text/html' : 'application/json', ...headers });
      response.end(payload);
    });
  });
  await new Promise((ready) => server.listen(0, '127.0.0.1', ready));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, requests, close: () => new Promise((done) => server.close(done)) };
}

export const ok = (data, status = 200) => ({ status, json: { status, message: 'OK', data } });

export const failure = (status, errorType, message, extra = {}) => ({
  status,
  headers: extra.headers ?? {},
  json: { status, error: 'Error', error_type: errorType, message, details: extra.details ?? null, request_id: 'req-1' },
});
