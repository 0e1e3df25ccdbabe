// An answer sent before the request body was read (413, 415, 401, 408...)
// closes the connection, but not at once. RFC 9112 section 9.6: closing a
// socket that still has unread data makes the kernel send a reset, and a
// client still uploading then loses the answer it was sent (an SDK sees
// EPIPE or ECONNRESET instead of the 413). So the gateway half-closes (its
// FIN follows the answer), reads and discards what the client still sends,
// and closes fully once the client closes, or after a bounded time and size.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

export interface DrainLimits {
  timeoutMs: number;
  maxBytes: number;
}

/**
 * Call before writing an answer with `Connection: close` while the body is
 * unread. Draining starts now, so Node finds the body consumed when the
 * answer is finished and does not dump it itself.
 */
export function lingerBeforeClose(incoming: IncomingMessage, limits: DrainLimits): void {
  const socket = incoming.socket as Socket & { destroySoon?: () => void };
  if (!socket || socket.destroyed) return;
  // Node ends a `Connection: close` answer with socket.destroySoon(): a FIN,
  // then close(2) as soon as the answer is flushed, with the client's upload
  // still unread. Here it only half-closes; the bounds below close it.
  socket.destroySoon = () => socket.end();
  const close = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(close, limits.timeoutMs).unref();
  socket.once('close', () => clearTimeout(timer));
  let drained = 0;
  incoming.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > limits.maxBytes) close();
  });
  incoming.on('error', () => {});
  incoming.resume();
}
