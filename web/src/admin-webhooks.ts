// The admin page's webhooks: endpoints registered with the events they want (the signing
// secret shown once), each endpoint's delivery log with a redeliver button per delivery, and
// removal. What the server refuses (an internal address, a bad secret) is said as it says it.
import { api, explain } from './api'
import type { DeliveryPage, Webhook, WebhookCreated, WebhookDelivery, WebhookEvent } from './gen'
import { h, replace, dateTime, announce } from './dom'

const EVENTS: WebhookEvent[] = ['interview.created', 'interview.started', 'interview.ended', 'take_home.submitted', 'scorecard.submitted']

export function webhooksPanel(token: string): HTMLElement {
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'))
  const shown = h('div', { role: 'status', 'data-testid': 'webhook-status' })
  const log = h('div', { 'data-testid': 'webhook-log' })
  const failed = (err: unknown) => replace(shown, h('p', { role: 'alert', class: 'banner warn' }, explain(err)))

  const showLog = async (w: Webhook) => {
    try {
      const page = await api<DeliveryPage>(token, 'GET', `/api/webhooks/${encodeURIComponent(w.id)}/deliveries`)
      const row = (d: WebhookDelivery) => h('tr', {},
        h('td', {}, d.event), h('td', {}, d.interview_id), h('td', {}, d.state), h('td', {}, String(d.attempts)),
        h('td', {}, d.last_status === null ? '—' : String(d.last_status)),
        h('td', {}, d.last_error ?? '—'),
        h('td', {}, d.delivered_at ? dateTime(d.delivered_at) : d.next_attempt_at ? `next ${dateTime(d.next_attempt_at)}` : '—'),
        h('td', {}, h('button', { type: 'button', class: 'small', 'aria-label': `Redeliver ${d.event} ${d.event_id}`, onclick: async () => {
          try {
            await api(token, 'POST', `/api/webhooks/${encodeURIComponent(w.id)}/deliveries/${d.id}/redeliver`)
            announce('Queued again')
            await showLog(w)
          } catch (err) { failed(err) }
        } }, 'Redeliver')))
      replace(log, h('h3', {}, `Deliveries to ${w.url}`),
        page.deliveries.length === 0 ? h('p', { class: 'muted' }, 'None yet.') :
          h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
            h('thead', {}, h('tr', {}, ...['Event', 'Interview', 'State', 'Attempts', 'Status', 'Last error', 'When', ''].map((t) => h('th', { scope: 'col' }, t)))),
            h('tbody', {}, page.deliveries.map(row)))))
    } catch (err) { failed(err) }
  }

  const refresh = async () => {
    try {
      const hooks = await api<Webhook[]>(token, 'GET', '/api/webhooks')
      replace(list, hooks.length === 0 ? h('p', { class: 'muted' }, 'No webhooks.') :
        h('div', { class: 'table-wrap' }, h('table', { class: 'list', 'data-testid': 'webhooks' },
          h('thead', {}, h('tr', {}, ...['URL', 'Events', 'Added', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, hooks.map((w) => h('tr', {},
            h('td', {}, w.url), h('td', {}, w.events.join(', ')), h('td', {}, dateTime(w.created_at)),
            h('td', { class: 'actions' },
              h('button', { type: 'button', class: 'small', 'aria-label': `Deliveries to ${w.url}`, onclick: () => void showLog(w) }, 'Deliveries'), ' ',
              h('button', { type: 'button', class: 'small', 'aria-label': `Remove ${w.url}`, onclick: async () => {
                if (!confirm(`Remove the webhook to ${w.url}? Its pending deliveries are dropped.`)) return
                try { await api(token, 'DELETE', `/api/webhooks/${encodeURIComponent(w.id)}`); replace(log); await refresh() } catch (err) { failed(err) }
              } }, 'Remove'))))))))
    } catch (err) { failed(err) }
  }

  const url = h('input', { id: 'w-url', type: 'url', required: true, placeholder: 'https://…', autocomplete: 'off' })
  const boxes = EVENTS.map((e) => h('input', { type: 'checkbox', value: e, checked: true, id: `w-${e}` }))
  const form = h('form', { class: 'invite' },
    h('h3', {}, 'Add a webhook'),
    h('div', { class: 'field' }, h('label', { for: 'w-url' }, 'URL'), url),
    h('fieldset', {}, h('legend', {}, 'Events'),
      ...boxes.map((b, i) => h('label', { for: b.id }, b, ` ${EVENTS[i]}`))),
    h('button', { type: 'submit', class: 'primary' }, 'Add'))
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const events = boxes.filter((b) => b.checked).map((b) => b.value as WebhookEvent)
    try {
      const made = await api<WebhookCreated>(token, 'POST', '/api/webhooks', { url: url.value.trim(), events })
      replace(shown, h('p', {}, `Added. Its signing secret, shown this once (each delivery is signed with it; see docs/API.md):`),
        h('input', { readonly: true, value: made.secret, class: 'link', 'aria-label': 'Webhook signing secret', 'data-testid': 'webhook-secret' }))
      url.value = ''
      await refresh()
    } catch (err) { failed(err) }
  })
  void refresh()
  return h('section', { class: 'panel', 'aria-labelledby': 'webhooks-h' }, h('h2', { id: 'webhooks-h' }, 'Webhooks'), list, form, shown, log)
}
