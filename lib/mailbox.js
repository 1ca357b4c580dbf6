'use strict'

// One wake-up channel from native code per JS thread (src/mailbox.rs). A native call that
// reports later (a pump's batches, a close, path changes) takes an address made here, and
// all it reports arrives through one threadsafe function: libuv looks at every one of
// those on each wake-up, and one per connection made a hub with 1,000 spokes slow to wake.

const binding = require('./native.js')

const receivers = new Map()
let last = 0

binding.openMailbox((to, mail) => {
  const receiver = receivers.get(to)
  if (receiver !== undefined) receiver(mail)
})

/** A mailbox address for `receiver(mail)`, kept until `forget(address)`. */
function address(receiver) {
  do last = last >= 0xfffffffe ? 1 : last + 1
  while (receivers.has(last))
  receivers.set(last, receiver)
  return last
}

/** Drops an address: what still arrives for it is ignored. */
function forget(to) {
  receivers.delete(to)
}

/**
 * Calls `open(address)` with a new address for `receiver`, and forgets the address if
 * `open` throws or once `isLast(mail)` says the last message came.
 */
function openWith(receiver, isLast, open) {
  const to = address((mail) => {
    if (isLast(mail)) forget(to)
    receiver(mail)
  })
  try {
    return open(to)
  } catch (err) {
    forget(to)
    throw err
  }
}

/** How many addresses are live (for tests: nothing may leak). */
const liveAddresses = () => receivers.size

module.exports = { address, forget, openWith, liveAddresses }
