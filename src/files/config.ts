// The `files:` section of config/gateway.yaml: where batch files are kept and
// how large they may be. The store, its folder and its bucket are read once
// at start; the limits apply to each upload as the config stands then.
import path from 'node:path';
import { z } from 'zod';

const MIB = 1024 * 1024;

/** The limits OpenAI documents for a batch input file. */
export const OPENAI_BATCH_MAX_BYTES = 200 * MIB;
export const OPENAI_BATCH_MAX_LINES = 50_000;
/** OpenAI keeps batch files 30 days unless told otherwise. */
export const DEFAULT_FILE_RETENTION_S = 30 * 86_400;

const s3Schema = z.strictObject({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name: 3-63 lowercase letters, digits, "." or "-"'),
  /** An S3-compatible server (MinIO, R2, Ceph...); unset: AWS S3 in `region`. */
  endpoint: z.url().optional(),
  region: z.string().min(1).default('us-east-1'),
  /** Bucket in the path (`endpoint/bucket/key`), as most S3-compatible servers want. */
  force_path_style: z.boolean().default(false),
  /** Unset: the AWS SDK's default credential chain (environment, profile, instance role). Use ${ENV} interpolation. */
  access_key_id: z.string().min(1).optional(),
  secret_access_key: z.string().min(1).optional(),
  /** Key prefix inside the bucket. */
  prefix: z.string().regex(/^[A-Za-z0-9._/-]{0,200}$/).default('lanegate/files'),
});

export const filesConfigSchema = z
  .strictObject({
    /** `local` (default): a folder on this host; `s3`: an S3-compatible bucket every replica shares. */
    store: z.enum(['local', 's3']).default('local'),
    /** Folder of the local store. Default: `files` beside the audit folder (./data/files). */
    dir: z.string().min(1).optional(),
    /** Largest upload, in bytes (OpenAI: 200 MB for batch input). */
    max_bytes: z.number().int().positive().max(4096 * MIB).default(OPENAI_BATCH_MAX_BYTES),
    /** Most request lines in a batch input file (OpenAI: 50,000). */
    max_lines: z.number().int().positive().max(10_000_000).default(OPENAI_BATCH_MAX_LINES),
    /** The longest a file is kept, whatever its lane's retention_days (OpenAI: 30 days for batch files). */
    max_retention_s: z.number().int().positive().default(DEFAULT_FILE_RETENTION_S),
    /** Uploads held in memory at once (each up to max_bytes); more are answered 503, retryable. */
    max_concurrent_uploads: z.number().int().positive().max(1000).default(4),
    /** How long an upload's body may take to arrive. */
    upload_timeout_ms: z.number().int().positive().default(300_000),
    /** How often expired files are removed. 0 turns the sweeper off (expired files still read as gone). */
    sweep_interval_s: z.number().int().min(0).default(3600),
    s3: s3Schema.optional(),
  })
  .refine((f) => f.store !== 's3' || f.s3 !== undefined, { message: 'files.store is s3: set files.s3.bucket (and endpoint for an S3-compatible server)', path: ['s3'] })
  .prefault({});

export type FilesConfig = z.infer<typeof filesConfigSchema>;
export type FilesS3Config = z.infer<typeof s3Schema>;

/** The local store's folder: configured, or `files` beside the audit folder (the gateway's data folder). */
export function filesDir(config: FilesConfig, auditDir: string): string {
  return config.dir ?? path.join(path.dirname(path.resolve(auditDir)), 'files');
}
