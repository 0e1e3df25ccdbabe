// The CLI's answer to an operator's mistake: one clear line, never a stack
// trace. Anything not listed here is a bug and keeps its stack.
import { ConfigError } from './config/load.js';

const SOCKET_ERRORS: Record<string, (address: string) => string> = {
  EADDRINUSE: (address) => `${address} is already in use: stop what listens there, or set server.port (or PORT) to another port`,
  EACCES: (address) => `no permission to listen on ${address}: ports below 1024 need privileges; use a higher port`,
  EADDRNOTAVAIL: (address) => `${address} is not an address of this machine: check server.host`,
};

export function userErrorLine(err: unknown): string | undefined {
  if (err instanceof ConfigError) return err.message;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; syscall?: string };
  if (e && typeof e === 'object' && e.syscall === 'listen' && e.code && SOCKET_ERRORS[e.code]) {
    return `lanegate: ${SOCKET_ERRORS[e.code]!(`${e.address ?? ''}:${e.port ?? ''}`)}`;
  }
  return undefined;
}
