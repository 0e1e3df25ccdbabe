// Turns validated policies into plain lookups, once per load: detectors
// compiled (custom regexes included), tool lists as sets, deployment rules as
// a predicate.
import type { Deployment } from '../providers/types.js';
import { BUILTIN_DETECTORS, createRegexDetector, type BuiltinDetectorName, type Detector } from './detectors.js';
import type { PolicySet } from './load.js';
import type { LaneConfig } from './schema.js';
import { toolKey, type ToolKey } from './tool-name.js';

export type DetectorAction = 'allow' | 'redact' | 'block' | 'escalate';

export interface LaneDetector {
  detector: Detector;
  action: DetectorAction;
  /** For `escalate`: the lane the request moves to. */
  lane?: string;
}

export interface CompiledLane {
  name: string;
  rank: number;
  description: string;
  deploymentRule: string[];
  allowsDeployment(deployment: Deployment): boolean;
  cache: LaneConfig['cache'];
  audit: LaneConfig['audit'];
  detectors: LaneDetector[];
  restoreRedactions: boolean;
  tools: {
    /** Canonical name -> the name the catalogue declares; undefined: any name (no policies configured). */
    catalogue: ReadonlyMap<ToolKey, string> | undefined;
    /** undefined: every catalogued tool not denied. */
    allow: ReadonlySet<ToolKey> | undefined;
    deny: ReadonlySet<ToolKey>;
    onDenied: 'reject' | 'strip';
    requireApproval: ReadonlySet<ToolKey>;
    recipients: LaneConfig['tools']['recipients'];
    paths: LaneConfig['tools']['paths'];
  };
  requiredMetadata: string[];
}

export interface CompiledPolicies {
  files: string[];
  defaultLane: string;
  lanes: ReadonlyMap<string, CompiledLane>;
  /** Lane names from least to most strict. */
  order: string[];
}

export function compilePolicies(set: PolicySet): CompiledPolicies {
  const custom = new Map<string, Detector>();
  for (const [name, d] of Object.entries(set.detectors)) custom.set(name, createRegexDetector(name, d.pattern, d.flags));
  const detectorFor = (name: string): Detector => (BUILTIN_DETECTORS as Record<string, Detector>)[name as BuiltinDetectorName] ?? custom.get(name)!;

  // Names that fold together are a load error (load.ts), so the map loses none.
  const catalogue = set.toolsListed ? new Map(Object.keys(set.tools).map((name) => [toolKey(name), name])) : undefined;
  const keys = (names: readonly string[]) => new Set(names.map(toolKey));
  const lanes = new Map<string, CompiledLane>();
  for (const [name, lane] of Object.entries(set.lanes)) {
    const all = lane.deployments.includes('*');
    const rules = new Set(lane.deployments);
    lanes.set(name, {
      name,
      rank: lane.rank,
      description: lane.description,
      deploymentRule: lane.deployments,
      allowsDeployment: (d) => all || rules.has(d.providerName) || rules.has(d.id),
      cache: lane.cache,
      audit: lane.audit,
      detectors: Object.entries(lane.detectors).map(([detector, rule]) => {
        const r = typeof rule === 'string' ? { action: rule } : rule;
        return { detector: detectorFor(detector), action: r.action, ...('lane' in r ? { lane: r.lane } : {}) };
      }),
      restoreRedactions: lane.restore_redactions,
      tools: {
        catalogue,
        allow: lane.tools.allow.includes('*') ? undefined : keys(lane.tools.allow),
        deny: keys(lane.tools.deny),
        onDenied: lane.tools.on_denied,
        requireApproval: keys(lane.tools.require_approval),
        recipients: lane.tools.recipients,
        paths: lane.tools.paths,
      },
      requiredMetadata: lane.required_metadata,
    });
  }
  const order = [...lanes.values()].sort((a, b) => a.rank - b.rank).map((l) => l.name);
  return { files: set.files, defaultLane: set.defaultLane, lanes, order };
}

/** Why the lane refuses a tool (by its canonical name), or undefined if it allows it. */
export function toolRefusal(lane: CompiledLane, tool: ToolKey): 'uncatalogued' | 'denied' | undefined {
  const t = lane.tools;
  if (t.catalogue && !t.catalogue.has(tool)) return 'uncatalogued';
  if (t.deny.has(tool) || (t.allow && !t.allow.has(tool))) return 'denied';
  return undefined;
}
