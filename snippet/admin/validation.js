// Validate-as-you-type: the text goes to the console's validation endpoint (the same checks as
// `touchpoint check`), and its problems come back as CodeMirror diagnostics.

const SEVERITIES = new Set(['error', 'warning', 'info', 'hint']);

/** A problem ({line, column, message, severity}, 1-based) as a diagnostic of `doc`. */
export function toDiagnostic(doc, problem) {
  const number = Math.min(Math.max(1, Number(problem.line) || 1), doc.lines);
  const line = doc.line(number);
  const column = Number(problem.column) || 0;
  const from = column > 0 ? Math.min(line.from + column - 1, line.to) : line.from;
  // From the column to the end of the line, or the line break itself on an empty line, so the
  // mark is visible somewhere.
  const to = from < line.to ? line.to : Math.min(from + 1, doc.length);
  return {
    from,
    to: Math.max(from, to),
    severity: SEVERITIES.has(problem.severity) ? problem.severity : 'error',
    message: String(problem.message || ''),
  };
}

/**
 * A lint source posting `{text, path}` as JSON to `url` with the CSRF token, for `linter()`.
 * `report(state)` hears about each round: {checking: true}, then {problems: [...]} or
 * {failed: why}.
 */
export function remoteLinter({ url, path, csrf, report }) {
  let inFlight = null;
  return async (view) => {
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    const doc = view.state.doc;
    report({ checking: true });
    let answer;
    try {
      const response = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
        body: JSON.stringify({ text: doc.toString(), path }),
        signal: controller.signal,
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      answer = await response.json();
    } catch (error) {
      if (controller.signal.aborted) return [];
      report({ failed: error.message || String(error) });
      return [];
    } finally {
      if (inFlight === controller) inFlight = null;
    }
    if (controller.signal.aborted) return [];
    const problems = Array.isArray(answer && answer.problems) ? answer.problems : [];
    report({ problems });
    return problems.map((problem) => toDiagnostic(doc, problem));
  };
}
