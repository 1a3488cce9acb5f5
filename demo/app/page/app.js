// The demo page: renders the state the app pushes over server-sent events
// (/v1/events) and sends transfers, audits, load and process actions to the
// app's API. Plain JS, no build step. Rows that hold buttons are updated in
// place (never re-created), so a click is not lost to a re-render.
'use strict';

const $ = (sel) => document.querySelector(sel);
const fmt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const ago = (ms) => (ms < 1500 ? 'just now' : `${Math.round(ms / 1000)} s ago`);

let latest = null;

async function post(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON
  }
  return { status: res.status, body: json };
}

function problem(r) {
  const e = r.body && r.body.error;
  return e ? `${r.status} ${e.code}: ${e.message}` : `HTTP ${r.status}`;
}

// ---------------------------------------------------------------------------
// Rendering

function renderTotals(s) {
  $('#expected-total').textContent = fmt(s.expectedTotal);
  const a = s.audit;
  const audited = $('#audited-total');
  if (a && a.outcome === 'committed') {
    audited.textContent = fmt(a.total);
    audited.className = s.expectedTotal === null ? '' : a.total === s.expectedTotal ? 'good' : 'bad';
    $('#audit-note').textContent = `${a.total === s.expectedTotal ? '✓ equal' : '✗ differs'}; audited ${ago(Date.now() - a.at)}`;
  } else {
    audited.textContent = a ? fmt(null) : '–';
    $('#audit-note').textContent = a ? `last audit aborted: ${a.reason || ''}`.slice(0, 90) : 'read under locks in every bank at once';
  }
  const live = $('#live-total');
  live.textContent = fmt(s.liveTotal);
  live.className = s.liveTotal !== null && s.liveTotal === s.expectedTotal ? 'good' : s.holds > 0 ? 'warn' : '';
  $('#in-flight').textContent = s.liveTotal === null ? 'a bank is not answering' : `${s.holds} transfer hold(s) in flight; polled bank by bank`;
  const d = s.inDoubt;
  const worst = Math.max(d.feed, d.coordinators ?? 0);
  const el = $('#in-doubt');
  el.textContent = String(worst);
  el.className = worst > 0 ? 'bad' : 'good';
  $('#in-doubt-note').textContent = `past deadline, undecided; ${d.banks} yes vote(s) awaiting a decision at the banks`;
}

function renderBanks(s) {
  const html = s.banks
    .map((b) => {
      const rows = b.accounts
        .map((a) => `<tr data-account="${esc(b.name)}:${esc(a.id)}"><td>${esc(a.id)}</td><td class="balance">${fmt(a.balance)}</td><td class="locked">${a.locked ? fmt(a.locked) : ''}</td><td>${a.readLocked ? '<span class="readlock">audit lock</span>' : ''}</td></tr>`)
        .join('');
      const status = b.up ? `<small class="good">up · ${b.inDoubt} in doubt · ${b.holds} hold(s)</small>` : `<small class="bad">down${b.stale ? ' (last known balances)' : ''}</small>`;
      const total = b.accounts.reduce((x, a) => x + a.balance, 0);
      return `<div class="bank${b.up ? '' : ' down'}" data-bank="${esc(b.name)}"><h3>${esc(b.name)} ${status}</h3>
        <table><thead><tr><th>account</th><th>balance</th><th>locked</th><th></th></tr></thead><tbody>${rows}</tbody>
        <tfoot><tr><td>total</td><td class="bank-total">${fmt(total)}</td><td></td><td></td></tr></tfoot></table></div>`;
    })
    .join('');
  $('#banks').innerHTML = html;
}

function renderStore(s) {
  $('#store tbody').innerHTML = s.store
    .map((n) => {
      const cls = !n.up ? 'down' : n.role === 'leader' ? 'leader' : '';
      return `<tr data-node="${esc(n.name)}" class="${cls}"><td>${esc(n.name)}</td><td class="role">${n.up ? esc(n.role) + (n.role === 'leader' ? ' ★' : '') : 'not answering'}</td><td>${fmt(n.term)}</td><td>${fmt(n.commitIndex)}</td><td>${fmt(n.appliedIndex)}</td></tr>`;
    })
    .join('');
  $('#coordinators tbody').innerHTML = s.coordinators
    .map((c) => `<tr data-coordinator="${esc(c.name)}" class="${c.up ? '' : 'down'}"><td>${esc(c.name)}</td><td class="${c.up ? 'good' : 'bad'}">${c.up ? 'up' : 'not answering'}</td><td>${fmt(c.liveTransactions)}</td><td>${esc(sweepRole(c))}</td></tr>`)
    .join('');
}

