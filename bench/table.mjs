/** A markdown table: the first row is the head. */
export function markdownTable(rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(rows[0]), line(rows[0].map(() => '---')), ...rows.slice(1).map(line)].join('\n')
}
