'use strict'

// An event as it travels between a target and its peer, `{ type, detail }`: the check
// `dispatchEvent` makes of what it is given, the text a frame carries, and the rule that an
// absent `detail` is `null`, on both the sending and the receiving side.

const { invalidArgument } = require('./errors.js')

/** Throws unless `event` looks like an Event (an object with a string `type`). */
function checkEvent(event) {
  if (!event || typeof event.type !== 'string') {
    throw invalidArgument('dispatchEvent expects an Event, e.g. new CustomEvent(type, { detail })')
  }
}

/** The `detail` an event carries on the wire and arrives with: `null` when absent. */
function detailOf(event) {
  return event.detail === undefined ? null : event.detail
}

/** The `stringify` of target options: the serializer's, or JSON's. */
function stringifierOf(options) {
  return options?.serializer?.stringify ?? JSON.stringify
}

/**
 * The checked `{ type, detail }` text of an event to send, `detail` null when absent: the
 * one rule every path that writes a frame follows.
 */
function eventText(stringify, event) {
  checkEvent(event)
  const text = stringify({ type: event.type, detail: detailOf(event) })
  if (typeof text !== 'string') throw invalidArgument('serializer.stringify must return a string')
  return text
}

/** Whether a parsed frame is an event: an object with a string `type`. */
function isEvent(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && typeof value.type === 'string'
}

module.exports = { checkEvent, detailOf, stringifierOf, eventText, isEvent }
