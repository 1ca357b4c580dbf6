'use strict'

// The browser bundle's node:crypto: the one function lib/ uses.

function randomBytes(n) {
  const bytes = Buffer.alloc(n)
  globalThis.crypto.getRandomValues(bytes)
  return bytes
}

module.exports = { randomBytes }