// The recovery sweep election (recipes/ Election): what one coordinator says of its part in it.
function sweepRole(c) {
  if (!c.up) return '–';
  if (!c.sweep) return 'sweeps (no election)';
  if (c.sweep.leading) return 'leads ★ sweeping';
  return c.sweep.state === 'campaigning' ? 'in line, not sweeping' : 'opening a session';
}

function renderSweep(s) {
  const w = s.sweep;
  const panel = $('#sweep');
  const l = w.leader;
  panel.dataset.leader = l ? l.id : '';
  panel.dataset.token = l ? String(l.token) : '';
  panel.dataset.confirmed = w.confirmed ? '1' : '0';
  $('#sweep-leader').textContent = l ? l.id : w.election ? 'no leader yet' : '–';
  $('#sweep-term').textContent = l ? fmt(l.term) : '–';
  $('#sweep-token').textContent = l ? fmt(l.token) : '–';
  $('#sweep-note').textContent = !w.election
    ? 'the coordinators run without --sweep-election: each sweeps'
    : !l
      ? `election "${w.election}": campaigning`
      : w.confirmed
        ? `${l.id} alone runs the recovery sweep; the others wait in line. Kill it: its lease expires and the next takes over with a larger token.`
        : `${l.id} does not confirm: its lease runs out within the TTL, then the next in line leads.`;
  $('#sweep-coordinators').innerHTML = s.coordinators.map((c) => `<li data-coordinator="${esc(c.name)}">${esc(c.name)}: ${esc(c.up ? sweepRole(c) : 'not answering')}</li>`).join('');
  $('#sweep-history').textContent = w.history.length > 1 ? `leaders seen: ${w.history.map((h) => `${h.id} #${h.token}`).join(' → ')}` : '';
}

const ROLE_ORDER = { store: 0, coordinator: 1, bank: 2, app: 3 };

function renderProcesses(s) {
  const body = $('#processes tbody');
  if (!s.processes) {
    body.innerHTML = '<tr><td colspan="6">the app runs without the supervisor: no process control</td></tr>';
    return;
  }
  const procs = [...s.processes].sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role] || a.name.localeCompare(b.name));
  for (const p of procs) {
    let tr = body.querySelector(`tr[data-proc="${CSS.escape(p.name)}"]`);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.proc = p.name;
      const buttons = p.role === 'app' ? '<small>serves this page</small>' : ['kill', 'pause', 'resume', 'restart'].map((a) => `<button type="button" data-action="${a}">${a[0].toUpperCase() + a.slice(1)}</button>`).join(' ');
      tr.innerHTML = `<td>${esc(p.name)}</td><td>${esc(p.role)}</td><td>${p.port}</td><td class="pid"></td><td class="state"></td><td class="actions">${buttons}</td>`;
      body.appendChild(tr);
    }
    tr.querySelector('.pid').textContent = p.pid ?? '–';
    const st = tr.querySelector('.state');
    st.textContent = p.state === 'exited' ? `exited (${p.exitSignal || `code ${p.exitCode}`})` : p.state;
    st.className = `state state-${p.state}`;
    const pending = tr.dataset.pending === '1';
    for (const b of tr.querySelectorAll('button')) {
      const a = b.dataset.action;
      const allowed = a === 'kill' ? p.state === 'running' || p.state === 'paused' : a === 'pause' ? p.state === 'running' : a === 'resume' ? p.state === 'paused' : true;
      b.disabled = pending || !allowed;
    }
  }
}

