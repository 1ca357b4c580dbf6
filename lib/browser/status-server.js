'use strict'

// The browser bundle's lib/status-server.js: a page cannot listen on a port.

const { irohError } = require('../errors.js')

function serveStatus() {
  return Promise.reject(irohError('ERR_IROH_UNSUPPORTED', 'the browser build has no hub.serveStatus(): a page cannot listen on a port (use hub.stats() or hub.metrics())'))
}

module.exports = { serveStatus }
