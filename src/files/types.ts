// The Files API's service: batch input files clients upload, batch output
// files the gateway writes. One interface (FilesService), one storage
// interface under it (BlobStore) with two implementations: a local folder
// (the single-instance default) and an S3-compatible bucket (replicas).
//
// Every read and write is scoped to a team: another team's id reads as
// absent, so the HTTP layer answers 404 and never confirms that an id exists.

export type FilePurpose = 'batch' | 'batch_output';

export const FILE_PURPOSES = ['batch', 'batch_output'] as const satisfies readonly FilePurpose[];

/** A file as OpenAI's Files API shows it. */
export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  /** Unix seconds. */
  created_at: number;
  /** Unix seconds; null for a file that never expires (none do here: the lane's retention always applies). */
  expires_at: number | null;
  filename: string;
  purpose: FilePurpose;
  status: 'processed';
}

/** A file as the gateway keeps it: the object, and whose it is. */
export interface StoredFile extends FileObject {
  team: string;
  /** The lane the file was created in; its retention set expires_at. */
  lane: string;
  /** Request lines (batch input) or answer lines (batch output). */
  lines?: number;
  /** sha256 hex of the content, for the audit trail. */
  sha256?: string;
  /** Unix ms of creation: orders files created within the same second. */
  created_ms?: number;
}

export interface FilesService {
  /**
   * Stores a file for the team, expiring with the lane's retention. Content
   * of purpose `batch` is validated as batch input JSONL first: a
   * GatewayError `invalid_request` names the first bad line. A lane that keeps
   * bodies only as hashes refuses with `lane_violation`.
   */
  create(input: { team: string; lane: string; filename: string; purpose: FilePurpose; content: Buffer; expiresAfterSeconds?: number }): Promise<StoredFile>;
  /**
   * Stores a file written as it is produced (a batch's output or error
   * file): the content is streamed to the store, never held whole. Purpose
   * `batch_output` only (batch input is validated whole on upload). Same lane
   * rules and retention as create.
   */
  createFromStream(input: { team: string; lane: string; filename: string; purpose: 'batch_output'; content: AsyncIterable<Buffer> }): Promise<StoredFile>;
  /** undefined for another team's file, an expired one, or an id that never existed. */
  get(team: string, id: string): Promise<StoredFile | undefined>;
  content(team: string, id: string): Promise<Buffer | undefined>;
  /** Default: newest first, up to 10,000. */
  list(team: string, opts?: { purpose?: FilePurpose; limit?: number; after?: string; order?: 'asc' | 'desc' }): Promise<StoredFile[]>;
  /** True when the team's file existed (and is gone now). */
  delete(team: string, id: string): Promise<boolean>;
  /** Removes every expired file now; returns how many. The service also runs it every files.sweep_interval_s. */
  sweep(): Promise<number>;
  /** Counts an upload refused, by reason (the error code), on /metrics. */
  refused(reason: string): void;
  readonly kind: 'local' | 's3';
  /** Stops the sweeper. */
  close(): void;
}

/**
 * Where files' bytes live. Keys are built by the service only, from hex
 * digests and generated ids, never from client input: `<team digest>/<id>.json`
 * (metadata) and `<team digest>/<id>.jsonl` (content).
 */
export interface BlobStore {
  readonly kind: 'local' | 's3';
  /** Atomic: a reader sees the whole object or none. */
  put(key: string, body: Buffer): Promise<void>;
  /** As put, from chunks as they come; at most one part (S3: 8 MiB) is held at a time. */
  putStream(key: string, body: AsyncIterable<Buffer>): Promise<void>;
  get(key: string): Promise<Buffer | undefined>;
  /** No error when absent. */
  delete(key: string): Promise<void>;
  /** Keys under the prefix ('' for all), in no particular order. */
  list(prefix: string): Promise<string[]>;
}
