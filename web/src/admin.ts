// The admin page, for a signed-in admin (their session cookie) or with the admin token (the
// break-glass credential: entered once, kept for this tab only): creating an interview on a
// question with its panel, its three links to copy (each saying whom it is for and what it
// grants), the list of interviews with their status, where each interview's links can be
// issued again (the old ones stop working), and the people: invited with a one-time link,
// changed, disabled; and the webhooks (admin-webhooks.ts).
import { api, explain, ApiError, type CreateInterview, type QuestionSummary, type CreatedInterview as Created, type InterviewSummary as Listed } from './api'
import type { PasswordLink, Person, SessionView } from './gen'
import { h, page, replace, dateTime, announce } from './dom'
import { webhooksPanel } from './admin-webhooks'

const KEY = 'duet.admin'

export async function openAdmin(): Promise<void> {
  // The admin token if this tab holds one, else the session of a signed-in admin ('').
  let token = sessionStorage.getItem(KEY)
  let me: SessionView | null = null
  if (!token) {
    me = await api<SessionView>('', 'GET', '/api/session').catch(() => null)
    if (!me || me.person.role !== 'admin') return askToken(me ? 'You are signed in, but not as an admin.' : undefined)
    token = ''
  }
  const main = page('Admin',
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Admin'),
      me ? h('a', { href: '/me', class: 'small' }, `My interviews (${me.person.name})`)
        : h('button', { type: 'button', class: 'small', onclick: () => { sessionStorage.removeItem(KEY); void openAdmin() } }, 'Forget the admin token')))
  const people = peoplePanel(token)
  const form = createForm(token, people.people)
  const list = h('section', { class: 'panel', 'aria-labelledby': 'list-h' }, h('h2', { id: 'list-h' }, 'Interviews'), h('p', { class: 'muted' }, 'Loading…'))
  main.append(h('div', { class: 'admin' }, form.element, list), people.element, webhooksPanel(token))
  const reissued = h('div', { class: 'reissued', role: 'status', 'data-testid': 'reissued' })
  const reissue = async (r: Listed) => {
    if (!confirm(`Issue new links for “${r.title}” with ${r.candidate_name}? The current three links stop working at once, open pages included.`)) return
    try {
      const fresh = await api<Created>(token, 'POST', `/api/interviews/${encodeURIComponent(r.id)}/links`)
      replace(reissued, h('h3', {}, `New links for “${r.title}” with ${r.candidate_name}:`), renderLinks(fresh, '-new'))
      announce('New links issued')
    } catch (err) {
      replace(reissued, h('p', { role: 'alert', class: 'banner warn' },
        `New links: ${explain(err)}`))
    }
  }
  const refresh = async () => {
    try {
      const rows = await api<Listed[]>(token, 'GET', '/api/interviews')
      replace(list, h('h2', { id: 'list-h' }, 'Interviews'), rows.length === 0 ? h('p', { class: 'muted' }, 'None yet.') :
        h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Title'), h('th', { scope: 'col' }, 'Candidate'), h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Debrief'), h('th', { scope: 'col' }, 'Links'))),
          h('tbody', {}, rows.map((r) => h('tr', {},
            h('td', {}, r.title), h('td', {}, r.candidate_name), h('td', {}, dateTime(r.created_at)),
            h('td', {}, r.status),
            h('td', {}, r.candidate_ref ? h('a', { href: `/debrief/candidate/${encodeURIComponent(r.candidate_ref)}` }, 'Debrief') : '—'),
            h('td', {}, h('button', { type: 'button', class: 'small', 'aria-label': `New links for ${r.title} with ${r.candidate_name}`, onclick: () => void reissue(r) }, 'New links'))))))),
        reissued)
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        sessionStorage.removeItem(KEY)
        return askToken(token ? 'That token was refused. Enter the admin token again.' : 'Your session ended. Sign in again.')
      }
      replace(list, h('h2', { id: 'list-h' }, 'Interviews'), h('p', { role: 'alert' }, explain(err)))
    }
  }
  form.onCreated = refresh
  await refresh()
  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

