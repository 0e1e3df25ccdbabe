// The files service over a BlobStore: ids, team scoping, validation on the
// way in, the lane's retention and body rule, and the sweeper.
//
// Layout: `<team digest>/<id>.jsonl` holds the content, `<team digest>/<id>.json`
// the metadata (a StoredFile). The content is written first and the metadata
// last, so a file exists once its metadata does; deleting goes the other way.
// The team is part of every key (a digest, so no team name reaches a path),
// so another team's id is simply absent.
import { createHash, randomBytes } from 'node:crypto';
import type { CompiledConfig } from '../config/compile.js';
import { GatewayError } from '../errors.js';
import { mapBounded } from '../map-bounded.js';
import { sha256Hex } from '../sha256.js';
import type { Logger } from '../telemetry/logger.js';
import { validateBatchInput } from './batch-input.js';
import { filesDir } from './config.js';
import { createLocalBlobStore } from './local-store.js';
import { createS3BlobStore } from './s3-store.js';
import type { FilesMetrics } from './metrics.js';
import type { BlobStore, FilePurpose, FilesService, StoredFile } from './types.js';

/** Ids as OpenAI's look: `file-` and 24 URL-safe random characters. */
export const FILE_ID = /^file-[A-Za-z0-9_-]{24}$/;

export function newFileId(): string {
  return `file-${randomBytes(18).toString('base64url')}`;
}

const DAY_S = 86_400;
/** Metadata reads in flight at once when listing or sweeping (one round trip each on S3). */
const READ_CONCURRENCY = 16;
const MAX_FILENAME = 255;

function teamDigest(team: string): string {
  return createHash('sha256').update(team).digest('hex').slice(0, 32);
}

const metaKey = (team: string, id: string) => `${teamDigest(team)}/${id}.json`;
const contentKey = (team: string, id: string) => `${teamDigest(team)}/${id}.jsonl`;

function unavailable(cause: unknown): GatewayError {
  return new GatewayError('service_unavailable', 'File storage is unavailable right now; retry shortly.', { cause });
}

/** Backend failures become a retryable 503; GatewayErrors pass through. */
async function guarded<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw unavailable(err);
  }
}

/** A filename as shown back: no path, no control characters, bounded. */
function cleanFilename(name: string): string {
  // eslint-disable-next-line no-control-regex
  const base = name.replace(/[\u0000-\u001f\u007f]/g, '').split(/[\\/]/).pop()!.trim();
  return (base || 'file.jsonl').slice(0, MAX_FILENAME);
}

export interface FilesServiceOptions {
  store: BlobStore;
  config: () => CompiledConfig;
  logger: Logger;
  /** Start the periodic sweeper (the server does; commands do not); it also takes the stored files' inventory. */
  sweep?: boolean;
  /** The server's: files stored by purpose, uploads refused (metrics.ts). */
  metrics?: FilesMetrics;
}

