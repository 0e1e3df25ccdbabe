// The Files API as the SRE dashboard sees it: files stored and their bytes by
// purpose, and uploads refused by reason (the error code: request_too_large,
// invalid_request for a bad line, lane_violation, overloaded...).
//
// What is stored is counted by the sweeper's walk over every file's metadata
// (at start and every files.sweep_interval_s), and kept current between walks
// with this process's own writes and deletes. Replicas sharing a bucket each
// report the whole bucket as of their last walk: aggregate with max, not sum.
import { Counter, Gauge, type Registry } from 'prom-client';
import { FILE_PURPOSES, type FilePurpose } from './types.js';

export interface FilesInventory {
  /** Replaces the totals with a walk's. */
  reset(totals: Map<FilePurpose, { files: number; bytes: number }>): void;
  /** A file this process stored (+1) or removed (-1). */
  add(purpose: FilePurpose, bytes: number, sign: 1 | -1): void;
}

export interface FilesMetrics {
  inventory: FilesInventory;
  refused(reason: string): void;
}

export function createFilesMetrics(registry: Registry): FilesMetrics {
  const totals = new Map<FilePurpose, { files: number; bytes: number }>(FILE_PURPOSES.map((p) => [p, { files: 0, bytes: 0 }]));
  const registers = [registry];
  new Gauge({
    name: 'lanegate_files_stored',
    help: 'Files stored (batch input, batch output), as of the last sweep plus this replica\'s own changes since.',
    labelNames: ['purpose'],
    registers,
    collect() {
      for (const [purpose, t] of totals) this.set({ purpose }, t.files);
    },
  });
  new Gauge({
    name: 'lanegate_files_stored_bytes',
    help: 'Bytes of the files stored, by purpose, as of the last sweep plus this replica\'s own changes since.',
    labelNames: ['purpose'],
    registers,
    collect() {
      for (const [purpose, t] of totals) this.set({ purpose }, t.bytes);
    },
  });
  const refusals = new Counter({ name: 'lanegate_files_upload_refusals_total', help: 'Uploads (POST /v1/files) refused, by reason (the error code).', labelNames: ['reason'], registers });
  return {
    inventory: {
      reset(next) {
        for (const purpose of FILE_PURPOSES) totals.set(purpose, { ...(next.get(purpose) ?? { files: 0, bytes: 0 }) });
      },
      add(purpose, bytes, sign) {
        const t = totals.get(purpose)!;
        t.files = Math.max(0, t.files + sign);
        t.bytes = Math.max(0, t.bytes + sign * bytes);
      },
    },
    refused: (reason) => refusals.labels(reason).inc(),
  };
}
