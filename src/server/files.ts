// The Files API over HTTP (batch input and output files): POST /v1/files
// (multipart), GET /v1/files, GET /v1/files/{id}, GET /v1/files/{id}/content,
// DELETE /v1/files/{id}. Authenticated with the app's own key; files belong to
// the key's team, so another team's id, a deleted or expired one and one that
// never existed all read as the same 404.
//
// An upload is read within files.max_bytes (plus room for the form around
// it) while it arrives, as every body is (body.ts), and at most
// files.max_concurrent_uploads are held in memory at once.
import { randomUUID } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context, Hono } from 'hono';
import { AUDIT_RECORD_VERSION } from '../audit/schema.js';
import { authenticateKey } from '../auth/keys.js';
import type { KeyInfo } from '../config/compile.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { fileAuditRecord, type FileAuditInput } from '../files/audit.js';
import { FILE_PURPOSES, type FileObject, type FilePurpose, type StoredFile } from '../files/types.js';
import { startingLane } from '../policy/lane.js';
import { readRawBody, shouldCloseConnection } from './body.js';
import { lingerBeforeClose } from './lingering-close.js';
import { multipartBoundary, parseMultipart, type FormPart } from './multipart.js';
import { writeError, writeJson } from './reply.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

/** Room for the multipart framing and the small fields around the file. */
const FORM_OVERHEAD_BYTES = 64 * 1024;
/** OpenAI's bounds for expires_after.seconds (1 hour to 30 days). */
const EXPIRES_AFTER_MIN_S = 3600;
const EXPIRES_AFTER_MAX_S = 30 * 86_400;

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `No file "${id}" for this key's team: it never existed, was deleted, or expired.`, { param: 'file_id' });
}

/** The file as OpenAI shows it: the gateway's own fields (team, lane, hash) stay inside. */
export function fileObject(f: StoredFile): FileObject {
  return { id: f.id, object: 'file', bytes: f.bytes, created_at: f.created_at, expires_at: f.expires_at, filename: f.filename, purpose: f.purpose, status: f.status };
}

function field(parts: FormPart[], name: string): string | undefined {
  const part = parts.find((p) => p.name === name && p.filename === undefined);
  return part?.data.toString('utf8').trim();
}

function expiresAfter(parts: FormPart[]): number | undefined {
  const anchor = field(parts, 'expires_after[anchor]');
  const seconds = field(parts, 'expires_after[seconds]');
  if (anchor === undefined && seconds === undefined) return undefined;
  if (anchor !== 'created_at') throw new GatewayError('invalid_request', 'expires_after[anchor] must be "created_at".', { param: 'expires_after.anchor' });
  const s = Number(seconds);
  if (!Number.isInteger(s) || s < EXPIRES_AFTER_MIN_S || s > EXPIRES_AFTER_MAX_S) {
    throw new GatewayError('invalid_request', `expires_after[seconds] must be an integer from ${EXPIRES_AFTER_MIN_S} to ${EXPIRES_AFTER_MAX_S}.`, { param: 'expires_after.seconds' });
  }
  return s;
}

