// Writes a long answer the way a real server does: a piece at a time, each
// after the client has taken the last (backpressure). So a client that stops
// reading and closes the connection is seen as a response cut short, however
// large the socket buffers are.
import type { ServerResponse } from 'node:http';

const PIECE = 256 * 1024;

export async function writePaced(res: ServerResponse, text: string): Promise<void> {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += PIECE) {
    if (res.destroyed) return;
    if (!res.write(bytes.subarray(at, at + PIECE))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  if (!res.destroyed) res.end();
}
