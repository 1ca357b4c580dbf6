'use strict'

// hub.serveStatus(): a small HTTP server for one hub, on loopback unless told otherwise.
// GET /metrics: hub.metrics() for Prometheus; GET /stats.json: hub.stats(); GET /: a page
// that shows one row per spoke and fetches /stats.json every second. Required by hub.js
// only when serveStatus() is called, so nothing listens unless asked (and the browser
// build, which has no node:http, never loads it).

const http = require('node:http')
const { CONTENT_TYPE } = require('./metrics.js')

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iroh hub</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d232a; background: #fafbfc; }
  h1 { font-size: 1.2rem; margin: 0 0 .25rem; }
  #hub { color: #5b6570; margin-bottom: 1rem; }
  code, td.id { font-family: ui-monospace, monospace; }
  table { border-collapse: collapse; background: #fff; }
  th, td { padding: .35rem .7rem; border-bottom: 1px solid #e3e7eb; text-align: right; white-space: nowrap; }
  th { background: #eef1f4; font-weight: 600; }
  th:first-child, td:first-child, td.state, td.path { text-align: left; }
  td.path.direct { color: #16794a; } td.path.relay { color: #a15c00; } td.path.mixed { color: #2f5fb3; }
  #empty { color: #5b6570; padding: .5rem 0; }
  #error { color: #b3261e; }
</style>
</head>
<body>
<h1>iroh hub</h1>
<div id="hub">loading…</div>
<table>
<thead><tr><th>Spoke node id</th><th>State</th><th>Path</th><th>RTT</th><th>Events in / out</th><th>Bytes in / out</th><th>Events/s in / out</th><th>Unacked</th><th>Reconnects</th><th>Last seen</th></tr></thead>
<tbody id="spokes"></tbody>
</table>
<div id="empty" hidden>No spokes connected.</div>
<div id="error"></div>
<script>
const $ = (id) => document.getElementById(id)
const bytes = (n) => (n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB')
const ago = (t, now) => (t === null ? '–' : Math.max(0, (now - t) / 1000).toFixed(1) + ' s ago')
function cell(row, text, cls) {
  const td = row.insertCell()
  td.textContent = text
  if (cls) td.className = cls
}
async function refresh() {
  try {
    const res = await fetch('stats.json', { cache: 'no-store' })
    if (!res.ok) throw new Error('HTTP ' + res.status)
    const stats = await res.json()
    const now = Date.now()
    const spokes = Object.values(stats.spokes).sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))
    $('hub').textContent = 'hub ' + stats.nodeId + ' · ' + stats.state + ' · ' + spokes.length + ' spoke' + (spokes.length === 1 ? '' : 's')
    const body = document.createElement('tbody')
    body.id = 'spokes'
    for (const s of spokes) {
      const row = body.insertRow()
      row.dataset.nodeId = s.nodeId
      cell(row, s.nodeId.slice(0, 16) + '…', 'id')
      row.cells[0].title = s.nodeId
      cell(row, s.state, 'state')
      cell(row, s.pathType, 'path ' + s.pathType)
      cell(row, s.rttMs === null ? '–' : s.rttMs.toFixed(2) + ' ms', 'rtt')
      cell(row, s.eventsIn + ' / ' + s.eventsOut, 'events')
      cell(row, bytes(s.bytesIn) + ' / ' + bytes(s.bytesOut), 'bytes')
      cell(row, s.eventsInPerSecond.toFixed(1) + ' / ' + s.eventsOutPerSecond.toFixed(1), 'rate')
      cell(row, s.unackedEvents + ' (' + bytes(s.unackedBytes) + ')', 'unacked')
      cell(row, String(s.reconnects), 'reconnects')
      cell(row, ago(s.lastSeen, now), 'seen')
    }
    $('spokes').replaceWith(body)
    $('empty').hidden = spokes.length > 0
    $('error').textContent = ''
    document.body.dataset.updated = String(now)
  } catch (err) {
    $('error').textContent = 'The hub does not answer: ' + err.message
  }
}
refresh()
setInterval(refresh, 1000)
</script>
</body>
</html>
`

/** Serves `hub`'s status; resolves with `{ host, port, url, close() }` once listening. */
function serveStatus(hub, { port, host }, onClose) {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    let type
    let body
    try {
      if (path === '/metrics') [type, body] = [CONTENT_TYPE, hub.metrics()]
      else if (path === '/stats.json') [type, body] = ['application/json', JSON.stringify(hub.stats())]
      else if (path === '/' || path === '/index.html') [type, body] = ['text/html; charset=utf-8', PAGE]
      else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
        return
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err?.message ?? err}\n`)
      return
    }
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  })
  // Like the hub's sockets when unref'd: a status page open in a browser must not hold the process.
  server.on('connection', (socket) => socket.unref())
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      server.unref()
      const bound = server.address()
      let closing = null
      const handle = {
        host: bound.address,
        port: bound.port,
        url: `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}/`,
        close() {
          closing ??= new Promise((done) => {
            server.close(() => done())
            server.closeAllConnections()
            onClose(handle)
          })
          return closing
        },
      }
      resolve(handle)
    })
  })
}

module.exports = { serveStatus }
