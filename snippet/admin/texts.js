// The few words the console's scripts write themselves, in the page's language
// (<html lang="de"> or "en"); the pages' own texts come from the server.
const TEXTS = {
  en: {
    day: 'Day',
    conversions: 'Conversions',
    rate: 'Conversion rate',
    chartLabel: (what, labels, from, until) =>
      `Line chart: ${what} of ${labels.join(', ')} per day, ${from} to ${until}. The table lists the numbers.`,
    editorHint: 'Esc then Tab leaves the editor; Ctrl-Space completes a key; Ctrl-Shift-M lists the problems.',
    noProblems: 'No problems found.',
    problems: (n) => (n === 1 ? '1 problem' : `${n} problems`),
    at: (line, column) => (column ? `Line ${line}, column ${column}` : `Line ${line}`),
    cannotCheck: (why) => `Could not check the file (${why}); it will be checked again on saving.`,
  },
  de: {
    day: 'Tag',
    conversions: 'Conversions',
    rate: 'Conversion-Rate',
    chartLabel: (what, labels, from, until) =>
      `Liniendiagramm: ${what} von ${labels.join(', ')} je Tag, ${from} bis ${until}. Die Tabelle nennt die Zahlen.`,
    editorHint: 'Esc, dann Tab verlässt den Editor; Strg-Leertaste ergänzt einen Schlüssel; Strg-Umschalt-M listet die Probleme.',
    noProblems: 'Keine Probleme gefunden.',
    problems: (n) => (n === 1 ? '1 Problem' : `${n} Probleme`),
    at: (line, column) => (column ? `Zeile ${line}, Spalte ${column}` : `Zeile ${line}`),
    cannotCheck: (why) => `Die Datei konnte nicht geprüft werden (${why}); beim Speichern wird sie erneut geprüft.`,
  },
};

/** The texts for a language tag such as "de-AT"; English for anything else. */
export function text(lang) {
  return TEXTS[String(lang).slice(0, 2).toLowerCase()] || TEXTS.en;
}