/** The three links, each with whom it is for and what it grants. */
function renderLinks(created: Created, idSuffix: string): HTMLElement {
  const link = (label: string, url: string, note: string, warn: boolean) => {
    const id = `link-${label.toLowerCase()}${idSuffix}`
    const input = h('input', { id, readonly: true, value: url, class: 'link', 'aria-describedby': `${id}-note` })
    const copy = h('button', { type: 'button', class: 'small' }, 'Copy')
    copy.addEventListener('click', async () => {
      try { await navigator.clipboard.writeText(url); copy.textContent = 'Copied' } catch { input.select() }
    })
    return h('div', { class: `field link-field${warn ? ' private' : ''}` },
      h('label', { for: id }, `${label} link`),
      h('div', { class: 'row' }, input, copy),
      h('p', { id: `${id}-note`, class: `small ${warn ? 'link-warning' : 'muted'}` }, note))
  }
  return h('div', { class: 'links' },
    link('Candidate', created.urls.candidate, 'For the candidate: the shared editor and the question, nothing private.', false),
    link('Interviewer', created.urls.interviewer,
      'Private: grants the hints, the hidden tests, the solution, notes and the scorecard. Never send it to the candidate.', true),
    link('Reviewer', created.urls.reviewer, 'Private: grants the replay, the notes and the scorecard. For reviewers only.', true),
    h('p', { class: 'small muted' }, 'The links hold the access tokens and are shown only now; issue new ones from the list if they are lost.'))
}

function askToken(problem?: string): void {
  const input = h('input', { id: 'admin-token', type: 'password', autocomplete: 'off', required: true })
  const form = h('form', { class: 'panel narrow' },
    h('h2', {}, 'Admin token'),
    problem ? h('p', { role: 'alert', class: 'banner warn' }, problem) : null,
    h('p', {}, 'The server printed it on first start (or it is DUET_ADMIN_TOKEN). It is kept for this tab only. ',
      'Admins with an account ', h('a', { href: '/signin?next=/admin' }, 'sign in'), ' instead.'),
    h('div', { class: 'field' }, h('label', { for: 'admin-token' }, 'Admin token'), input),
    h('button', { type: 'submit', class: 'primary' }, 'Continue'))
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    sessionStorage.setItem(KEY, input.value.trim())
    void openAdmin()
  })
  page('Admin', h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Admin')), form)
  input.focus()
}

