// The web console for people in the loop (/console): server-rendered pages
// (src/console/views, hono's JSX), one script and one stylesheet served from
// the package, no build step. Routes live here because only server/ imports
// hono's router; the views import hono/jsx only, and what each page reads
// or does is in src/console/ (the actions are the admin API's too).
//
// Signed in with a person's key: an HttpOnly, SameSite=Strict session cookie
// (Secure behind TLS), a per-session CSRF token in every form that changes
// something, sign-in attempts limited per client address, and a strict
// Content-Security-Policy (no inline script or style). Nothing here is on
// the API's request path: the hot routes never reach hono.
import { readFileSync } from 'node:fs';
import type { HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { ADMIN_PERSON, can, personForKey, type Permission, type Person } from '../auth/people.js';
import type { CompiledConfig } from '../config/compile.js';
import { decideApproval } from '../console/actions.js';
import { approvalRows, parseStatus } from '../console/approvals.js';
import { PAGES } from '../console/pages.js';
import { createAttemptLimiter, createMemorySessions, createRedisSessions, csrfMatches, type Session } from '../console/sessions.js';
import { ApprovalRows, ApprovalsPage } from '../console/views/approvals.js';
import { ErrorPage, SignInPage, type Frame } from '../console/views/layout.js';
import { GatewayError, toGatewayError } from '../errors.js';
import { clientAddress, createTrustedProxies, overTls, type Peer, type TrustedProxies } from './client-address.js';
import { mountConsolePages } from './console-pages.js';
import type { GatewayState } from './state.js';

type Env = { Bindings: HttpBindings };

export const SESSION_COOKIE = 'lanegate_console';
const FORM_LIMIT_BYTES = 64 * 1024;

/** `default-src 'self'` and nothing inline: the one script and stylesheet come from /console/static. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export interface SignedIn {
  session: Session;
  person: Person;
  frame: Frame;
}

export type Form = Record<string, string>;

/** The person a session names, if the config still has them with that role (a removed person's session ends). */
function currentPerson(config: CompiledConfig, session: Session): Person | undefined {
  if (session.role === 'admin' && session.name === ADMIN_PERSON.name && config.auth.adminKeyHash) return ADMIN_PERSON;
  for (const { person } of config.peopleByHash.values()) if (person.name === session.name && person.role === session.role) return person;
  return undefined;
}

/** Each config's trusted proxies, compiled once (a reload brings a new list). */
const compiledProxies = new WeakMap<readonly string[], TrustedProxies>();
function trustedProxies(config: CompiledConfig): TrustedProxies {
  const list = config.server.trusted_proxies;
  let trusted = compiledProxies.get(list);
  if (!trusted) compiledProxies.set(list, (trusted = createTrustedProxies(list)));
  return trusted;
}

function peerOf(c: Context<Env>): Peer {
  const socket = c.env.incoming.socket as { remoteAddress?: string; encrypted?: boolean };
  return { remoteAddress: socket.remoteAddress, encrypted: socket.encrypted === true, header: (name) => c.req.header(name) };
}

export interface ConsoleKit {
  /** Wraps a page: signed in, allowed, errors as an HTML page. */
  page(needs: Permission | null, render: (c: Context<Env>, who: SignedIn) => Response | Promise<Response>): (c: Context<Env>) => Promise<Response>;
  /** Wraps a change: signed in, CSRF token checked, allowed, errors as an HTML page. */
  action(needs: Permission, run: (c: Context<Env>, who: SignedIn, form: Form) => Promise<Response>): (c: Context<Env>) => Promise<Response>;
}

export function mountConsole(app: Hono<Env>, state: GatewayState): void {
  const sessions = state.services.redis ? createRedisSessions(state.services.redis) : createMemorySessions();
  const attempts = createAttemptLimiter(() => state.config().console.sign_in_per_minute);
  const statics = new Map<string, { body: Buffer; type: string }>(
    (
      [
        ['console.js', 'text/javascript; charset=utf-8'],
        ['console.css', 'text/css; charset=utf-8'],
      ] as const
    ).map(([name, type]) => [name, { body: readFileSync(new URL(`../console/static/${name}`, import.meta.url)), type }]),
  );

  app.use('/console', consoleHeaders(state));
  app.use('/console/*', consoleHeaders(state));

  app.get('/console/static/:file', (c) => {
    const file = statics.get(c.req.param('file'));
    if (!file) throw new GatewayError('not_found', 'No such console file.');
    return c.body(new Uint8Array(file.body), 200, { 'content-type': file.type });
  });

  const signedIn = async (c: Context<Env>): Promise<SignedIn | undefined> => {
    const id = getCookie(c, SESSION_COOKIE);
    if (!id) return undefined;
    const session = await sessions.get(id);
    if (!session) return undefined;
    const person = currentPerson(state.config(), session);
    if (!person) return undefined;
    return { session, person, frame: { person, csrf: session.csrf } };
  };

  const render = (c: Context<Env>, err: unknown, frame?: Frame) => {
    const error = toGatewayError(err);
    if (error.code === 'internal_error') state.logger.error({ err }, 'console error');
    const status = error.status as ContentfulStatusCode;
    const title = status === 403 ? 'Not for your role' : status === 404 ? 'Not found' : status === 409 ? 'Already done' : 'That did not work';
    return c.html(ErrorPage({ frame, title, message: error.message }), status);
  };

  const readForm = async (c: Context<Env>): Promise<Form> => {
    const length = Number(c.req.header('content-length') ?? NaN);
    if (!Number.isFinite(length) || length > FORM_LIMIT_BYTES) throw new GatewayError('invalid_request', 'Send the form as the console does (with a Content-Length, under 64 KiB).', { status: 413 });
    const body = await c.req.parseBody();
    const form: Form = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') form[k] = v;
    return form;
  };

  const kit: ConsoleKit = {
    page: (needs, run) => async (c) => {
      const who = await signedIn(c);
      if (!who) return c.redirect('/console/sign-in', 303);
      try {
        if (needs && !can(who.person, needs)) throw new GatewayError('permission_denied', `The ${who.person.role} role cannot see this page.`);
        return await run(c, who);
      } catch (err) {
        return render(c, err, who.frame);
      }
    },
    action: (needs, run) => async (c) => {
      const who = await signedIn(c);
      // No session, no change: a 401 page, and nothing done.
      if (!who) return render(c, new GatewayError('invalid_api_key', 'You are not signed in (or your session ended). Sign in again.'));
      try {
        const form = await readForm(c);
        if (!csrfMatches(who.session, form._csrf)) {
          throw new GatewayError('permission_denied', 'This form is not from your current console session (its CSRF token does not match). Reload the page and try again.');
        }
        if (!can(who.person, needs)) throw new GatewayError('permission_denied', `The ${who.person.role} role cannot do this.`);
        return await run(c, who, form);
      } catch (err) {
        return render(c, err, who.frame);
      }
    },
  };

  app.get('/console', async (c) => {
    const who = await signedIn(c);
    if (!who) return c.redirect('/console/sign-in', 303);
    const first = PAGES.find((p) => can(who.person, p.needs));
    return c.redirect(`/console/${first?.path ?? 'sign-in'}`, 303);
  });

  app.get('/console/sign-in', async (c) => {
    if (await signedIn(c)) return c.redirect('/console', 303);
    return c.html(SignInPage({}));
  });

  app.post('/console/sign-in', async (c) => {
    // Per client address the gateway can trust: a spoofed X-Forwarded-For from an untrusted peer changes nothing.
    const address = clientAddress(peerOf(c), trustedProxies(state.config()));
    if (!attempts.allow(address)) {
      return c.html(SignInPage({ error: 'Too many sign-in attempts from your address. Wait a minute and try again.' }), 429, { 'retry-after': '60' });
    }
    let form: Form;
    try {
      form = await readForm(c);
    } catch (err) {
      return render(c, err);
    }
    const person = personForKey(state.config(), (form.key ?? '').trim());
    if (!person) {
      state.logger.warn({ address }, 'console sign-in refused');
      return c.html(SignInPage({ error: 'That key is not a console key. Check the key you were given.' }), 401);
    }
    const ttl = state.config().console.session_ttl_ms;
    const session = await sessions.create(person, ttl);
    setCookie(c, SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'Strict', secure: overTls(peerOf(c), trustedProxies(state.config())), path: '/console', maxAge: Math.floor(ttl / 1000) });
    state.logger.info({ person: person.name, role: person.role }, 'console sign-in');
    return c.redirect('/console', 303);
  });

  // Sign-out needs a session and its token, but no permission.
  app.post('/console/sign-out', async (c) => {
    const who = await signedIn(c);
    if (who) {
      let form: Form = {};
      try {
        form = await readForm(c);
      } catch {
        // an unreadable form signs out nobody
      }
      if (!csrfMatches(who.session, form._csrf)) return render(c, new GatewayError('permission_denied', 'This form is not from your current console session. Reload the page and try again.'), who.frame);
      await sessions.delete(who.session.id);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/console', secure: overTls(peerOf(c), trustedProxies(state.config())), httpOnly: true, sameSite: 'Strict' });
    return c.redirect('/console/sign-in', 303);
  });

  const DONE: Record<string, string> = { approved: 'Approved', rejected: 'Denied' };
  app.get(
    '/console/approvals',
    kit.page('approvals.read', async (c, who) => {
      const status = parseStatus(c.req.query('status'));
      const rows = await approvalRows(state, status);
      const done = c.req.query('done');
      const notice = done && DONE[done] ? { kind: 'ok' as const, text: `${DONE[done]}: ${c.req.query('id') ?? ''}` } : undefined;
      return c.html(ApprovalsPage({ frame: who.frame, rows, status, canDecide: can(who.person, 'approvals.decide'), notice }));
    }),
  );
  // The rows alone, for the script's refresh.
  app.get(
    '/console/approvals/rows',
    kit.page('approvals.read', async (c, who) => {
      const rows = await approvalRows(state, parseStatus(c.req.query('status')));
      return c.html(ApprovalRows({ rows, frame: who.frame, canDecide: can(who.person, 'approvals.decide') }));
    }),
  );
  app.post(
    '/console/approvals/:id/decide',
    kit.action('approvals.decide', async (c, who, form) => {
      const decision = form.decision;
      if (decision !== 'approve' && decision !== 'reject') throw new GatewayError('invalid_request', 'Choose Approve or Deny.');
      const reason = (form.reason ?? '').trim().slice(0, 2000) || null;
      const a = await decideApproval(state, who.person, { id: c.req.param('id') ?? '', approve: decision === 'approve', reason });
      return c.redirect(`/console/approvals?done=${a.status}&id=${encodeURIComponent(a.id)}`, 303);
    }),
  );

  mountConsolePages(app, state, kit);
}

function consoleHeaders(state: GatewayState) {
  return async (c: Context<Env>, next: () => Promise<void>) => {
    if (!state.config().console.enabled) throw new GatewayError('not_found', 'The console is off (console.enabled: false).');
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
  };
}
