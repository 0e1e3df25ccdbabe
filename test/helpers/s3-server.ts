// A local S3-compatible server (s3rver) on a free port, with one bucket, for
// the stores that keep files in S3. Its default credentials are S3RVER/S3RVER.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Lines of a gateway config's `files:` block that keep files in this bucket under the prefix (indented two spaces). */
  storeYaml(prefix: string): string;
  /** The credentials storeYaml names as \${ENV}, for the gateway's environment. */
  env: Record<string, string>;
  /** Object keys in the bucket (read from s3rver's folder, not through S3). */
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startTestS3(bucket = 'lanegate-test-files'): Promise<TestS3> {
  const directory = await mkdtemp(path.join(tmpdir(), 'lanegate-s3-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    storeYaml: (prefix) => `  store: s3\n  s3: { bucket: ${bucket}, prefix: ${prefix}, endpoint: "${endpoint}", region: us-east-1, force_path_style: true, access_key_id: "\${S3_ACCESS_KEY_ID}", secret_access_key: "\${S3_SECRET_ACCESS_KEY}" }\n`,
    env: { S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER' },
    async keys() {
      // s3rver keeps each object as <key>._S3rver_object beside its metadata files.
      const out: string[] = [];
      const walk = async (dir: string, rel: string) => {
        for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
          if (e.isDirectory()) await walk(path.join(dir, e.name), rel ? `${rel}/${e.name}` : e.name);
          else if (e.name.endsWith('._S3rver_object')) out.push(rel ? `${rel}/${e.name.slice(0, -'._S3rver_object'.length)}` : e.name);
        }
      };
      await walk(path.join(directory, bucket), '');
      return out.sort();
    },
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
