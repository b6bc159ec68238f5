// One row of a hex dump: marked bytes in bold (a colour when allowed), the selected one inverse.
// Bytes of the same look are drawn as one piece of text: a frame has hundreds of bytes, and
// every element costs layout time.

import { Text } from 'ink';
import type { HexRow as Row } from '../../debugger/views.js';
import { useColors } from '../theme.js';

export function HexRowText({ label, row, selected, width }: { label: string; row: Row; selected?: number; width: number }) {
  const c = useColors();
  const pieces: { text: string; marked: boolean; selected: boolean }[] = [];
  row.bytes.forEach((b, i) => {
    const marked = !!row.marked[i];
    const sel = selected === i;
    const text = (i === 8 ? '  ' : ' ') + b.toString(16).padStart(2, '0');
    const last = pieces[pieces.length - 1];
    if (last && last.marked === marked && last.selected === sel && !sel) last.text += text;
    else pieces.push({ text, marked, selected: sel });
  });
  const ascii = Array.from(row.bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  const tail = width >= label.length + row.bytes.length * 4 + 4 ? `  ${ascii}` : '';
  if (pieces.length === 1 && !pieces[0]!.marked && !pieces[0]!.selected) {
    return <Text wrap="truncate">{label + pieces[0]!.text + tail}</Text>;
  }
  return (
    <Text wrap="truncate">
      {label}
      {pieces.map((p, i) =>
        p.marked || p.selected ? (
          <Text key={i} bold={p.marked} color={p.marked ? c('yellow') : undefined} inverse={p.selected}>
            {p.text}
          </Text>
        ) : (
          p.text
        ),
      )}
      {tail}
    </Text>
  );
}
