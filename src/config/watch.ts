// Watches the config file and the policies folder for edits. Editors often
// save by writing a new file and renaming it over the old one, so folders are
// watched, not files.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface WatchTarget {
  dir: string;
  /** Which file names in the folder matter. */
  matches(name: string): boolean;
}

export function configWatchTargets(configFile: string, policiesDir: string | undefined): WatchTarget[] {
  const base = path.basename(configFile);
  const targets: WatchTarget[] = [{ dir: path.dirname(configFile), matches: (name) => name === base }];
  if (policiesDir) targets.push({ dir: policiesDir, matches: (name) => name.endsWith('.yaml') || name.endsWith('.yml') });
  return targets;
}

export function watchConfig(targets: readonly WatchTarget[], onChange: () => void, debounceMs = 250): () => void {
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];
  for (const target of targets) {
    try {
      const watcher = watch(target.dir, { persistent: false }, (_event, name) => {
        if (name !== null && !target.matches(name)) return;
        clearTimeout(timer);
        timer = setTimeout(onChange, debounceMs);
      });
      watcher.on('error', () => {});
      watchers.push(watcher);
    } catch {
      // No watching on this filesystem: SIGHUP and POST /admin/reload still work.
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
