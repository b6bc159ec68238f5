// Colours, or none: NO_COLOR (https://no-color.org) set to anything non-empty removes every colour;
// bold and inverse, which are not colours, still mark the cursor and changes.

import { createContext, useContext } from 'react';

export interface Theme {
  color: boolean;
}

export function themeFromEnv(env: NodeJS.ProcessEnv = process.env): Theme {
  return { color: !(env.NO_COLOR !== undefined && env.NO_COLOR !== '') };
}

export const ThemeContext = createContext<Theme>({ color: true });

/** A colour name when colours are on, else undefined (ink then writes no colour sequence). */
export function useColors(): (name: string) => string | undefined {
  const t = useContext(ThemeContext);
  return (name) => (t.color ? name : undefined);
}
