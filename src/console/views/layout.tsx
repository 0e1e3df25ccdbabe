/** @jsxImportSource hono/jsx */
// The page frame: landmarks (banner, navigation, main), a skip link, the
// menu of the pages this person's role may see, and sign-out. No inline
// script or style anywhere: the Content-Security-Policy forbids both.
import type { Child } from 'hono/jsx';
import { raw } from 'hono/html';
import { can, type Person } from '../../auth/people.js';
import { PAGES, type PageName } from '../pages.js';

export interface Frame {
  person: Person;
  csrf: string;
}

export function Page(props: { title: string; frame?: Frame | undefined; active?: PageName | undefined; children?: Child; refreshSeconds?: number | undefined }) {
  const { frame } = props;
  return (
    <>
      {raw('<!doctype html>')}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          {props.refreshSeconds ? <meta http-equiv="refresh" content={String(props.refreshSeconds)} /> : null}
          <title>{`${props.title} · Lanegate console`}</title>
          <link rel="stylesheet" href="/console/static/console.css" />
          <script src="/console/static/console.js" defer></script>
        </head>
        <body>
          <a class="skip" href="#main">Skip to content</a>
          <header class="top">
            <span class="brand">Lanegate console</span>
            {frame ? (
              <>
                <nav aria-label="Console pages">
                  <ul>
                    {PAGES.filter((p) => can(frame.person, p.needs)).map((p) => (
                      <li>
                        <a href={`/console/${p.path}`} aria-current={props.active === p.path ? 'page' : undefined}>
                          {p.title}
                        </a>
                      </li>
                    ))}
                  </ul>
                </nav>
                <form method="post" action="/console/sign-out" class="who">
                  <span>
                    {frame.person.name} <span class="role">({frame.person.role})</span>
                  </span>
                  <input type="hidden" name="_csrf" value={frame.csrf} />
                  <button type="submit">Sign out</button>
                </form>
              </>
            ) : null}
          </header>
          <main id="main" tabindex={-1}>
            <h1>{props.title}</h1>
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

/** A notice above a page's content: what just happened, or what went wrong. */
export function Notice(props: { kind: 'ok' | 'error'; children?: Child }) {
  return (
    <p class={`notice ${props.kind}`} role={props.kind === 'error' ? 'alert' : 'status'}>
      {props.children}
    </p>
  );
}

export function Csrf(props: { frame: Frame }) {
  return <input type="hidden" name="_csrf" value={props.frame.csrf} />;
}

export function SignInPage(props: { error?: string | undefined }) {
  return (
    <Page title="Sign in">
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      <form method="post" action="/console/sign-in" class="sign-in">
        <label for="key">Your console key</label>
        <input id="key" name="key" type="password" autocomplete="current-password" required maxlength={512} />
        <button type="submit">Sign in</button>
      </form>
      <p class="hint">Keys for people are set under <code>people:</code> in gateway.yaml, each with a role.</p>
    </Page>
  );
}

export function ErrorPage(props: { frame?: Frame | undefined; title: string; message: string }) {
  return (
    <Page title={props.title} frame={props.frame}>
      <Notice kind="error">{props.message}</Notice>
    </Page>
  );
}
