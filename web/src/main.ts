// Entry: picks the page from the path. Each page is its own chunk, loaded on demand, so the
// candidate's page loads only the room (never the admin, replay or interviewer code).
import './style.css'
import { api, takeToken, explain, type Interview } from './api'
import { h, page } from './dom'

async function start(): Promise<void> {
  const path = location.pathname
  let m: RegExpExecArray | null
  // `/interview/{id}` and, for links that say whom they are for, `/interview/{id}/{role}`.
  if ((m = /^\/interview\/([A-Za-z0-9_-]+)(?:\/(?:candidate|interviewer))?\/?$/.exec(path))) {
    const id = m[1]
    const token = takeToken(`interview.${id}`)
    if (!token) return missingToken()
    // Fetch the room's code while the interview loads: both are needed, neither waits.
    const roomModule = import('./room')
    roomModule.catch(() => {})
    let interview: Interview
    try {
      interview = await api<Interview>(token, 'GET', `/api/interviews/${encodeURIComponent(id)}`)
    } catch (err) {
      return failed(`This interview cannot be opened: ${explain(err)}.`)
    }
    if (interview.role === 'reviewer') {
      location.replace(`/replay/${encodeURIComponent(id)}`)
      sessionStorage.setItem(`duet.token.replay.${id}`, token)
      return
    }
    const { openRoom } = await roomModule
    return openRoom(id, token, interview)
  }
  if ((m = /^\/replay\/([A-Za-z0-9_-]+)(?:\/reviewer)?\/?$/.exec(path))) {
    const id = m[1]
    const token = takeToken(`replay.${id}`)
    if (!token) return missingToken()
    const { openReplay } = await import('./replay')
    return openReplay(id, token)
  }
  if ((m = /^\/debrief\/(candidate|interview)\/([^/]+)\/?$/.exec(path))) {
    const { openDebrief } = await import('./debrief')
    return openDebrief(m[1] as 'candidate' | 'interview', decodeURIComponent(m[2]))
  }
  if (path === '/admin' || path === '/admin/') {
    const { openAdmin } = await import('./admin')
    return openAdmin()
  }
  page('Duet',
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Live coding interviews')),
    h('section', { class: 'panel narrow' },
      h('h2', {}, 'Welcome'),
      h('p', {}, 'Interviewers, candidates and reviewers join through the links the admin page hands out.'),
      h('p', {}, h('a', { href: '/admin' }, 'Open the admin page'), ' to create an interview.')))
}

function missingToken(): void {
  failed('This link has no access token. Open the full link you were given (it ends in #token=…).')
}

function failed(message: string): void {
  page('Duet', h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet')),
    h('section', { class: 'panel narrow' }, h('h1', {}, 'Cannot open this page'), h('p', { role: 'alert' }, message)))
}

start().catch((err) => failed(String(err)))
