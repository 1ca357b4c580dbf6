'use strict'

// The browser bundle's node:events: a page's EventTarget warns about no listener count,
// so raising the limit is nothing to do.

function setMaxListeners() {}

module.exports = { setMaxListeners }
