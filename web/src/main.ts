// Entry: picks the page from the path. Each page is its own chunk, loaded on demand, so the
// candidate's page loads only the room (never the admin, replay or interviewer code).
import './style.css'
import { api, takeToken, explain, ApiError, type Interview } from './api'
import type { SessionView } from './gen'
import { h, page } from './dom'

async function start(): Promise<void> {
  const path = location.pathname
  let m: RegExpExecArray | null
  // `/interview/{id}` and, for links that say whom they are for, `/interview/{id}/{role}`.
  if ((m = /^\/interview\/([A-Za-z0-9_-]+)(?:\/(?:candidate|interviewer))?\/?$/.exec(path))) {
    const id = m[1]
    // No token in the link: a signed-in staff member's session opens it ('' sends the cookie).
    const token = takeToken(`interview.${id}`) ?? ''
    // Fetch the room's code while the interview loads: both are needed, neither waits.
    const roomModule = import('./room')
    roomModule.catch(() => {})
    let interview: Interview
    try {
      interview = await api<Interview>(token, 'GET', `/api/interviews/${encodeURIComponent(id)}`)
    } catch (err) {
      if (!token && err instanceof ApiError && err.status === 401) return toSignIn()
      return failed(`This interview cannot be opened: ${explain(err)}.`)
    }
    if (interview.role === 'reviewer') {
      location.replace(`/replay/${encodeURIComponent(id)}`)
      if (token) sessionStorage.setItem(`duet.token.replay.${id}`, token)
      return
    }
    if (interview.mode === 'take_home' && interview.role === 'candidate') {
      const { openTakeHome } = await import('./takehome')
      return openTakeHome(id, token, interview)
    }
    const { openRoom } = await roomModule
    return openRoom(id, token, interview)
  }
  if ((m = /^\/replay\/([A-Za-z0-9_-]+)(?:\/reviewer)?\/?$/.exec(path))) {
    const id = m[1]
    const token = takeToken(`replay.${id}`) ?? ''
    if (!token && !(await signedIn())) return toSignIn()
    const { openReplay } = await import('./replay')
    return openReplay(id, token)
  }
  if ((m = /^\/debrief\/(candidate|interview)\/([^/]+)\/?$/.exec(path))) {
    const { openDebrief } = await import('./debrief')
    return openDebrief(m[1] as 'candidate' | 'interview', decodeURIComponent(m[2]))
  }
  if (path === '/signin') {
    const { openSignIn } = await import('./signin')
    return openSignIn()
  }
  if (path === '/password') {
    const { openSetPassword } = await import('./signin')
    return openSetPassword()
  }
  if (path === '/me' || path === '/') {
    const me = await signedIn()
    if (me) {
      const { openMine } = await import('./mine')
      return openMine(me)
    }
    if (path === '/me') return toSignIn()
  }
  if (path === '/admin' || path === '/admin/') {
    const { openAdmin } = await import('./admin')
    return await openAdmin()
  }
  page('Duet',
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Live coding interviews')),
    h('section', { class: 'panel narrow' },
      h('h2', {}, 'Welcome'),
      h('p', {}, 'Candidates join through the link they were sent. Interviewers, reviewers and admins ',
        h('a', { href: '/signin' }, 'sign in'), ' to see their interviews.'),
      h('p', {}, h('a', { href: '/admin' }, 'Open the admin page'), ' with the admin token, or as a signed-in admin, to create an interview.')))
}

/** Who is signed in on this browser, if anyone (the session cookie). */
async function signedIn(): Promise<SessionView | null> {
  try {
    return await api<SessionView>('', 'GET', '/api/session')
  } catch {
    return null
  }
}

/** To the sign-in page, coming back here afterwards. */
function toSignIn(): void {
  location.replace(`/signin?next=${encodeURIComponent(location.pathname)}`)
}

function failed(message: string): void {
  page('Duet', h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet')),
    h('section', { class: 'panel narrow' }, h('h1', {}, 'Cannot open this page'), h('p', { role: 'alert' }, message)))
}

start().catch((err) => failed(String(err)))