export function mountFiles(app: Hono<Env>, state: GatewayState, prefix: string): void {
  let uploading = 0;

  const audit = (input: FileAuditInput) => {
    if (state.audit.enabled) state.audit.write(fileAuditRecord(input, AUDIT_RECORD_VERSION));
  };

  app.post(`${prefix}/files`, async (c) => {
    const { incoming, outgoing } = c.env;
    const requestId = randomUUID();
    const config = state.config();
    let key: KeyInfo | undefined;
    let lane: ReturnType<typeof startingLane>['lane'] | undefined;
    let counted = false;
    try {
      key = authenticateKey(config, incoming.headers);
      lane = startingLane(config.policies, key, incoming.headers['x-gateway-lane']).lane;
      const boundary = multipartBoundary(incoming);
      const limits = config.raw.files;
      if (uploading >= limits.max_concurrent_uploads) {
        throw new GatewayError('overloaded', `The gateway is receiving ${uploading} uploads already; retry shortly.`, { retryAfter: 1 });
      }
      uploading++;
      counted = true;
      let body: Buffer;
      try {
        body = await readRawBody(incoming, { maxBytes: limits.max_bytes + FORM_OVERHEAD_BYTES, timeoutMs: limits.upload_timeout_ms, maxDepth: 0, encodings: config.server.request_encodings });
      } catch (err) {
        // The connection closes either way (the rest of the upload is unread): say the file's limit, not the form's.
        if (err instanceof GatewayError && err.code === 'request_too_large') {
          throw new GatewayError('request_too_large', `The upload is larger than the gateway's limit of ${limits.max_bytes} bytes for a file.`, { param: 'file', cause: err });
        }
        throw err;
      }
      const parts = parseMultipart(body, boundary);
      const file = parts.find((p) => p.name === 'file' && p.filename !== undefined);
      if (!file) throw new GatewayError('invalid_request', 'The form has no "file" part; send the JSONL file as the "file" field.', { param: 'file' });
      const purpose = field(parts, 'purpose');
      if (purpose === undefined) throw new GatewayError('invalid_request', 'The form has no "purpose" field; send purpose "batch".', { param: 'purpose' });
      if (purpose !== 'batch') {
        const known = (FILE_PURPOSES as readonly string[]).includes(purpose);
        throw new GatewayError('invalid_request', `${known ? `Files of purpose "${purpose}" are written by the gateway` : 'This gateway stores batch files only'}; upload with purpose "batch".`, { param: 'purpose' });
      }
      const stored = await state.services.files.create({
        team: key.team,
        lane: lane.name,
        filename: file.filename || 'file.jsonl',
        purpose: 'batch',
        content: file.data,
        expiresAfterSeconds: expiresAfter(parts),
      });
      audit({ requestId, action: 'upload', endpoint: `POST ${prefix}/files`, key, lane, file: stored, status: 200, errorCode: null });
      writeJson(outgoing, 200, fileObject(stored), { 'x-request-id': requestId });
    } catch (err) {
      const error = toGatewayError(err);
      if (error.code === 'internal_error') state.logger.error({ err, requestId }, 'internal error');
      state.services.files.refused(error.code);
      if (key && lane) audit({ requestId, action: 'upload', endpoint: `POST ${prefix}/files`, key, lane, file: undefined, status: error.status, errorCode: error.code });
      if (!outgoing.headersSent && !outgoing.destroyed) {
        // An unread upload is not drained without bound to keep the connection: it closes once the answer is out.
        const close = shouldCloseConnection(err) || shouldCloseConnection((err as { cause?: unknown }).cause) || !incoming.complete;
        if (close) lingerBeforeClose(incoming, { timeoutMs: config.server.drain_timeout_ms, maxBytes: config.server.drain_max_bytes });
        writeError(outgoing, error, requestId, {}, close);
      }
    } finally {
      if (counted) uploading--;
    }
    return RESPONSE_ALREADY_SENT;
  });

  app.get(`${prefix}/files`, async (c) => {
    const key = authenticateKey(state.config(), c.env.incoming.headers);
    const purpose = c.req.query('purpose');
    if (purpose !== undefined && !(FILE_PURPOSES as readonly string[]).includes(purpose)) {
      throw new GatewayError('invalid_request', `purpose must be one of ${FILE_PURPOSES.join(', ')}.`, { param: 'purpose' });
    }
    const order = c.req.query('order') ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw new GatewayError('invalid_request', 'order must be "asc" or "desc".', { param: 'order' });
    const limitRaw = c.req.query('limit');
    const limit = limitRaw === undefined ? 10_000 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new GatewayError('invalid_request', 'limit must be an integer from 1 to 10000.', { param: 'limit' });
    const after = c.req.query('after');
    const files = await state.services.files.list(key.team, { purpose: purpose as FilePurpose | undefined, order, after, limit: limit + 1 });
    const data = files.slice(0, limit).map(fileObject);
    return c.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: files.length > limit });
  });

  const read = async (c: Context<Env>): Promise<{ key: KeyInfo; file: StoredFile }> => {
    const key = authenticateKey(state.config(), c.env.incoming.headers);
    const id = c.req.param('id')!;
    const file = await state.services.files.get(key.team, id);
    if (!file) throw notFound(id);
    return { key, file };
  };

  app.get(`${prefix}/files/:id`, async (c) => c.json(fileObject((await read(c)).file)));

  app.get(`${prefix}/files/:id/content`, async (c) => {
    const { key, file } = await read(c);
    const content = await state.services.files.content(key.team, file.id);
    if (!content) throw notFound(file.id);
    c.env.outgoing.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': content.length,
      'content-disposition': `attachment; filename="${file.id}.jsonl"`,
      'x-request-id': randomUUID(),
    });
    c.env.outgoing.end(content);
    return RESPONSE_ALREADY_SENT;
  });

  app.delete(`${prefix}/files/:id`, async (c) => {
    const { key, file } = await read(c);
    const config = state.config();
    const requestId = randomUUID();
    if (!(await state.services.files.delete(key.team, file.id))) throw notFound(file.id);
    // The lane the file was stored in: its chain holds the upload record too.
    const lane = config.policies.lanes.get(file.lane) ?? startingLane(config.policies, key, undefined).lane;
    audit({ requestId, action: 'delete', endpoint: `DELETE ${prefix}/files/{id}`, key, lane, file, status: 200, errorCode: null });
    c.header('x-request-id', requestId);
    return c.json({ id: file.id, object: 'file', deleted: true });
  });

  for (const path of ['/files', '/files/:id', '/files/:id/content']) {
    app.all(`${prefix}${path}`, () => {
      throw new GatewayError('method_not_allowed', `${prefix}${path.replace(':id', '{file_id}')} does not take this method.`);
    });
  }
}
