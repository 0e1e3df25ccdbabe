// Files in an S3-compatible bucket, shared by every replica. The SDK is
// imported on first use only: it is large, and it warns about Node versions
// at load, so a gateway that keeps files locally never loads it.
//
// A PUT is atomic in S3: readers see the old object, the new one, or none;
// so is a multipart upload, which exists only once it is completed. A
// streamed object up to one part goes up as one PUT, a larger one as a
// multipart upload of 8 MiB parts (S3's minimum part is 5 MiB).
import type { S3Client } from '@aws-sdk/client-s3';
import type { FilesS3Config } from './config.js';
import type { BlobStore } from './types.js';

type Sdk = typeof import('@aws-sdk/client-s3');

const PART_BYTES = 8 * 1024 * 1024;

export function createS3BlobStore(config: FilesS3Config): BlobStore {
  const prefix = config.prefix.replace(/\/+$/, '');
  const full = (key: string) => (prefix ? `${prefix}/${key}` : key);
  let loaded: Promise<{ sdk: Sdk; client: S3Client }> | undefined;
  const connect = () => {
    loaded ??= import('@aws-sdk/client-s3').then((sdk) => {
      const credentials =
        config.access_key_id && config.secret_access_key ? { accessKeyId: config.access_key_id, secretAccessKey: config.secret_access_key } : undefined;
      const client = new sdk.S3Client({
        region: config.region,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        forcePathStyle: config.force_path_style,
        ...(credentials ? { credentials } : {}),
        // Checksums only where S3 requires them: S3-compatible servers often do not speak the newer defaults.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      return { sdk, client };
    });
    // A failed import is retried on the next call rather than cached.
    loaded.catch(() => {
      loaded = undefined;
    });
    return loaded;
  };
  return {
    kind: 's3',
    async put(key, body) {
      const { sdk, client } = await connect();
      await client.send(new sdk.PutObjectCommand({ Bucket: config.bucket, Key: full(key), Body: body, ContentLength: body.length }));
    },
    async putStream(key, body) {
      const { sdk, client } = await connect();
      const Key = full(key);
      let parts: Buffer[] = [];
      let held = 0;
      let upload: string | undefined;
      const done: Array<{ ETag: string | undefined; PartNumber: number }> = [];
      const sendPart = async (part: Buffer) => {
        upload ??= (await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: config.bucket, Key }))).UploadId;
        const PartNumber = done.length + 1;
        const out = await client.send(new sdk.UploadPartCommand({ Bucket: config.bucket, Key, UploadId: upload, PartNumber, Body: part, ContentLength: part.length }));
        done.push({ ETag: out.ETag, PartNumber });
      };
      try {
        for await (const chunk of body) {
          parts.push(chunk);
          held += chunk.length;
          if (held >= PART_BYTES) {
            const part = Buffer.concat(parts);
            parts = [];
            held = 0;
            await sendPart(part);
          }
        }
        const rest = Buffer.concat(parts);
        if (upload === undefined) {
          await client.send(new sdk.PutObjectCommand({ Bucket: config.bucket, Key, Body: rest, ContentLength: rest.length }));
          return;
        }
        if (rest.length > 0) await sendPart(rest);
        await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: config.bucket, Key, UploadId: upload, MultipartUpload: { Parts: done } }));
      } catch (err) {
        // An upload never completed leaves no object, but its parts are billed until aborted.
        if (upload !== undefined) await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: config.bucket, Key, UploadId: upload })).catch(() => {});
        throw err;
      }
    },
    async get(key) {
      const { sdk, client } = await connect();
      try {
        const out = await client.send(new sdk.GetObjectCommand({ Bucket: config.bucket, Key: full(key) }));
        if (!out.Body) return Buffer.alloc(0);
        return Buffer.from(await out.Body.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw err;
      }
    },
    async delete(key) {
      const { sdk, client } = await connect();
      await client.send(new sdk.DeleteObjectCommand({ Bucket: config.bucket, Key: full(key) }));
    },
    async list(under) {
      const { sdk, client } = await connect();
      const base = prefix ? `${prefix}/` : '';
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await client.send(new sdk.ListObjectsV2Command({ Bucket: config.bucket, Prefix: `${base}${under}`, ContinuationToken: token }));
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key.slice(base.length));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
  };
}
