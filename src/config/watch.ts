// Watches the config file for edits. Editors often save by writing a new file
// and renaming it over the old one, so the folder is watched, not the file.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export function watchConfigFile(file: string, onChange: () => void, debounceMs = 250): () => void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name !== null && name !== base) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    });
    watcher.on('error', () => {});
  } catch {
    // No watching on this filesystem: SIGHUP still reloads.
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}
