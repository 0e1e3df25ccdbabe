// Files in a folder on this host: the single-instance default. Each object is
// written to a temporary name in its own folder and renamed into place, so a
// reader (or a crash) never sees half a file.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from './types.js';

/** The only keys this store accepts: `<32 hex>/<file id>.json|.jsonl` (see keys.ts). No client text ever reaches a path. */
const KEY = /^[0-9a-f]{32}\/file-[A-Za-z0-9_-]{24}\.jsonl?$/;

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new Error(`refusing a file store key of unexpected shape: ${JSON.stringify(key)}`);
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

export function createLocalBlobStore(dir: string): BlobStore {
  const root = path.resolve(dir);
  const at = (key: string) => {
    checkKey(key);
    return path.join(root, key);
  };
  return {
    kind: 'local',
    async put(key, body) {
      const file = at(key);
      await mkdir(path.dirname(file), { recursive: true });
      // A dot name no listing matches, in the same folder so the rename is atomic.
      const temp = path.join(path.dirname(file), `.tmp-${randomBytes(8).toString('hex')}`);
      try {
        await writeFile(temp, body, { flag: 'wx' });
        await rename(temp, file);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
    },
    async putStream(key, body) {
      const file = at(key);
      await mkdir(path.dirname(file), { recursive: true });
      const temp = path.join(path.dirname(file), `.tmp-${randomBytes(8).toString('hex')}`);
      try {
        const handle = await open(temp, 'wx');
        try {
          for await (const chunk of body) await handle.write(chunk);
        } finally {
          await handle.close();
        }
        await rename(temp, file);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
    },
    async get(key) {
      try {
        return await readFile(at(key));
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    },
    async delete(key) {
      await rm(at(key), { force: true });
    },
    async list(prefix) {
      const folders = prefix === '' ? await entries(root) : [prefix.replace(/\/$/, '')];
      const keys: string[] = [];
      for (const folder of folders) {
        if (!/^[0-9a-f]{32}$/.test(folder)) continue;
        for (const name of await entries(path.join(root, folder))) {
          const key = `${folder}/${name}`;
          if (KEY.test(key)) keys.push(key);
        }
      }
      return keys;
    },
  };
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}
