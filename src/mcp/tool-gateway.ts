// The tool governance's long-lived parts (one per gateway, a declared field
// of Services) in a module of their own: pipeline/context.ts declares the
// field, and govern.ts, which reads the context, must not be what it imports.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AuditSink } from '../audit/transport/writer.js';
import type { RedisStore } from '../stores/redis.js';
import { createMemoryToolRunStore, createRedisToolRunStore, type ToolRunStore } from './tool-runs.js';

export type ToolExecutor = (server: string, tool: string, args: Record<string, unknown>, signal: AbortSignal) => Promise<CallToolResult>;

export interface ToolGatewayParts {
  /** Where tool_call records go (GatewayState.audit); without it none are written. */
  audit?: AuditSink;
  /** Runs approved calls; without it an approved call cannot run (the approval tool says so). */
  execute?: ToolExecutor;
  /** How long a held MCP call may wait for its decision. Default 24 hours. */
  approvalTtlMs?: number;
}

export const DEFAULT_APPROVAL_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * The tool governance's long-lived parts, one per gateway: a declared field
 * of Services (`toolGateway`), built with the rest in the composition root
 * (services.ts), so two gateways in one process (tests, replicas) each keep
 * their own sink, executor and counters.
 */
export interface ToolGateway {
  audit: AuditSink | undefined;
  execute: ToolExecutor | undefined;
  approvalTtlMs: number;
  runs: ToolRunStore;
}

export function createToolGateway(o: { redis: RedisStore | undefined; execute?: ToolExecutor }): ToolGateway {
  return {
    audit: undefined,
    execute: o.execute,
    approvalTtlMs: DEFAULT_APPROVAL_TTL_MS,
    runs: o.redis ? createRedisToolRunStore(o.redis) : createMemoryToolRunStore(),
  };
}

