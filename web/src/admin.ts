// The admin page: the admin token (entered once, kept for this tab only), creating an
// interview on a question, its three links to copy (each saying whom it is for and what it
// grants), and the list of interviews with their status, where each interview's links can be
// issued again (the old ones stop working).
import { api, explain, ApiError, type CreateInterview, type QuestionSummary, type CreatedInterview as Created, type InterviewSummary as Listed } from './api'
import { h, page, replace, dateTime, announce } from './dom'

const KEY = 'duet.admin'

export function openAdmin(): void {
  const token = sessionStorage.getItem(KEY)
  if (!token) return askToken()
  const main = page('Admin',
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Admin'),
      h('button', { type: 'button', class: 'small', onclick: () => { sessionStorage.removeItem(KEY); openAdmin() } }, 'Forget the admin token')))
  const form = createForm(token)
  const list = h('section', { class: 'panel', 'aria-labelledby': 'list-h' }, h('h2', { id: 'list-h' }, 'Interviews'), h('p', { class: 'muted' }, 'Loading…'))
  main.append(h('div', { class: 'admin' }, form.element, list))
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
        return askToken('That token was refused. Enter the admin token again.')
      }
      replace(list, h('h2', { id: 'list-h' }, 'Interviews'), h('p', { role: 'alert' }, explain(err)))
    }
  }
  form.onCreated = refresh
  void refresh()
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
    h('p', {}, 'The server printed it on first start (or it is DUET_ADMIN_TOKEN). It is kept for this tab only.'),
    h('div', { class: 'field' }, h('label', { for: 'admin-token' }, 'Admin token'), input),
    h('button', { type: 'submit', class: 'primary' }, 'Continue'))
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    sessionStorage.setItem(KEY, input.value.trim())
    openAdmin()
  })
  page('Admin', h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Admin')), form)
  input.focus()
}

function createForm(token: string): { element: HTMLElement; onCreated: () => void } {
  const title = h('input', { id: 'f-title', required: true, maxlength: '200', value: 'Python pairing' })
  const name = h('input', { id: 'f-name', required: true, maxlength: '100', autocomplete: 'off' })
  const ref = h('input', { id: 'f-ref', maxlength: '200', autocomplete: 'off' })
  const question = h('select', { id: 'f-question' }, h('option', { value: '' }, 'Loading…'))
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
      replace(result,
        h('h3', {}, 'Created. Send each person their own link:'),
        note ? h('p', { class: 'banner warn' }, note) : null,
        renderLinks(created, ''))
      announce('Interview created')
      // The form starts over: a second click cannot create the same interview twice (the
      // candidate's name is required again).
      title.value = title.defaultValue
      name.value = ''
      ref.value = ''
      question.value = ''
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
