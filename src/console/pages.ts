// The console's pages, in menu order, each with the permission that shows it.
import type { Permission } from '../auth/people.js';

export const PAGES = [
  { path: 'approvals', title: 'Approvals', needs: 'approvals.read' },
  { path: 'spend', title: 'Spend', needs: 'spend.read' },
  { path: 'audit', title: 'Audit', needs: 'audit.read' },
  { path: 'prompts', title: 'Prompts', needs: 'prompts.read' },
  { path: 'health', title: 'Health', needs: 'health.read' },
] as const satisfies ReadonlyArray<{ path: string; title: string; needs: Permission }>;

export type PageName = (typeof PAGES)[number]['path'];