export function createFilesService(o: FilesServiceOptions): FilesService {
  const { store, config, logger } = o;

  const readMeta = async (key: string): Promise<StoredFile | undefined> => {
    const raw = await store.get(key);
    if (!raw) return undefined;
    try {
      return JSON.parse(raw.toString('utf8')) as StoredFile;
    } catch {
      logger.warn({ key }, 'unreadable file metadata; the file reads as absent');
      return undefined;
    }
  };

  const expired = (file: StoredFile, nowS: number) => file.expires_at !== null && file.expires_at <= nowS;

  // Walks under way, each with the files this process stored or removed since
  // it began, by id, and whether each is there now. A walk's totals are as of
  // its listing and its reads; a file written or deleted meanwhile (the walk
  // at start racing the first uploads) may be missing from them or counted
  // after it went, so the walk applies these before it replaces the totals.
  const walks = new Set<Map<string, { file: StoredFile; present: boolean }>>();
  const changed = (file: StoredFile, present: boolean) => {
    for (const during of walks) during.set(file.id, { file, present });
  };

  const remove = async (file: StoredFile) => {
    await store.delete(metaKey(file.team, file.id));
    await store.delete(contentKey(file.team, file.id));
    o.metrics?.inventory.add(file.purpose, file.bytes, -1);
    changed(file, false);
  };

  /** The team's live file; an expired one is removed on the way. */
  const live = async (team: string, id: string): Promise<StoredFile | undefined> => {
    if (!FILE_ID.test(id)) return undefined;
    const file = await readMeta(metaKey(team, id));
    // The address says so already; checked again so a mis-keyed write never leaks across teams.
    if (!file || file.team !== team || file.id !== id) return undefined;
    if (expired(file, Math.floor(Date.now() / 1000))) {
      await remove(file);
      return undefined;
    }
    return file;
  };

  const sweep = async (): Promise<number> => {
    const during = new Map<string, { file: StoredFile; present: boolean }>();
    walks.add(during);
    try {
      const nowS = Math.floor(Date.now() / 1000);
      const metas = (await store.list('')).filter((key) => key.endsWith('.json'));
      const left = new Map<FilePurpose, { files: number; bytes: number }>();
      const tally = (file: StoredFile, sign: 1 | -1) => {
        const t = left.get(file.purpose) ?? { files: 0, bytes: 0 };
        left.set(file.purpose, { files: Math.max(0, t.files + sign), bytes: Math.max(0, t.bytes + sign * file.bytes) });
      };
      const counted = new Set<string>();
      const gone = await mapBounded(metas, READ_CONCURRENCY, async (key) => {
        const file = await readMeta(key);
        if (!file) return false;
        if (!expired(file, nowS)) {
          tally(file, 1);
          counted.add(file.id);
          return false;
        }
        await remove(file);
        return true;
      });
      for (const [id, { file, present }] of during) {
        if (present !== counted.has(id)) tally(file, present ? 1 : -1);
      }
      o.metrics?.inventory.reset(left);
      return gone.filter(Boolean).length;
    } finally {
      walks.delete(during);
    }
  };

  const interval = config().raw.files.sweep_interval_s;
  const runSweep = () =>
    void sweep().then(
      (n) => n > 0 && logger.info({ removed: n }, 'expired files removed'),
      (err: unknown) => logger.warn({ err }, 'file sweep failed; the next one retries'),
    );
  const timer = o.sweep && interval > 0 ? setInterval(runSweep, interval * 1000) : undefined;
  timer?.unref();
  // The first walk at start: what expired while the gateway was down, and the inventory the metrics start from.
  if (timer) runSweep();

  /** The lane's rules for files at rest: a lane that keeps bodies only as hashes keeps no files. */
  const laneFor = (name: string) => {
    const c = config();
    const lane = c.policies.lanes.get(name);
    if (!lane) throw new GatewayError('invalid_request', `Unknown lane "${name}".`);
    // A lane that keeps bodies only as hashes keeps no request text at rest; a batch file is nothing but request text.
    if (lane.audit.bodies === 'hash') {
      throw new GatewayError('lane_violation', `The "${name}" lane keeps request bodies only as hashes, so it cannot store files; send these requests one by one instead of as a batch.`, { param: 'file' });
    }
    return { lane, limits: c.raw.files };
  };

  const describe = (
    input: { team: string; lane: string; filename: string; purpose: StoredFile['purpose']; expiresAfterSeconds?: number },
    retentionDays: number,
    content: { bytes: number; lines: number | undefined; sha256: string },
    id = newFileId(),
  ): StoredFile => {
    const nowMs = Date.now();
    const nowS = Math.floor(nowMs / 1000);
    let keepS = Math.min(retentionDays * DAY_S, config().raw.files.max_retention_s);
    if (input.expiresAfterSeconds !== undefined) keepS = Math.min(keepS, input.expiresAfterSeconds);
    return {
      id,
      object: 'file',
      bytes: content.bytes,
      created_at: nowS,
      expires_at: nowS + keepS,
      filename: cleanFilename(input.filename),
      purpose: input.purpose,
      status: 'processed',
      team: input.team,
      lane: input.lane,
      ...(content.lines !== undefined ? { lines: content.lines } : {}),
      sha256: content.sha256,
      created_ms: nowMs,
    };
  };

  /** The metadata last: a file exists once it does. Without it the content is no file at all, and no sweep would find it. */
  const putMeta = async (file: StoredFile) => {
    try {
      await store.put(metaKey(file.team, file.id), Buffer.from(JSON.stringify(file)));
    } catch (err) {
      await store.delete(contentKey(file.team, file.id)).catch(() => {});
      throw err;
    }
    o.metrics?.inventory.add(file.purpose, file.bytes, 1);
    changed(file, true);
  };

  return {
    kind: store.kind,

    async create(input) {
      const { lane, limits } = laneFor(input.lane);
      let lines: number | undefined;
      if (input.purpose === 'batch') {
        if (input.content.length > limits.max_bytes) {
          throw new GatewayError('request_too_large', `The file is larger than the limit of ${limits.max_bytes} bytes for batch input.`, { param: 'file' });
        }
        lines = validateBatchInput(input.content, { maxLines: limits.max_lines, maxDepth: config().server.max_json_depth });
      }
      const file = describe(input, lane.audit.retention_days, { bytes: input.content.length, lines, sha256: sha256Hex(input.content) });
      await guarded(async () => {
        await store.put(contentKey(file.team, file.id), input.content);
        await putMeta(file);
      });
      return file;
    },

    async createFromStream(input) {
      const { lane } = laneFor(input.lane);
      const id = newFileId();
      const team = input.team;
      const hash = createHash('sha256');
      let bytes = 0;
      let lines = 0;
      async function* counted(): AsyncIterable<Buffer> {
        for await (const chunk of input.content) {
          hash.update(chunk);
          bytes += chunk.length;
          for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) lines++;
          yield chunk;
        }
      }
      return guarded(async () => {
        await store.putStream(contentKey(team, id), counted());
        const file = describe(input, lane.audit.retention_days, { bytes, lines, sha256: hash.digest('hex') }, id);
        await putMeta(file);
        return file;
      });
    },

    get: (team, id) => guarded(() => live(team, id)),

    content: (team, id) =>
      guarded(async () => {
        if (!(await live(team, id))) return undefined;
        return store.get(contentKey(team, id));
      }),

    list: (team, opts = {}) =>
      guarded(async () => {
        const nowS = Math.floor(Date.now() / 1000);
        const metas = (await store.list(`${teamDigest(team)}/`)).filter((key) => key.endsWith('.json'));
        const read = await mapBounded(metas, READ_CONCURRENCY, async (key) => {
          const file = await readMeta(key);
          if (!file || file.team !== team) return undefined;
          if (expired(file, nowS)) {
            await remove(file);
            return undefined;
          }
          return file;
        });
        const files = read.filter((f): f is StoredFile => f !== undefined && (opts.purpose === undefined || f.purpose === opts.purpose));
        const dir = opts.order === 'asc' ? 1 : -1;
        const at = (f: StoredFile) => f.created_ms ?? f.created_at * 1000;
        files.sort((a, b) => dir * (at(a) - at(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
        let start = 0;
        if (opts.after !== undefined) {
          const at = files.findIndex((f) => f.id === opts.after);
          if (at < 0) throw new GatewayError('invalid_request', `after names no file of this key's team.`, { param: 'after' });
          start = at + 1;
        }
        return files.slice(start, start + (opts.limit ?? 10_000));
      }),

    delete: (team, id) =>
      guarded(async () => {
        const file = await live(team, id);
        if (!file) return false;
        await remove(file);
        return true;
      }),

    sweep: () => guarded(sweep),

    refused(reason) {
      o.metrics?.refused(reason);
    },

    close() {
      if (timer) clearInterval(timer);
    },
  };
}


/** The configured store: a local folder (default) or an S3-compatible bucket. Read once, at start. */
export function createConfiguredFilesService(o: Omit<FilesServiceOptions, 'store'>): FilesService {
  const c = o.config();
  const files = c.raw.files;
  const store = files.store === 's3' ? createS3BlobStore(files.s3!) : createLocalBlobStore(filesDir(files, c.audit.dir));
  return createFilesService({ ...o, store });
}
