// The audit record of a file uploaded or deleted through the Files API (part
// of the audit schema, src/audit/schema.ts): who, which file, its size, line
// count and content hash, never its content. It goes to the chain of the
// file's lane, beside the requests its batch will run.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { KeyInfo } from '../config/compile.js';
import type { CompiledLane } from '../policy/compile.js';
import type { StoredFile } from './types.js';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const fileRecordSchema = z.object({
  v: z.number().int(),
  kind: z.literal('file'),
  /** This record's own id. */
  id: z.string(),
  time: z.string(),
  /** The HTTP request (as in x-request-id). */
  request_id: z.string(),
  action: z.enum(['upload', 'delete']),
  /** The route: POST /v1/files or DELETE /v1/files/{id}. */
  endpoint: z.string(),
  key_id: z.string(),
  app: z.string(),
  team: z.string(),
  lane: z.object({ name: z.string(), bodies: z.enum(['full', 'redacted', 'hash']), retention_days: z.number().int() }),
  /** The file; null for an upload that was refused. */
  file: z
    .object({
      id: z.string(),
      purpose: z.string(),
      filename: z.string(),
      bytes: z.number().int(),
      lines: z.number().int().nullable(),
      sha256: sha256.nullable(),
      created_at: z.number().int(),
      expires_at: z.number().int().nullable(),
    })
    .nullable(),
  /** HTTP status sent. */
  status: z.number().int(),
  error_code: z.string().nullable(),
  prev: sha256.optional(),
  hash: sha256.optional(),
});

export type AuditFileRecord = z.infer<typeof fileRecordSchema>;

export interface FileAuditInput {
  requestId: string;
  action: 'upload' | 'delete';
  endpoint: string;
  key: KeyInfo;
  lane: CompiledLane;
  file: StoredFile | undefined;
  status: number;
  errorCode: string | null;
}

export function fileAuditRecord(input: FileAuditInput, version: number): AuditFileRecord {
  const f = input.file;
  return {
    v: version,
    kind: 'file',
    id: `fr_${randomBytes(12).toString('hex')}`,
    time: new Date().toISOString(),
    request_id: input.requestId,
    action: input.action,
    endpoint: input.endpoint,
    key_id: input.key.id,
    app: input.key.app,
    team: input.key.team,
    lane: { name: input.lane.name, bodies: input.lane.audit.bodies, retention_days: input.lane.audit.retention_days },
    file: f
      ? { id: f.id, purpose: f.purpose, filename: f.filename, bytes: f.bytes, lines: f.lines ?? null, sha256: f.sha256 ?? null, created_at: f.created_at, expires_at: f.expires_at }
      : null,
    status: input.status,
    error_code: input.errorCode,
  };
}
