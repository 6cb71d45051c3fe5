// The interviewer's scorecard (issue 10's API): five areas rated 1 to 4 against anchored
// descriptions, notes, level, recommendation, runs attached as evidence, save (with the
// version, so two tabs never overwrite each other) and submit.
import { api, ApiError, explain, type Evidence, type Level, type Recommendation, type Scorecard, type ScorecardAnswer, type ScorecardRun, type ScorecardUpdate } from './api'
import { h, replace, announce, clock } from './dom'


export async function loadScorecard(token: string, base: string): Promise<ScorecardAnswer> {
  return api<ScorecardAnswer>(token, 'GET', `${base}/scorecard`)
}

/**
 * Mounts the scorecard in `host`. Returns a refresh that fetches the session's runs again (runs
 * made since the card was opened can then be attached), keeping what is being edited.
 */
export async function mountScorecard(host: HTMLElement, token: string, base: string): Promise<() => Promise<void>> {
  let answer: ScorecardAnswer
  let card: Scorecard
  try {
    answer = await loadScorecard(token, base)
    card = answer.scorecard
  } catch (err) {
    replace(host, h('p', { class: 'muted' }, `Scorecard: ${explain(err)}.`))
    return async () => {}
  }
  const status = h('p', { class: 'small', role: 'status' })
  // Evidence as a person reads it: "tests 15:04:09 · 1 failed, 4 passed", never a run id.
  const runText = (r: ScorecardRun): string => {
    const kind = r.kind === 'test' ? 'tests' : r.kind === 'lint' ? 'style check' : 'run'
    const result = r.tests_passed !== null
      ? `${r.tests_failed ? `${r.tests_failed} failed, ` : ''}${r.tests_passed} passed`
      : r.status === 'ok' ? 'ok' : r.status.replace('_', ' ')
    return `${kind} ${clock(r.at)} · ${result}`
  }
  const evidenceText = (ref: Evidence): string => {
    if (typeof ref === 'number') return `moment #${ref}`
    const run = answer.runs.find((r) => r.run_id === ref)
    return run ? runText(run) : 'a run no longer listed'
  }
  const draw = () => {
    const locked = !!card.submitted_at
    // The areas, their order and titles are the served rubric's.
    const fields: HTMLElement[] = answer.rubric.map(({ area, title: name }) => {
      const current = card.ratings[area] ?? null
      const options = [1, 2, 3, 4].map((n) => {
        const id = `rate-${area}-${n}`
        const anchor = answer.rubric.find((r) => r.area === area)?.levels[n - 1] ?? null
        const input = h('input', { type: 'radio', name: `rate-${area}`, id, value: String(n), disabled: locked })
        input.checked = current === n
        input.addEventListener('change', () => { card.ratings = { ...card.ratings, [area]: n }; changed() })
        return h('div', { class: 'rating' }, input, h('label', { for: id }, String(n), anchor ? h('span', { class: 'anchor' }, ` ${anchor}`) : null))
      })
      const evidence = (card.evidence[area] ?? []).map((ref) => {
        const remove = h('button', { type: 'button', class: 'small', disabled: locked, 'aria-label': `Remove ${evidenceText(ref)} from ${name}` }, 'Remove')
        remove.addEventListener('click', () => {
          card.evidence = { ...card.evidence, [area]: (card.evidence[area] ?? []).filter((x) => x !== ref) }
          changed()
          draw()
        })
        return h('li', {}, evidenceText(ref), ' ', remove)
      })
      return h('fieldset', { class: 'area' }, h('legend', {}, name), ...options,
        evidence.length ? h('ul', { class: 'evidence', 'aria-label': `Evidence for ${name}` }, evidence) : null)
    })
    const notes = h('textarea', { id: 'sc-notes', rows: '4', disabled: locked })
    notes.value = card.notes
    notes.addEventListener('input', () => { card.notes = notes.value; changed() })
    const select = <T extends string>(id: string, label: string, values: readonly T[], current: T | null, set: (v: T | null) => void) => {
      const el = h('select', { id, disabled: locked }, h('option', { value: '' }, '—'), values.map((v) => h('option', { value: v }, v.replace('_', ' '))))
      el.value = current ?? ''
      el.addEventListener('change', () => { set(values.find((v) => v === el.value) ?? null); changed() })
      return h('div', { class: 'field' }, h('label', { for: id }, label), el)
    }
    const runs = answer.runs.map((r) => {
      const attach = h('select', { 'aria-label': `Attach ${runText(r)} as evidence`, disabled: locked },
        h('option', { value: '' }, 'Attach to…'), answer.rubric.map((r) => h('option', { value: r.area }, r.title)))
      attach.addEventListener('change', () => {
        const area = answer.rubric.find((r) => r.area === attach.value)?.area
        if (!area) return
        const list = card.evidence[area] ?? []
        if (!list.includes(r.run_id)) card.evidence = { ...card.evidence, [area]: [...list, r.run_id] }
        attach.value = ''
        changed()
        draw()
      })
      return h('li', {}, `${runText(r)} (by the ${r.by}) `, attach)
    })
    const save = h('button', { type: 'button', disabled: locked }, 'Save')
    const submit = h('button', { type: 'button', class: 'primary', disabled: locked }, 'Submit scorecard')
    save.addEventListener('click', () => void put())
    submit.addEventListener('click', async () => {
      const ok = confirm('Submit the scorecard? This locks it for good: the five ratings, the notes, the level, '
        + 'the recommendation and the evidence can no longer be changed, by you or anyone.')
      if (!ok) return
      if (!(await put())) return
      try {
        await api(token, 'POST', `${base}/scorecard/submit`)
        answer = await loadScorecard(token, base)
        card = answer.scorecard
        draw()
        status.textContent = 'Submitted: the scorecard is locked.'
        announce(status.textContent)
      } catch (err) { status.textContent = `Submit: ${explain(err)}` }
    })
    replace(host,
      // Whose card this is, by name: on a panel each interviewer has their own.
      h('p', { class: 'small', 'data-testid': 'scorecard-author' }, `Scorecard of ${answer.author.name}`),
      locked ? h('p', { class: 'banner ok' }, 'Submitted: the scorecard is locked.') : null,
      ...fields,
      h('div', { class: 'field' }, h('label', { for: 'sc-notes' }, 'Notes'), notes),
      select<Level>('sc-level', 'Level', ['mid', 'senior'], card.level, (v) => { card.level = v }),
      select<Recommendation>('sc-rec', 'Recommendation', ['strong_no', 'no', 'yes', 'strong_yes'], card.recommendation, (v) => { card.recommendation = v }),
      runs.length ? h('div', {}, h('h4', {}, 'Runs (evidence)'), h('ul', { class: 'runs' }, runs)) : null,
      h('div', { class: 'row' }, save, submit), status)
  }
  // Drafts are kept: every change is saved to the server a moment after it is made (and Save
  // saves at once); leaving the page with a change not yet saved asks first.
  let dirty = false
  let autosave: number | null = null
  let saving: Promise<boolean> | null = null
  const changed = () => {
    dirty = true
    status.textContent = 'Unsaved changes: saving shortly…'
    if (autosave !== null) window.clearTimeout(autosave)
    autosave = window.setTimeout(() => { autosave = null; void put() }, 1000)
  }
  window.addEventListener('beforeunload', (e) => {
    if (dirty || saving) { e.preventDefault(); e.returnValue = '' }
  })
  const put = async (): Promise<boolean> => {
    if (autosave !== null) { window.clearTimeout(autosave); autosave = null }
    // One save at a time: each carries the version the previous one answered.
    while (saving) await saving
    saving = putNow()
    try { return await saving } finally { saving = null }
  }
  const putNow = async (): Promise<boolean> => {
    if (card.submitted_at) return true
    const wasDirty = dirty
    dirty = false
    try {
      const body: ScorecardUpdate = { ratings: card.ratings, notes: card.notes, recommendation: card.recommendation, level: card.level, evidence: card.evidence, version: card.version }
      const saved = await api<Scorecard>(token, 'PUT', `${base}/scorecard`, body)
      card.version = saved.version
      status.textContent = `Saved at ${clock(Date.now())}.`
      return true
    } catch (err) {
      dirty = dirty || wasDirty
      status.textContent = err instanceof ApiError && err.status === 409
        ? 'Someone saved this scorecard elsewhere (another tab?). Reload to see their version.'
        : `Save: ${explain(err)}`
      announce(status.textContent)
      return false
    }
  }
  draw()
  return async () => {
    try {
      const fresh = await loadScorecard(token, base)
      answer = { ...answer, runs: fresh.runs }
      draw()
    } catch { /* the list stays as it was; the next opening tries again */ }
  }
}
