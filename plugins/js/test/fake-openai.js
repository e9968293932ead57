/**
 * A tiny OpenAI-compatible chat completions server on 127.0.0.1, for tests of the llm helper and
 * the js-llm example. `POST /v1/chat/completions` answers with the last user message echoed back;
 * a model named `status-NNN` answers HTTP NNN with an OpenAI-style error body. Every request is
 * kept in `requests` (method, url, headers, body).
 *
 *   node test/fake-openai.js [PORT]     # prints "listening on http://127.0.0.1:PORT", runs until killed
 * @module
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';

/**
 * Starts the server.
 * @param {number} [port] 0 picks a free port
 * @returns {Promise<{url: string, port: number, requests: object[], close: () => Promise<void>}>}
 */
export function startFakeOpenAI(port = 0) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: json ?? body });
      const send = (status, value) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        return send(404, { error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } });
      }
      if (!json || !Array.isArray(json.messages)) return send(400, { error: { message: 'messages: an array is required' } });
      const m = /^status-(\d{3})$/.exec(json.model ?? '');
      if (m) return send(Number(m[1]), { error: { message: `fake failure ${m[1]}`, type: 'fake' } });
      const last = [...json.messages].reverse().find((x) => x.role === 'user');
      const content = `echo: ${last ? last.content : ''}`;
      const prompt = json.messages.reduce((n, x) => n + String(x.content).split(/\s+/).filter(Boolean).length, 0);
      const completion = content.split(/\s+/).filter(Boolean).length;
      send(200, {
        id: 'chatcmpl-fake',
        object: 'chat.completion',
        model: `${json.model}-fake`,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      });
    });
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const actual = server.address().port;
      resolvePromise({
        url: `http://127.0.0.1:${actual}`,
        port: actual,
        requests,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const s = await startFakeOpenAI(Number(process.argv[2] ?? 0));
  process.stdout.write(`listening on ${s.url}\n`);
}