function voteBadge(name, v) {
  if (!v) return `<span class="vote" title="no vote yet">${esc(name)} …</span>`;
  const filled = v.by !== name ? ` (by ${esc(v.by)})` : '';
  return `<span class="vote ${v.vote}" title="${esc(v.reason || '')}">${esc(name)} ${v.vote === 'yes' ? '✓' : '✗'}${filled}</span>`;
}

function renderTxs(s) {
  const c = s.txCounts;
  $('#tx-counts').textContent = `(${fmt(c.seen)} seen since the page's app started: ${fmt(c.committed)} committed, ${fmt(c.aborted)} aborted)`;
  $('#txs tbody').innerHTML = s.transactions
    .slice(0, 30)
    .map((t) => {
      const votes = t.participants.map((p) => voteBadge(p, t.votes[p])).join('');
      const decided = t.decidedAtMs ? ` <small>+${Math.max(0, t.decidedAtMs - t.createdAt)} ms</small>` : '';
      const acks = t.decision ? `${Object.keys(t.acks).length}/${t.participants.length}` : '';
      const when = new Date(t.createdAt).toLocaleTimeString();
      const reason = Object.values(t.votes).find((v) => v.vote === 'no');
      return `<tr data-tx="${esc(t.id)}" class="tx-${t.status}"><td>${when}</td><td class="mono" title="${esc(t.id)}">${esc(t.id.slice(0, 12))}…</td><td>${esc(t.label)}</td><td>${votes}</td>
        <td>${t.decision ? esc(t.decision) + decided : ''}</td><td>${acks}</td>
        <td><span class="status-${t.status}" title="${esc(reason ? reason.reason || '' : '')}">${t.inDoubt ? 'IN DOUBT' : esc(t.status)}</span></td></tr>`;
    })
    .join('');
}

function renderLoad(s) {
  const l = s.load;
  $('#load-started').textContent = fmt(l.started);
  $('#load-committed').textContent = fmt(l.committed);
  $('#load-aborted').textContent = fmt(l.aborted);
  $('#load-failed').textContent = fmt(l.failed);
  $('#load-rate').textContent = `${l.ratePerSec}/s`;
  $('#load-state').textContent = l.running ? `running (${l.concurrency} workers)` : l.startedAt ? 'stopped' : 'idle';
  const btn = $('#load-btn');
  btn.textContent = l.running ? 'Stop load' : 'Run load';
  btn.dataset.running = l.running ? '1' : '0';
  $('#load-note').textContent = l.lastError ? `last error: ${l.lastError}` : l.lastAbortReason ? `last abort: ${l.lastAbortReason}` : '';
  $('#audit-btn').disabled = s.auditRunning;
}

function fillSelect(sel, options, preferred) {
  const current = sel.value || preferred;
  const same = sel.options.length === options.length && [...sel.options].every((o, i) => o.value === options[i]);
  if (!same) sel.innerHTML = options.map((o) => `<option value="${esc(o)}">${esc(o)}</option>`).join('');
  if (options.includes(current)) sel.value = current;
}

function renderForm(s) {
  const banks = s.banks.map((b) => b.name);
  fillSelect($('#from-bank'), banks, banks[0]);
  fillSelect($('#to-bank'), banks, banks[1] || banks[0]);
  const accountsOf = (name) => (s.banks.find((b) => b.name === name) || { accounts: [] }).accounts.map((a) => a.id);
  fillSelect($('#from-account'), accountsOf($('#from-bank').value), 'alice');
  fillSelect($('#to-account'), accountsOf($('#to-bank').value), 'bob');
}

function render(s) {
  latest = s;
  renderTotals(s);
  renderBanks(s);
  renderSweep(s);
  renderStore(s);
  renderProcesses(s);
  renderTxs(s);
  renderLoad(s);
  renderForm(s);
}

// ---------------------------------------------------------------------------
// Actions

$('#from-bank').addEventListener('change', () => latest && renderForm(latest));
$('#to-bank').addEventListener('change', () => latest && renderForm(latest));

