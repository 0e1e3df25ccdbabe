// An HTTP hop in front of the test S3 server (s3-server.ts) that scripts a
// slow link: uploads held for a while, or listings answered only when the
// test says so. It counts the uploads that pass through it.
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Link {
  /** Use in place of the S3 server's endpoint. */
  endpoint: string;
  /** Uploads begun (PutObject or CreateMultipartUpload), by object path (a file is its content and a `.json` of its metadata). */
  uploads: string[];
  /** Each upload request (PUT, POST) waits this long before it is sent on; 0 is off. */
  uploadDelayMs: number;
  /** From now on, listings (ListObjectsV2) run at once but are answered only at release(); resolves at the first one held. */
  holdListings(): { held: Promise<void>; release(): void };
  close(): Promise<void>;
}

export async function startS3Link(target: string): Promise<S3Link> {
  const to = new URL(target);
  let hold: { gate: Promise<void>; seen: () => void } | undefined;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', target);
    const upload = req.method === 'PUT' || req.method === 'POST';
    if ((req.method === 'PUT' && !url.searchParams.has('uploadId')) || (req.method === 'POST' && url.searchParams.has('uploads'))) link.uploads.push(url.pathname);
    const listing = req.method === 'GET' && url.searchParams.get('list-type') === '2';
    const body: Buffer[] = [];
    for await (const chunk of req) body.push(chunk as Buffer);
    if (upload && link.uploadDelayMs > 0) await new Promise((r) => setTimeout(r, link.uploadDelayMs));
    const held = listing ? hold : undefined;
    const out = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, async (answer) => {
      if (held) {
        held.seen();
        await held.gate;
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    out.end(Buffer.concat(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const link: S3Link = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    uploads: [],
    uploadDelayMs: 0,
    holdListings() {
      let release!: () => void;
      let seen!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const held = new Promise<void>((r) => (seen = r));
      hold = { gate, seen };
      return {
        held,
        release() {
          hold = undefined;
          release();
        },
      };
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
  return link;
}