function createForm(token: string, people: () => Person[]): { element: HTMLElement; onCreated: () => void } {
  const title = h('input', { id: 'f-title', required: true, maxlength: '200', value: 'Python pairing' })
  const name = h('input', { id: 'f-name', required: true, maxlength: '100', autocomplete: 'off' })
  const ref = h('input', { id: 'f-ref', maxlength: '200', autocomplete: 'off' })
  const question = h('select', { id: 'f-question' }, h('option', { value: '' }, 'Loading…'))
  const panel = panelPicker(people)
  const result = h('div', { class: 'created', role: 'status' })
  const createBtn = h('button', { type: 'submit', class: 'primary' }, 'Create interview')
  const out = { element: null as unknown as HTMLElement, onCreated: () => {} }
  void api<QuestionSummary[]>(token, 'GET', '/api/questions').then((qs) => {
    replace(question, h('option', { value: '' }, 'No question (pick one in the room)'),
      ...['easy', 'medium', 'hard'].map((d) => h('optgroup', { label: d },
        qs.filter((q) => q.difficulty === d).map((q) => h('option', { value: q.id },
          `${q.title}${q.kind === 'discussion' ? ' (discussion)' : ''}${q.tags.length ? ` · ${q.tags.join(', ')}` : ''}`)))))
  }).catch((err) => replace(question, h('option', { value: '' }, `Question bank: ${explain(err)}`)))
  const form = h('form', { class: 'panel', 'aria-labelledby': 'new-h' },
    h('h2', { id: 'new-h' }, 'New interview'),
    h('div', { class: 'field' }, h('label', { for: 'f-title' }, 'Title'), title),
    h('div', { class: 'field' }, h('label', { for: 'f-name' }, 'Candidate name'), name),
    h('div', { class: 'field' }, h('label', { for: 'f-ref' }, 'Candidate reference (optional: groups a candidate\'s interviews for the debrief)'), ref),
    h('div', { class: 'field' }, h('label', { for: 'f-question' }, 'Question'), question),
    panel.element,
    createBtn,
    result)
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    if (createBtn.disabled) return // one interview per click, however fast the clicks come
    createBtn.disabled = true
    const body: CreateInterview = { title: title.value.trim(), candidate_name: name.value.trim() }
    if (question.value) body.question_id = question.value
    if (ref.value.trim()) body.candidate_ref = ref.value.trim()
    let note = ''
    try {
      let created: Created
      try {
        created = await api<Created>(token, 'POST', '/api/interviews', body)
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 400 && body.candidate_ref && /candidate_ref/.test(err.message))) throw err
        delete body.candidate_ref
        note = 'This server does not take a candidate reference yet; the interview was created without it.'
        created = await api<Created>(token, 'POST', '/api/interviews', body)
      }
      const seats = panel.chosen()
      if (seats.interviewers.length + seats.reviewers.length > 0) {
        try {
          await api(token, 'PUT', `/api/interviews/${encodeURIComponent(created.id)}/panel`, seats)
        } catch (err) {
          note = `The interview was created, but its panel was not set: ${explain(err)}`
        }
      }
      replace(result,
        h('h3', {}, 'Created. Send each person their own link (people on the panel open it from their interviews, no link needed):'),
        note ? h('p', { class: 'banner warn' }, note) : null,
        renderLinks(created, ''))
      announce('Interview created')
      // The form starts over: a second click cannot create the same interview twice (the
      // candidate's name is required again).
      title.value = title.defaultValue
      name.value = ''
      ref.value = ''
      question.value = ''
      panel.reset()
      out.onCreated()
    } catch (err) {
      replace(result, h('p', { role: 'alert', class: 'banner warn' }, `Not created: ${explain(err)}`))
    } finally {
      createBtn.disabled = false
    }
  })
  out.element = form
  return out
}

/** Checkboxes for the new interview's panel: interviewers (admins and interviewers) and reviewers. */
function panelPicker(people: () => Person[]): { element: HTMLElement; chosen: () => { interviewers: string[]; reviewers: string[] }; reset: () => void } {
  const host = h('fieldset', { class: 'area', 'data-testid': 'panel-picker' }, h('legend', {}, 'Panel (people open it from their interviews)'))
  const boxes: { input: HTMLInputElement; id: string; seat: 'interviewers' | 'reviewers' }[] = []
  const draw = () => {
    replace(host, h('legend', {}, 'Panel (people open it from their interviews)'))
    boxes.length = 0
    const active = people().filter((p) => p.state === 'active')
    if (active.length === 0) { host.append(h('p', { class: 'small muted' }, 'Nobody to seat yet: invite people below.')); return }
    for (const p of active) {
      const seat = p.role === 'reviewer' ? 'reviewers' : 'interviewers'
      const id = `seat-${p.id}`
      const input = h('input', { type: 'checkbox', id })
      boxes.push({ input, id: p.id, seat })
      host.append(h('div', { class: 'row' }, input, h('label', { for: id }, `${p.name} (${p.email}) as ${seat === 'reviewers' ? 'reviewer' : 'interviewer'}`)))
    }
  }
  draw()
  window.addEventListener('duet:people', draw)
  return {
    element: host,
    chosen: () => ({
      interviewers: boxes.filter((b) => b.input.checked && b.seat === 'interviewers').map((b) => b.id),
      reviewers: boxes.filter((b) => b.input.checked && b.seat === 'reviewers').map((b) => b.id),
    }),
    reset: () => { for (const b of boxes) b.input.checked = false },
  }
}

