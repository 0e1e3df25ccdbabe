// Shared by the prompt tests: the shipped triage example (templates, tool
// schema, eval set, pins) copied into each test's temp folder, and a config
// whose models all answer from the built-in mock, one of them slowly.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, type LoadedConfig } from '../../src/config/load.js';
import { routingConfig } from '../helpers/routing.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const shipped = (p: string) => readFileSync(path.join(ROOT, 'config', p), 'utf8');

/** The shipped example, keyed by path relative to the config folder. */
export const SHIPPED: Record<string, string> = {
  'prompts/triage/v1.yaml': shipped('prompts/triage/v1.yaml'),
  'prompts/triage/v2.yaml': shipped('prompts/triage/v2.yaml'),
  'prompts/pins.yaml': shipped('prompts/pins.yaml'),
  'tools/create_ticket/v1.json': shipped('tools/create_ticket/v1.json'),
  'evals/triage/v1.yaml': shipped('evals/triage/v1.yaml'),
};

/** A minimal template: one user message around one variable. */
export function simpleTemplate(o: { model?: string; prefix?: string; extra?: string } = {}): string {
  return `model: ${o.model ?? 'fast'}
parameters: { temperature: 0 }
variables:
  ticket: { type: string, required: true, max_length: 200, example: sample ticket }
messages:
  - role: system
    content: You sort tickets.
  - role: user
    content: "${o.prefix ?? 'Ticket'}: {{ticket}}"
${o.extra ?? ''}`;
}

export interface PromptConfigOptions {
  /** Upstream URL of a fake OpenAI server, served as the model `upstream`. */
  upstreamUrl?: string;
  /** Latency of the `slow` model's mock provider. */
  slowMs?: number;
  /** Appended inside `prompts:` (indented by the caller). */
  prompts?: string;
  /** Appended at the end of the config. */
  rest?: string;
}

export function promptConfig(o: PromptConfigOptions = {}): string {
  return routingConfig(`
providers:
  mock: { type: mock }
  slowmock: { type: mock, latency_ms: ${o.slowMs ?? 600} }
${o.upstreamUrl ? `  up: { type: openai, base_url: "${o.upstreamUrl}/v1", api_key: sk-upstream-test, retry: { max_retries: 0 }, breaker: { enabled: false } }` : ''}
models:
  fast: { deployments: [{ provider: mock, model: mock-fast }] }
  smart: { deployments: [{ provider: mock, model: mock-smart }] }
  slow: { deployments: [{ provider: slowmock, model: mock-slow }] }
${o.upstreamUrl ? '  upstream: { deployments: [{ provider: up, model: gpt-4o-mini }] }' : ''}
pricing:
  mock-fast: { input: 1, output: 2 }
  mock-slow: { input: 3, output: 6 }
prompts:
  dir: ./prompts
  tools_dir: ./tools
  evals_dir: ./evals
  reports_dir: "{{dir}}/reports"
${o.prompts ?? ''}
${o.rest ?? ''}`);
}

/** Loads a config built from these files in a fresh temp folder; returns the load's error when it fails. */
export async function loadWith(files: Record<string, string>, config = promptConfig()): Promise<{ loaded?: LoadedConfig; error?: ConfigError }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lanegate-prompts-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
    const configFile = path.join(dir, 'gateway.yaml');
    await writeFile(configFile, config.replaceAll('{{dir}}', dir));
    try {
      return { loaded: await loadConfig(configFile, {}) };
    } catch (err) {
      if (err instanceof ConfigError) return { error: err };
      throw err;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