$('#transfer-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = $('#transfer-result');
  const btn = $('#transfer-btn');
  btn.disabled = true;
  out.textContent = 'running two-phase commit…';
  out.dataset.outcome = 'pending';
  try {
    const body = {
      from: { bank: $('#from-bank').value, account: $('#from-account').value },
      to: { bank: $('#to-bank').value, account: $('#to-account').value },
      amount: Number($('#amount').value),
    };
    const r = await post('/v1/transfers', body);
    if (r.status === 200) {
      const o = r.body;
      out.innerHTML = `<span class="${o.outcome === 'committed' ? 'good' : 'bad'}">${esc(o.outcome)}</span> · ${esc(body.from.bank)}:${esc(body.from.account)} → ${esc(body.to.bank)}:${esc(body.to.account)} ${fmt(body.amount)} · ${o.elapsedMs} ms${o.attempts > 1 ? ` (${o.attempts} tries: an audit held the locks)` : ''} · <span class="mono">${esc(o.txId)}</span>${o.reason ? ` · ${esc(o.reason)}` : ''}`;
      out.dataset.outcome = o.outcome;
    } else {
      out.innerHTML = `<span class="bad">${esc(problem(r))}</span>`;
      out.dataset.outcome = 'error';
    }
  } catch (e) {
    out.textContent = `the app did not answer: ${e}`;
    out.dataset.outcome = 'error';
  } finally {
    btn.disabled = false;
  }
});

$('#load-btn').addEventListener('click', async () => {
  const running = $('#load-btn').dataset.running === '1';
  const r = await post('/v1/load', running ? { action: 'stop' } : { action: 'start', concurrency: Number($('#load-concurrency').value) });
  if (r.status !== 200) $('#load-note').textContent = problem(r);
});

$('#audit-btn').addEventListener('click', async () => {
  const out = $('#audit-result');
  $('#audit-btn').disabled = true;
  out.textContent = 'locking every account in every bank…';
  out.dataset.outcome = 'pending';
  try {
    const r = await post('/v1/audit', {});
    if (r.status !== 200) {
      out.innerHTML = `<span class="bad">${esc(problem(r))}</span>`;
      out.dataset.outcome = 'error';
      return;
    }
    const a = r.body;
    if (a.outcome === 'committed') {
      const parts = a.banks.map((b) => `${esc(b.name)} ${fmt(b.total)}`).join(' + ');
      const ok = latest && a.total === latest.expectedTotal;
      out.innerHTML = `${parts} = <b class="${ok ? 'good' : 'bad'}">${fmt(a.total)}</b> ${ok ? '✓' : ''} · ${a.elapsedMs} ms · ${a.attempts} attempt(s)`;
    } else {
      out.innerHTML = `<span class="bad">aborted after ${a.attempts} attempt(s)</span>: ${esc(a.reason || '')}`;
    }
    out.dataset.outcome = a.outcome;
  } finally {
    $('#audit-btn').disabled = false;
  }
});

$('#processes').addEventListener('click', async (ev) => {
  const btn = ev.target.closest('button[data-action]');
  if (!btn) return;
  const tr = btn.closest('tr');
  const name = tr.dataset.proc;
  const action = btn.dataset.action;
  const out = $('#action-result');
  tr.dataset.pending = '1';
  for (const b of tr.querySelectorAll('button')) b.disabled = true;
  out.textContent = `${action} ${name}…`;
  try {
    const r = await post(`/v1/processes/${encodeURIComponent(name)}/${action}`, {});
    out.innerHTML = r.status === 200 ? `${esc(action)} ${esc(name)}: done (pid ${r.body.pid ?? '–'}, ${esc(r.body.state)})` : `<span class="bad">${esc(action)} ${esc(name)}: ${esc(problem(r))}</span>`;
  } catch (e) {
    out.textContent = `${action} ${name}: the app did not answer: ${e}`;
  } finally {
    delete tr.dataset.pending;
    if (latest) renderProcesses(latest);
  }
});

// ---------------------------------------------------------------------------
// Live updates

function connect() {
  const conn = $('#conn');
  const es = new EventSource('/v1/events');
  es.addEventListener('state', (ev) => {
    conn.textContent = 'live';
    conn.className = 'conn live';
    render(JSON.parse(ev.data));
  });
  es.onerror = () => {
    conn.textContent = 'reconnecting…';
    conn.className = 'conn lost';
  };
}
connect();
