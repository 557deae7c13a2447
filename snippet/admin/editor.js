// The rules editor (snippet/admin/README.md): every `<textarea data-editor>` becomes a
// CodeMirror editor with YAML highlighting, line numbers, completion from the rules' JSON Schema
// and validation as you type. The textarea stays in the form, hidden and kept in sync, so the
// form submits as it would without JS, and a page without JS keeps a working textarea.
//
// Works under `default-src 'self'; script-src 'self'; style-src 'self'`: CodeMirror puts its
// styles into constructed style sheets (adoptedStyleSheets), which CSP allows.
import { EditorState } from '@codemirror/state';
import {
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  drawSelection,
} from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import {
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
  defaultHighlightStyle,
  bracketMatching,
} from '@codemirror/language';
import { yaml } from '@codemirror/lang-yaml';
import { linter, lintGutter, lintKeymap } from '@codemirror/lint';
import { autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import './editor.css';
import { schemaCompletion } from './schema-completion.js';
import { remoteLinter } from './validation.js';
import { text } from './texts.js';

const theme = EditorView.theme({
  '&': { border: '1px solid #767676', borderRadius: '4px', backgroundColor: '#fff', fontSize: '0.9rem' },
  '&.cm-focused': { outline: '3px solid #0072B2', outlineOffset: '1px' },
  '.cm-scroller': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace', minHeight: '16rem', maxHeight: '70vh' },
  '.cm-gutters': { backgroundColor: '#f4f4f4', color: '#555', borderRight: '1px solid #ddd' },
  // @codemirror/lint draws its marks with data: SVG images, which `default-src 'self'` blocks
  // (and reports as violations): the same marks in plain CSS instead.
  '.cm-lintRange': { backgroundImage: 'none', textDecoration: 'underline wavy', textDecorationSkipInk: 'none', textUnderlineOffset: '3px' },
  '.cm-lintRange-error': { backgroundImage: 'none', textDecorationColor: '#d11' },
  '.cm-lintRange-warning': { backgroundImage: 'none', textDecorationColor: '#b36b00' },
  '.cm-lintRange-info': { backgroundImage: 'none', textDecorationColor: '#767676' },
  '.cm-lintRange-hint': { backgroundImage: 'none', textDecorationColor: '#66d' },
  '.cm-lint-marker': { content: 'normal', display: 'inline-block', width: '0.8em', height: '0.8em', boxSizing: 'border-box' },
  '.cm-lint-marker-error': { content: 'normal', borderRadius: '50%', backgroundColor: '#f87', border: '2px solid #d11' },
  '.cm-lint-marker-warning': { content: 'normal', backgroundColor: '#e8a200', clipPath: 'polygon(50% 0, 100% 100%, 0 100%)' },
  '.cm-lint-marker-info': { content: 'normal', backgroundColor: '#aaf', border: '2px solid #77e' },
  '.cm-diagnostic-error': { borderLeftColor: '#d11' },
});

let counter = 0;
function ensureId(element, prefix) {
  if (!element.id) element.id = `${prefix}-${++counter}`;
  return element.id;
}

function summarise(t, state) {
  if (state.failed) return t.cannotCheck(state.failed);
  const problems = state.problems;
  if (!problems.length) return t.noProblems;
  const first = problems[0];
  return `${t.problems(problems.length)}. ${t.at(first.line, first.column)}: ${first.message}`;
}

function enhance(textarea) {
  const t = text(document.documentElement.lang || 'en');
  const hint = document.createElement('p');
  hint.className = 'tp-editor-hint';
  hint.id = ensureId(textarea, 'tp-editor') + '-hint';
  hint.textContent = t.editorHint;
  const summary = document.createElement('p');
  summary.className = 'tp-editor-summary';
  summary.id = textarea.id + '-summary';
  summary.setAttribute('role', 'status'); // role=status is aria-live=polite
  summary.setAttribute('aria-live', 'polite');

  let schema = null;
  const schemaUrl = textarea.getAttribute('data-schema-url');
  if (schemaUrl) {
    fetch(schemaUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then((response) => (response.ok ? response.json() : null))
      .then((json) => {
        schema = json;
      })
      .catch(() => {}); // no completion, nothing else lost
  }

  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    indentOnInput(),
    indentUnit.of('  '),
    EditorState.tabSize.of(2),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    bracketMatching(),
    closeBrackets(),
    highlightActiveLine(),
    yaml(),
    autocompletion({ override: [schemaCompletion(() => schema)], icons: false }),
    // Tab indents, as YAML needs; Esc then Tab (or Ctrl-M to toggle) moves focus on instead,
    // so the editor never traps the keyboard (WCAG 2.1.2).
    keymap.of([
      ...closeBracketsKeymap,
      ...defaultKeymap,
      ...historyKeymap,
      ...completionKeymap,
      ...lintKeymap,
      indentWithTab,
    ]),
    theme,
    EditorView.lineWrapping,
    EditorView.contentAttributes.of({
      'aria-describedby': `${hint.id} ${summary.id}`,
      'aria-multiline': 'true',
    }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) textarea.value = update.state.doc.toString();
    }),
  ];
  const label = textarea.labels && textarea.labels[0];
  if (label) {
    extensions.push(EditorView.contentAttributes.of({ 'aria-labelledby': ensureId(label, 'tp-editor-label') }));
  } else if (textarea.getAttribute('aria-label')) {
    extensions.push(EditorView.contentAttributes.of({ 'aria-label': textarea.getAttribute('aria-label') }));
  }
  const validateUrl = textarea.getAttribute('data-validate-url');
  if (validateUrl) {
    const source = remoteLinter({
      url: validateUrl,
      path: textarea.getAttribute('data-path') || textarea.name || '',
      csrf: textarea.getAttribute('data-csrf') || '',
      report: (state) => {
        // Announced only when the outcome changes, not on every pause in typing.
        if (state.checking) return;
        const said = summarise(t, state);
        if (summary.textContent !== said) summary.textContent = said;
      },
    });
    extensions.push(linter(source, { delay: 400 }), lintGutter());
  }

  const view = new EditorView({ doc: textarea.value, extensions });
  textarea.hidden = true;
  textarea.after(hint, view.dom, summary);
  view.dom.classList.add('tp-editor');
  // A click on the textarea's label focuses the editor, as it focused the textarea.
  if (label) label.addEventListener('click', () => view.focus());
  if (textarea.form) {
    textarea.form.addEventListener('submit', () => {
      textarea.value = view.state.doc.toString();
    });
  }
  textarea.touchpointEditor = view; // for tests and pages that script the editor
  return view;
}

function enhanceAll() {
  for (const textarea of document.querySelectorAll('textarea[data-editor]')) {
    if (textarea.touchpointEditor) continue;
    try {
      enhance(textarea);
    } catch (error) {
      console.warn('touchpoint editor:', error);
    }
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', enhanceAll);
} else {
  enhanceAll();
}
