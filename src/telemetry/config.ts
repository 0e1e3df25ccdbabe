// The `telemetry:` section of config/gateway.yaml: OpenTelemetry traces.
// Empty otlp_endpoint (the default) means no tracing at all: the SDK is not
// even loaded.
import { z } from 'zod';

/** An OTLP/HTTP collector's base URL ('' is off), e.g. http://otel-collector:4318. Credentials go in headers, never in the URL. */
export const otlpEndpointSchema = z
  .union([z.literal(''), z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as http://otel-collector:4318' })])
  .refine((u) => u === '' || !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'credentials in the URL are not sent: put them in headers')
  .default('');

/**
 * Where one signal goes: `<endpoint>/v1/<signal>`, or the endpoint as it is
 * when its path already names that signal. A query string stays a query.
 */
export function signalUrl(endpoint: string, signal: 'traces' | 'logs'): URL {
  const url = new URL(endpoint);
  if (!new RegExp(`/v1/${signal}/?$`).test(url.pathname)) url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/${signal}`;
  return url;
}

export const telemetryConfigSchema = z
  .strictObject({
    /**
     * OTLP/HTTP collector, e.g. http://otel-collector:4318. Spans go to
     * `<endpoint>/v1/traces` (an endpoint that already ends in /v1/traces is used as is).
     */
    otlp_endpoint: otlpEndpointSchema,
    /** OTLP/HTTP encoding: protobuf (the default, and cheaper to produce) or JSON. */
    protocol: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
    /** Extra headers for the collector (an API key, say). */
    headers: z.record(z.string(), z.string()).default({}),
    service_name: z.string().min(1).default('lanegate'),
    /** Share of new traces recorded; a sampled or unsampled traceparent from the app is followed as it is. */
    sample_ratio: z.number().min(0).max(1).default(1),
  })
  .prefault({});

export type TelemetryConfig = z.infer<typeof telemetryConfigSchema>;
