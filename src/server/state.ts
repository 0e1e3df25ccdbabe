// What the server needs from the running gateway, kept as an interface so the
// server does not depend on how the gateway is assembled.
import type { AuditSink } from '../audit/transport/writer.js';
import type { CompiledConfig } from '../config/compile.js';
import type { ReloadResult } from '../config/restart-only.js';
import type { Services } from '../pipeline/context.js';
import type { SloTracker } from '../routing/slo.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Tracing } from '../telemetry/tracing.js';

export interface GatewayState {
  config(): CompiledConfig;
  metrics: Metrics;
  logger: Logger;
  audit: AuditSink;
  services: Services;
  slo: SloTracker;
  /** OpenTelemetry tracing; undefined (and free) unless telemetry.otlp_endpoint is set. */
  tracing?: Tracing | undefined;
  /** The last reload's outcome (file watch, SIGHUP or POST /admin/reload); undefined until one ran. */
  lastReload?: { at: string; ok: boolean; problems: string | null; restart_required: string[] } | undefined;
  /** Loads, validates and swaps in the config file again. */
  reload(): Promise<ReloadResult>;
  inflight: number;
  shuttingDown: boolean;
  /** Called whenever a request finishes, so shutdown can wait for zero in flight. */
  onIdle(): void;
}
