// People in the loop: keys for humans (approvers, finance, auditors, admins),
// each with one role. Like app keys, the config holds only sha256 digests (a
// plain `key` from ${ENV} is hashed at load and dropped), and a presented key
// is compared in constant time. The old admin key keeps working as a person
// named "admin" with the admin role.
import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CompiledConfig } from '../config/compile.js';
import { GatewayError } from '../errors.js';
import { presentedKey } from './keys.js';

export const ROLES = ['admin', 'approver', 'finance', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export interface Person {
  name: string;
  role: Role;
}

/** What a person may do; each admin route and console page needs one. */
export const PERMISSIONS = [
  'approvals.read',
  'approvals.decide',
  'spend.read',
  'audit.read',
  'audit.verify',
  'prompts.read',
  'prompts.change',
  'health.read',
  'policy.read',
  'gateway.operate',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const READS: readonly Permission[] = ['approvals.read', 'spend.read', 'audit.read', 'prompts.read', 'health.read', 'policy.read'];

/**
 * An approver decides held calls and cannot read spend; finance reads spend
 * and budgets and cannot approve; an auditor reads everything and changes
 * nothing (verifying the chains reads them, so it may); an admin does all.
 */
const GRANTS: Record<Role, ReadonlySet<Permission>> = {
  admin: new Set(PERMISSIONS),
  approver: new Set<Permission>(['approvals.read', 'approvals.decide']),
  finance: new Set<Permission>(['spend.read']),
  auditor: new Set<Permission>([...READS, 'audit.verify']),
};

export function can(person: Person, permission: Permission): boolean {
  return GRANTS[person.role].has(permission);
}

export function requirePermission(person: Person, permission: Permission): void {
  if (!can(person, permission)) {
    throw new GatewayError('permission_denied', `The ${person.role} role cannot do this (it needs ${permission}). Ask an admin.`);
  }
}

/**
 * The permission an admin API call needs, by method and path. Anything not
 * listed needs gateway.operate (admin only): a new route is closed until it
 * is given a place here.
 */
export function permissionFor(method: string, path: string): Permission {
  const read = method === 'GET' || method === 'HEAD';
  if (path === '/admin/approvals' || path.startsWith('/admin/approvals/')) return read ? 'approvals.read' : 'approvals.decide';
  if (path === '/admin/audit/verify') return 'audit.verify';
  if ((path === '/admin/audit' || path.startsWith('/admin/audit/')) && read) return 'audit.read';
  if ((path === '/admin/budgets' || path === '/admin/usage') && read) return 'spend.read';
  if (path === '/admin/prompts' || path.startsWith('/admin/prompts/')) return read ? 'prompts.read' : 'prompts.change';
  if ((path === '/admin/slo' || path === '/admin/deployments' || path === '/admin/health') && read) return 'health.read';
  // Explaining a request reads the policy; it changes nothing.
  if (path === '/admin/policy/explain' || path === '/admin/policy/explain-tool') return 'policy.read';
  return 'gateway.operate';
}

export const ADMIN_PERSON: Person = { name: 'admin', role: 'admin' };

/** The person a key belongs to, or undefined. Constant-time on the digest. */
export function personForKey(config: CompiledConfig, key: string): Person | undefined {
  if (key.length === 0 || key.length > 512) return undefined;
  const digest = hash('sha256', key, 'buffer');
  const admin = config.auth.adminKeyHash;
  if (admin && timingSafeEqual(admin, digest)) return ADMIN_PERSON;
  const entry = config.peopleByHash.get(digest.toString('hex'));
  if (entry && timingSafeEqual(entry.digest, digest)) return entry.person;
  return undefined;
}

/** The person behind an admin API call's `Authorization: Bearer` key. */
export function authenticatePerson(config: CompiledConfig, headers: IncomingHttpHeaders): Person {
  if (!config.auth.adminKeyHash && config.peopleByHash.size === 0) {
    throw new GatewayError('permission_denied', 'The admin API is disabled. Set auth.admin_key_sha256 or add people (with roles) to the gateway config to enable it.');
  }
  const key = presentedKey(headers);
  if (!key) throw new GatewayError('invalid_api_key', 'Missing admin key. Send it as "Authorization: Bearer <admin or person key>".');
  const person = personForKey(config, key);
  if (!person) throw new GatewayError('invalid_api_key', 'Invalid admin key.');
  return person;
}
