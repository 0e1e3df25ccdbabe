// The `prompts:` section of config/gateway.yaml. Folders are relative to the
// config file, like policies.dir; reports_dir is relative to the working
// directory, like audit.dir (both are data, not config).
import { z } from 'zod';

export const promptsConfigSchema = z
  .strictObject({
    /** Folder of templates, `<dir>/<name>/<version>.yaml`. Unset: no prompt templates. */
    dir: z.string().min(1).optional(),
    /** Folder of tool schemas, `<tools_dir>/<name>/<version>.json`. Default: `tools` beside `dir`. */
    tools_dir: z.string().min(1).optional(),
    /** Folder of eval sets, `<evals_dir>/<name>/<version>.yaml` (or `.jsonl`). Default: `evals` beside `dir`. */
    evals_dir: z.string().min(1).optional(),
    /** Which version each app gets. Default: `<dir>/pins.yaml`. */
    pins_file: z.string().min(1).optional(),
    /** Where `lanegate eval` and `promote` write their JSON reports (relative to the working directory). */
    reports_dir: z.string().min(1).default('./data/evals'),
    shadow: z
      .strictObject({
        /** Shadow runs in flight at once, per replica. */
        max_concurrent: z.number().int().min(1).max(256).default(2),
        /** Sampled runs waiting for a slot; beyond this they are dropped (lanegate_prompt_shadow_runs_total{outcome="dropped"}). */
        max_queue: z.number().int().min(0).max(100_000).default(100),
        /** How long shutdown waits for shadow runs under way before aborting them. */
        shutdown_wait_ms: z.number().int().min(0).default(2_000),
      })
      .prefault({}),
  })
  .prefault({});

export type PromptsConfig = z.infer<typeof promptsConfigSchema>;
