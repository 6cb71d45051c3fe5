// Staff sign-in and the one-time page that sets a password. The session is an HttpOnly cookie
// the page never sees; after signing in, the person goes where they were headed (`?next=`, a
// path on this server only) or to their interviews.
import { api, explain, ApiError } from './api'
import type { PasswordLinkView, SessionView } from './gen'
import { h, page, replace } from './dom'

/** Where to go after signing in: a path on this server, never another site. */
function nextPath(): string {
  const next = new URLSearchParams(location.search).get('next') ?? ''
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/me'
}

function topbar(title: string): HTMLElement {
  return h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, title))
}

/** What `/signin?oidc_error=` means (set by the server after a refused provider sign-in). */
const OIDC_ERRORS: Record<string, string> = {
  state: 'That sign-in was not started here, was used already, or took too long. Start again.',
  provider: 'The identity provider did not sign you in. Try again, or ask an admin.',
  id_token: 'The identity provider’s answer could not be trusted, so you were not signed in. Try again, or ask an admin.',
  no_email: 'The identity provider gave no verified email address for you.',
  domain: 'Your email address is not one this server accepts.',
  unknown: 'You have no account here yet: ask an admin to add you.',
  disabled: 'Your account here is disabled: ask an admin.',
}

export function openSignIn(problem?: string): void {
  const oidcError = new URLSearchParams(location.search).get('oidc_error')
  if (!problem && oidcError) problem = OIDC_ERRORS[oidcError] ?? 'Signing in through the identity provider failed.'
  const email = h('input', { id: 'signin-email', type: 'email', autocomplete: 'username', required: true })
  const password = h('input', { id: 'signin-password', type: 'password', autocomplete: 'current-password', required: true })
  const status = h('div', { role: 'status', 'data-testid': 'signin-status' },
    problem ? h('p', { role: 'alert', class: 'banner warn' }, problem) : null)
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in')
  const form = h('form', { class: 'panel narrow', 'aria-labelledby': 'signin-h' },
    h('h2', { id: 'signin-h' }, 'Sign in'),
    h('p', { class: 'muted' }, 'For interviewers, reviewers and admins. Candidates need no account: they use the link they were sent.'),
    /^\/(interview|replay)\//.test(nextPath())
      ? h('p', { class: 'banner', 'data-testid': 'link-note' }, 'That page opened with no access token. If you were sent a link, open the whole link (it ends in #token=…); staff sign in here.')
      : null,
    h('div', { class: 'field' }, h('label', { for: 'signin-email' }, 'Email'), email),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password),
    submit, status)
  // Sign-in through the team's identity provider, when the server has one.
  const sso = h('div', { class: 'sso' })
  form.insertBefore(sso, email.parentElement)
  void api<{ enabled: boolean }>('', 'GET', '/api/oidc').then((oidc) => {
    if (!oidc.enabled) return
    replace(sso,
      h('a', { class: 'button primary', href: `/api/oidc/start?next=${encodeURIComponent(nextPath())}`, 'data-testid': 'sso' }, 'Sign in with your identity provider'),
      h('p', { class: 'small muted' }, 'Or with a password:'))
  }).catch(() => {})
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    if (submit.disabled) return
    submit.disabled = true
    try {
      await api<SessionView>('', 'POST', '/api/session', { email: email.value.trim(), password: password.value })
      location.assign(nextPath())
    } catch (err) {
      const message = err instanceof ApiError && err.status === 401
        ? 'Wrong email or password.'
        : explain(err)
      replace(status, h('p', { role: 'alert', class: 'banner warn' }, message))
      password.value = ''
      password.focus()
    } finally {
      submit.disabled = false
    }
  })
  page('Sign in', topbar('Sign in'), form)
  email.focus()
  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

/**
 * `/password#token=…`: the one-time link an admin (or `duet user`) handed out. The token is
 * taken out of the address bar at once and never stored; it goes to the server only as a
 * bearer header.
 */
export async function openSetPassword(): Promise<void> {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash)
  const token = match ? decodeURIComponent(match[1]) : ''
  history.replaceState(null, '', location.pathname)
  const main = page('Set your password', topbar('Set your password'))
  const done = () => { (window as unknown as { duetReady?: boolean }).duetReady = true }
  if (!token) {
    main.append(h('section', { class: 'panel narrow' }, h('p', { role: 'alert' }, 'This link has no token. Open the whole link you were sent (it ends in #token=…).')))
    return done()
  }
  let whose: PasswordLinkView
  try {
    whose = await api<PasswordLinkView>(token, 'GET', '/api/password-link')
  } catch (err) {
    main.append(h('section', { class: 'panel narrow' }, h('p', { role: 'alert' }, `${explain(err)}.`)))
    return done()
  }
  const password = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: '10', maxlength: '256' })
  const again = h('input', { id: 'new-password-again', type: 'password', autocomplete: 'new-password', required: true })
  const status = h('div', { role: 'status', 'data-testid': 'password-status' })
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Set password')
  const form = h('form', { class: 'panel narrow', 'aria-labelledby': 'password-h' },
    h('h2', { id: 'password-h' }, `Welcome, ${whose.name}`),
    h('p', {}, `Choose a password for ${whose.email} (10 characters or more). This link works once.`),
    h('div', { class: 'field' }, h('label', { for: 'new-password' }, 'New password'), password),
    h('div', { class: 'field' }, h('label', { for: 'new-password-again' }, 'The same password again'), again),
    submit, status)
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    if (password.value !== again.value) {
      replace(status, h('p', { role: 'alert', class: 'banner warn' }, 'The two passwords differ.'))
      return
    }
    submit.disabled = true
    try {
      await api(token, 'PUT', '/api/password-link', { password: password.value })
      replace(form, h('h2', {}, 'Password set'),
        h('p', { role: 'status' }, 'You can sign in now.'),
        h('a', { href: '/signin', class: 'button primary' }, 'Sign in'))
    } catch (err) {
      replace(status, h('p', { role: 'alert', class: 'banner warn' }, explain(err)))
      submit.disabled = false
    }
  })
  main.append(form)
  password.focus()
  done()
}
