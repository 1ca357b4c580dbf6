'use strict'

// hub.stats() in Prometheus's text exposition format (version 0.0.4): one family per
// figure, a HELP and a TYPE line each, one sample per spoke labelled with its node id.
// Prometheus wants base units, so the RTT is in seconds and the times are Unix seconds.

/** The Content-Type Prometheus expects for this format. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const seconds = (ms) => (ms === null ? null : ms / 1000)

/** `[name, type, help, value of a spoke's figures]`; a null value leaves its sample out. */
const FAMILIES = [
  ['iroh_hub_spoke_info', 'gauge', 'A connected spoke: 1, with its state, path type and whether it acknowledges and was dialed by the hub.', () => 1],
  ['iroh_hub_spoke_rtt_seconds', 'gauge', 'Round trip time of the selected path.', (s) => seconds(s.rttMs)],
  ['iroh_hub_spoke_received_events_total', 'counter', 'Events from the spoke delivered to the listeners.', (s) => s.eventsIn],
  ['iroh_hub_spoke_sent_events_total', 'counter', 'Events dispatched or broadcast to the spoke.', (s) => s.eventsOut],
  ['iroh_hub_spoke_received_bytes_total', 'counter', 'Payload bytes of the frames received from the spoke.', (s) => s.bytesIn],
  ['iroh_hub_spoke_sent_bytes_total', 'counter', 'Payload bytes of the frames sent to the spoke, resends included.', (s) => s.bytesOut],
  ['iroh_hub_spoke_received_events_per_second', 'gauge', 'Events received per second over the last 10 s (see PeerStats.rateWindowMs).', (s) => s.eventsInPerSecond],
  ['iroh_hub_spoke_sent_events_per_second', 'gauge', 'Events sent per second over the last 10 s (see PeerStats.rateWindowMs).', (s) => s.eventsOutPerSecond],
  ['iroh_hub_spoke_unacked_events', 'gauge', 'Events sent to the spoke or waiting for it that it has not acknowledged.', (s) => s.unackedEvents],
  ['iroh_hub_spoke_unacked_bytes', 'gauge', 'Bytes of the events the spoke has not acknowledged.', (s) => s.unackedBytes],
  ['iroh_hub_spoke_buffered_bytes', 'gauge', 'Bytes handed over for the spoke and not yet taken by QUIC.', (s) => s.bufferedBytes],
  ['iroh_hub_spoke_reconnects_total', 'counter', 'Connections of the spoke after its first, while the hub remembered it.', (s) => s.reconnects],
  ['iroh_hub_spoke_connected_timestamp_seconds', 'gauge', 'When the live connection came, in Unix seconds.', (s) => seconds(s.connectedAt)],
  ['iroh_hub_spoke_last_seen_timestamp_seconds', 'gauge', 'When the spoke was last heard from, in Unix seconds.', (s) => seconds(s.lastSeen)],
]

const escapeHelp = (text) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const escapeLabel = (text) => String(text).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

function sampleValue(x) {
  if (Number.isNaN(x)) return 'NaN'
  if (x === Number.POSITIVE_INFINITY) return '+Inf'
  if (x === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(x)
}

function labels(pairs) {
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`
}

/** `stats`: what hub.stats() returns. */
function prometheusText(stats) {
  const spokes = Object.values(stats.spokes)
  const lines = ['# HELP iroh_hub_spokes Spokes connected to the hub now.', '# TYPE iroh_hub_spokes gauge', `iroh_hub_spokes ${spokes.length}`]
  for (const [name, type, help, figureOf] of FAMILIES) {
    lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
    for (const s of spokes) {
      const value = figureOf(s)
      if (value === null || value === undefined) continue
      const pairs = [['node_id', s.nodeId]]
      if (name === 'iroh_hub_spoke_info') pairs.push(['state', s.state], ['path', s.pathType], ['acked', s.acked], ['dialed', s.dialed])
      lines.push(`${name}${labels(pairs)} ${sampleValue(value)}`)
    }
  }
  return `${lines.join('\n')}\n`
}

module.exports = { prometheusText, CONTENT_TYPE }