/** The people: invite (a one-time link to set a password), change the role, disable or enable. */
function peoplePanel(token: string): { element: HTMLElement; people: () => Person[] } {
  let people: Person[] = []
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'))
  const shown = h('div', { role: 'status', 'data-testid': 'people-status' })
  const showLink = (link: PasswordLink, what: string) => {
    replace(shown, h('p', {}, `${what} Send ${link.person.name} this link to set a password (it works once, until ${dateTime(link.expires_at)}):`),
      h('input', { readonly: true, value: link.link, class: 'link', 'aria-label': `Password link for ${link.person.email}`, 'data-testid': 'password-link' }))
  }
  const failed = (err: unknown) => replace(shown, h('p', { role: 'alert', class: 'banner warn' }, explain(err)))
  const change = async (p: Person, update: Record<string, string>) => {
    try { await api(token, 'PATCH', `/api/people/${encodeURIComponent(p.id)}`, update); announce('Saved') } catch (err) { failed(err) }
    await refresh()
  }
  const refresh = async () => {
    try {
      people = await api<Person[]>(token, 'GET', '/api/people')
      window.dispatchEvent(new Event('duet:people'))
      replace(list, people.length === 0 ? h('p', { class: 'muted' }, 'Nobody yet.') :
        h('div', { class: 'table-wrap' }, h('table', { class: 'list', 'data-testid': 'people' },
          h('thead', {}, h('tr', {}, ...['Name', 'Email', 'Role', 'State', 'Password', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, people.map((p) => {
            const role = h('select', { 'aria-label': `Role of ${p.email}` },
              ...(['admin', 'interviewer', 'reviewer'] as const).map((r) => h('option', { value: r, selected: r === p.role }, r)))
            role.addEventListener('change', () => void change(p, { role: role.value }))
            return h('tr', {},
              h('td', {}, p.name), h('td', {}, p.email), h('td', {}, role), h('td', {}, p.state),
              h('td', {}, p.password_set ? 'set' : 'not yet'),
              h('td', { class: 'actions' },
                p.state === 'active'
                  ? h('button', { type: 'button', class: 'small', 'aria-label': `Disable ${p.email}`, onclick: () => {
                    if (confirm(`Disable ${p.email}? They are signed out everywhere at once.`)) void change(p, { state: 'disabled' })
                  } }, 'Disable')
                  : h('button', { type: 'button', class: 'small', 'aria-label': `Enable ${p.email}`, onclick: () => void change(p, { state: 'active' }) }, 'Enable'),
                ' ',
                p.state === 'active' ? h('button', { type: 'button', class: 'small', 'aria-label': `New password link for ${p.email}`, onclick: async () => {
                  try { showLink(await api<PasswordLink>(token, 'POST', `/api/people/${encodeURIComponent(p.id)}/password-link`), 'New link issued; earlier ones no longer work.') } catch (err) { failed(err) }
                } }, 'New password link') : null))
          })))))
    } catch (err) {
      failed(err)
    }
  }
  const email = h('input', { id: 'p-email', type: 'email', required: true, autocomplete: 'off' })
  const name = h('input', { id: 'p-name', required: true, maxlength: '100', autocomplete: 'off' })
  const role = h('select', { id: 'p-role' }, ...['interviewer', 'reviewer', 'admin'].map((r) => h('option', { value: r }, r)))
  const form = h('form', { class: 'invite' },
    h('h3', {}, 'Invite someone'),
    h('div', { class: 'field' }, h('label', { for: 'p-email' }, 'Email'), email),
    h('div', { class: 'field' }, h('label', { for: 'p-name' }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: 'p-role' }, 'Role'), role),
    h('button', { type: 'submit', class: 'primary' }, 'Invite'))
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    try {
      const link = await api<PasswordLink>(token, 'POST', '/api/people', { email: email.value.trim(), name: name.value.trim(), role: role.value })
      showLink(link, `Invited ${link.person.email}.`)
      email.value = ''
      name.value = ''
      await refresh()
    } catch (err) {
      failed(err)
    }
  })
  void refresh()
  return {
    element: h('section', { class: 'panel', 'aria-labelledby': 'people-h' }, h('h2', { id: 'people-h' }, 'People'), list, form, shown),
    people: () => people,
  }
}
