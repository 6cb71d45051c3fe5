// "My interviews": where a signed-in staff member lands. Their upcoming, live and ended
// interviews (an admin's are all of them), each with the room, the replay and the debrief one
// click away and no token in any link: the session cookie opens them. Below, their personal
// API tokens for scripts (each shown once), and signing out here or everywhere.
import { api, explain } from './api'
import type { ApiTokenCreated, ApiTokenInfo, MyInterview, MyInterviews, SessionView } from './gen'
import { h, page, replace, dateTime, announce } from './dom'

export async function openMine(me: SessionView): Promise<void> {
  const signOut = async (everywhere: boolean) => {
    try {
      await api('', 'DELETE', everywhere ? '/api/me/sessions' : '/api/session')
    } finally {
      location.assign('/signin')
    }
  }
  const main = page('My interviews',
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'My interviews'),
      h('span', { class: 'muted', 'data-testid': 'me' }, `${me.person.name} · ${me.person.role}`),
      me.person.role === 'admin' ? h('a', { href: '/admin', class: 'small' }, 'Admin') : null,
      h('button', { type: 'button', class: 'small', onclick: () => void signOut(false) }, 'Sign out'),
      h('button', { type: 'button', class: 'small', onclick: () => void signOut(true) }, 'Sign out everywhere')))
  const lists = h('div', { class: 'mine', 'data-testid': 'my-interviews' }, h('p', { class: 'muted' }, 'Loading…'))
  main.append(lists, tokensPanel())
  try {
    const mine = await api<MyInterviews>('', 'GET', '/api/me/interviews')
    replace(lists,
      section('Live now', 'live', mine.live),
      section('Upcoming', 'upcoming', mine.upcoming),
      section('Ended', 'ended', mine.ended))
  } catch (err) {
    replace(lists, h('p', { role: 'alert' }, explain(err)))
  }
  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

function section(title: string, key: string, rows: MyInterview[]): HTMLElement {
  const id = `mine-${key}`
  return h('section', { class: 'panel', 'aria-labelledby': id, 'data-testid': id },
    h('h2', { id }, `${title} (${rows.length})`),
    rows.length === 0 ? h('p', { class: 'muted' }, 'None.') :
      h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Title'), h('th', { scope: 'col' }, 'Candidate'),
          h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Your role'), h('th', { scope: 'col' }, 'Open'))),
        h('tbody', {}, rows.map((r) => {
          const id = encodeURIComponent(r.id)
          const label = `${r.title} with ${r.candidate_name}`
          return h('tr', {},
            h('td', {}, r.title), h('td', {}, r.candidate_name), h('td', {}, dateTime(r.created_at)), h('td', {}, r.role),
            h('td', { class: 'actions' },
              r.role === 'interviewer' ? h('a', { href: `/interview/${id}/interviewer`, 'aria-label': `Room: ${label}` }, 'Room') : null,
              ' ', h('a', { href: `/replay/${id}`, 'aria-label': `Replay: ${label}` }, 'Replay'),
              ' ', h('a', { href: `/debrief/interview/${id}`, 'aria-label': `Debrief: ${label}` }, 'Debrief')))
        })))))
}

function tokensPanel(): HTMLElement {
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'))
  const shown = h('div', { role: 'status', 'data-testid': 'new-token' })
  const name = h('input', { id: 'token-name', required: true, maxlength: '100', autocomplete: 'off' })
  const refresh = async () => {
    try {
      const tokens = await api<ApiTokenInfo[]>('', 'GET', '/api/me/tokens')
      replace(list, tokens.length === 0 ? h('p', { class: 'muted' }, 'No tokens.') :
        h('ul', {}, tokens.map((t) => h('li', {},
          `${t.name} · created ${dateTime(t.created_at)} · ${t.last_used_at ? `last used ${dateTime(t.last_used_at)}` : 'never used'} `,
          h('button', { type: 'button', class: 'small', 'aria-label': `Revoke ${t.name}`, onclick: async () => {
            try { await api('', 'DELETE', `/api/me/tokens/${encodeURIComponent(t.id)}`); announce('Token revoked') } catch (err) {
              replace(shown, h('p', { role: 'alert', class: 'banner warn' }, explain(err)))
            }
            void refresh()
          } }, 'Revoke')))))
    } catch (err) {
      replace(list, h('p', { role: 'alert' }, explain(err)))
    }
  }
  const form = h('form', { class: 'row' },
    h('label', { for: 'token-name' }, 'New token for'), name,
    h('button', { type: 'submit', class: 'small' }, 'Create'))
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    try {
      const created = await api<ApiTokenCreated>('', 'POST', '/api/me/tokens', { name: name.value.trim() })
      replace(shown, h('p', {}, `Your token for ${created.name}, shown only now: `),
        h('input', { readonly: true, value: created.token, class: 'link', 'aria-label': 'The new token' }))
      name.value = ''
      void refresh()
    } catch (err) {
      replace(shown, h('p', { role: 'alert', class: 'banner warn' }, explain(err)))
    }
  })
  void refresh()
  return h('section', { class: 'panel', 'aria-labelledby': 'tokens-h' },
    h('h2', { id: 'tokens-h' }, 'Personal API tokens'),
    h('p', { class: 'small muted' }, 'For scripts: send one as Authorization: Bearer <token>. It acts as you; revoke it when the script retires.'),
    form, shown, list)
}
