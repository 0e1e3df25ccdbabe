// The stdio transport to a local MCP server, as the SDK's
// StdioClientTransport (newline-delimited JSON-RPC over the child's stdin and
// stdout) but bounded while it reads: the SDK's buffer keeps everything up to
// the next newline, so a server that writes a huge line, or never a newline,
// would grow the gateway's memory until the call times out. Here a line
// longer than `maxLineBytes` is cut off as it arrives: the server is told
// (onExceeded, for the failed calls' message), the process is killed and the
// connection fails like a bad provider answer; the supervisor restarts it.
import { spawn, type ChildProcess } from 'node:child_process';
import { deserializeMessage, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export interface BoundedStdioOptions {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  maxLineBytes: number;
  onExceeded(): void;
  onStderr(chunk: Buffer): void;
}

const NEWLINE = 0x0a;

export class BoundedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private child: ChildProcess | undefined;
  /** The part of the current line received so far. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private cutOff = false;

  constructor(private readonly o: BoundedStdioOptions) {}

  start(): Promise<void> {
    if (this.child) throw new Error('BoundedStdioTransport already started');
    return new Promise((resolve, reject) => {
      const child = spawn(this.o.command, this.o.args, { env: this.o.env, cwd: this.o.cwd, stdio: ['pipe', 'pipe', 'pipe'], shell: false, windowsHide: true });
      this.child = child;
      child.on('error', (err) => {
        reject(err);
        this.onerror?.(err);
      });
      child.on('spawn', () => resolve());
      child.on('close', () => {
        this.child = undefined;
        this.onclose?.();
      });
      child.stdin?.on('error', (err) => this.onerror?.(err));
      child.stdout?.on('data', (chunk: Buffer) => this.read(chunk));
      child.stdout?.on('error', (err) => this.onerror?.(err));
      child.stderr?.on('data', (chunk: Buffer) => this.o.onStderr(chunk));
    });
  }

  private read(chunk: Buffer): void {
    if (this.cutOff) return;
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      const part = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.pendingBytes + part.byteLength > this.o.maxLineBytes) return this.exceeded();
      const line = this.pending.length === 0 ? part : Buffer.concat([...this.pending, part]);
      this.pending = [];
      this.pendingBytes = 0;
      this.deliver(line.toString('utf8'));
      if (this.cutOff) return;
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start);
      if (this.pendingBytes + rest.byteLength > this.o.maxLineBytes) return this.exceeded();
      this.pending.push(rest);
      this.pendingBytes += rest.byteLength;
    }
  }

  private deliver(line: string): void {
    if (line.trim() === '') return;
    let message: JSONRPCMessage;
    try {
      message = deserializeMessage(line.endsWith('\r') ? line.slice(0, -1) : line);
    } catch (err) {
      this.onerror?.(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.onmessage?.(message);
  }

  private exceeded(): void {
    this.cutOff = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.o.onExceeded();
    this.child?.stdout?.destroy();
    this.child?.kill('SIGKILL');
    this.onerror?.(new Error(`a line over ${this.o.maxLineBytes} bytes on stdout`));
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin) return Promise.reject(new Error('Not connected'));
    return new Promise((resolve) => {
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    // As the SDK's transport: end stdin and give the process a moment to exit, then signals.
    child.stdin?.end();
    const waited = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref())]);
    if (waited) return;
    child.kill('SIGTERM');
    const termed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref())]);
    if (!termed) child.kill('SIGKILL');
  }
}
