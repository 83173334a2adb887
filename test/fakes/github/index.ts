/**
 * A small stand-in for the GitHub REST API: the two routes `prune-pins` reads (list branches, list
 * tags of one repository), paginated with Link headers as GitHub does, with the token checked and
 * every request logged.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeGithubApi {
  readonly url: string;
  branches: string[];
  tags: string[];
  /** Answer every request with this status (e.g. 403), or undefined. */
  failWith: number | undefined;
  readonly requests: Array<{ path: string; authorization: string | undefined }>;
  close(): Promise<void>;
}

export async function startFakeGithubApi(options: {
  repository: string;
  token: string;
}): Promise<FakeGithubApi> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fake: FakeGithubApi = {
    url,
    branches: ['main'],
    tags: [],
    failWith: undefined,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('request', (req, res) => {
    const requestUrl = new URL(req.url ?? '/', url);
    fake.requests.push({ path: requestUrl.pathname, authorization: req.headers.authorization });
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    if (fake.failWith !== undefined)
      return send(fake.failWith, { message: 'Resource not accessible by integration' });
    if (
      req.headers.authorization !== `token ${options.token}` &&
      req.headers.authorization !== `Bearer ${options.token}`
    ) {
      return send(401, { message: 'Bad credentials' });
    }
    const match = /^\/repos\/([^/]+\/[^/]+)\/(branches|tags)$/.exec(requestUrl.pathname);
    if (!match || match[1] !== options.repository) return send(404, { message: 'Not Found' });
    const all = match[2] === 'branches' ? fake.branches : fake.tags;
    const perPage = Math.min(100, Number(requestUrl.searchParams.get('per_page') ?? '30'));
    const page = Number(requestUrl.searchParams.get('page') ?? '1');
    const slice = all.slice((page - 1) * perPage, page * perPage);
    const headers: Record<string, string> = {};
    if (page * perPage < all.length) {
      const next = new URL(requestUrl);
      next.searchParams.set('page', String(page + 1));
      headers['link'] = `<${next.toString()}>; rel="next"`;
    }
    const body =
      match[2] === 'branches'
        ? slice.map((name) => ({ name, commit: { sha: 'a'.repeat(40), url: '' }, protected: false }))
        : slice.map((name) => ({
            name,
            commit: { sha: 'a'.repeat(40), url: '' },
            zipball_url: '',
            tarball_url: '',
            node_id: '',
          }));
    send(200, body, headers);
  });
  return fake;
}
