// The rule editor: CodeMirror 6 with a stream highlighter for the rule language and server-side checking.
// Bundled by build.mjs into dashboard/static/dashboard/vendor/editor.min.js as window.AscepEditor.
// The words come from the page (the server renders core/cep/rules' own lists), so they cannot drift.
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, StreamLanguage, syntaxHighlighting } from "@codemirror/language";
import { linter, lintGutter } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import {
  drawSelection, EditorView, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers,
} from "@codemirror/view";
import { highlightCode, tagHighlighter, tags } from "@lezer/highlight";

// Classes, not inline colours: app.css styles them, and a strict style-src needs no generated rules for them.
const highlighter = tagHighlighter([
  { tag: tags.keyword, class: "rl-keyword" },
  { tag: tags.function(tags.variableName), class: "rl-function" },
  { tag: tags.string, class: "rl-string" },
  { tag: tags.number, class: "rl-number" },
  { tag: tags.unit, class: "rl-duration" },
  { tag: tags.comment, class: "rl-comment" },
  { tag: tags.operator, class: "rl-operator" },
  { tag: tags.propertyName, class: "rl-field" },
  { tag: tags.typeName, class: "rl-signal" },
  { tag: tags.variableName, class: "rl-name" },
  { tag: tags.invalid, class: "rl-invalid" },
]);

// The patterns of core/cep/rules/lexer.py's _TOKEN, in its order (a duration before a number: 30s is one token).
const DURATION = /^\d+(?:ms|s|m|h|d)(?![A-Za-z0-9_])/;
const NUMBER = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z_])/;
const STRING = /^"(?:[^"\\\n]|\\["\\])*"/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;
const OPERATOR = /^(?:>=|<=|==|!=|[-+*/(),.{}?<>])/;

function ruleLanguage({ keywords, functions }) {
  const keywordSet = new Set(keywords.map((word) => word.toUpperCase()));
  const functionSet = new Set(functions);
  return StreamLanguage.define({
    name: "ascep-rule",
    startState: () => ({ afterDot: false, afterThen: false }),
    token(stream, state) {
      if (stream.eatSpace()) return null;
      const afterDot = state.afterDot;
      state.afterDot = false;
      if (stream.peek() === "#") {
        stream.skipToEnd();
        return "comment";
      }
      if (stream.match(DURATION)) return "unit";
      if (stream.match(NUMBER)) return "number";
      if (stream.match(STRING)) return "string";
      const word = stream.match(IDENT);
      if (word) {
        const text = word[0];
        if (keywordSet.has(text.toUpperCase()) && !afterDot) {
          state.afterThen = text.toUpperCase() === "THEN";
          return "keyword";
        }
        if (state.afterThen) {
          state.afterThen = false;
          return "typeName"; // the signal's name
        }
        if (afterDot) return "propertyName";
        if (functionSet.has(text) && stream.match(/^\s*\(/, false)) return "variableName.function";
        return "variableName";
      }
      const operator = stream.match(OPERATOR);
      if (operator) {
        state.afterDot = operator[0] === ".";
        return "operator";
      }
      stream.next();
      return "invalid";
    },
    languageData: { commentTokens: { line: "#" } },
  });
}

// The server counts columns in code points (Python strings); CodeMirror counts UTF-16 units.
function offsetOf(doc, line, column) {
  const lineNumber = Math.min(Math.max(line, 1), doc.lines);
  const { from, text } = doc.line(lineNumber);
  let units = 0;
  let points = 1;
  for (const character of text) {
    if (points >= column) break;
    units += character.length;
    points += 1;
  }
  return from + units;
}

// An error marks the word (or character) it points at, so the squiggle sits under what is wrong.
function diagnosticOf(doc, error) {
  const from = offsetOf(doc, error.line, error.column);
  const rest = doc.sliceString(from, doc.lineAt(from).to);
  const word = /^(?:[A-Za-z0-9_.]+|"[^"]*"?|\S)/.exec(rest);
  return { from, to: from + (word ? word[0].length : 0), severity: "error", message: error.message };
}

const theme = EditorView.theme({
  "&": { border: "1px solid var(--line)", borderRadius: "6px", backgroundColor: "var(--panel)", fontSize: "13px" },
  "&.cm-focused": { outline: "2px solid var(--accent)", outlineOffset: "-1px" },
  ".cm-content": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", minHeight: "12rem" },
  ".cm-gutters": { backgroundColor: "var(--bg)", borderRight: "1px solid var(--line)", color: "var(--muted)" },
  ".cm-scroller": { overflow: "auto", maxHeight: "28rem" },
});

/**
 * An editor in `parent`. `check(text)` resolves to the server's errors ([{message, line, column}], from 1),
 * shown as diagnostics; it runs `delay` ms after the last keystroke. `nonce` lets CodeMirror's own <style>
 * elements pass a Content-Security-Policy without 'unsafe-inline'.
 */
function create({ parent, doc = "", nonce = "", language, check, delay = 250, onChange = () => {} }) {
  const extensions = [
    lineNumbers(), highlightActiveLineGutter(), highlightActiveLine(), drawSelection(), history(),
    bracketMatching(), ruleLanguage(language), syntaxHighlighting(highlighter), theme, lintGutter(),
    linter(async (view) => (await check(view.state.doc.toString())).map((e) => diagnosticOf(view.state.doc, e)),
           { delay }),
    keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
    EditorView.updateListener.of((update) => { if (update.docChanged) onChange(update.state.doc.toString()); }),
    EditorView.contentAttributes.of({ "aria-label": "rule text", "data-testid": "rule-editor" }),
  ];
  if (nonce) extensions.push(EditorView.cspNonce.of(nonce));
  const view = new EditorView({ parent, state: EditorState.create({ doc, extensions }) });
  return {
    view,
    getText: () => view.state.doc.toString(),
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    focus: () => view.focus(),
    goTo(line, column) { // where an error points (line and column from 1, as the server counts them)
      const at = offsetOf(view.state.doc, line, column);
      view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
      view.focus();
    },
  };
}

/** Highlighted, read-only text into `element` (the template gallery's previews), with the editor's classes. */
function highlightInto(element, text, language) {
  const tree = ruleLanguage(language).parser.parse(text);
  element.replaceChildren();
  highlightCode(text, tree, highlighter, (piece, classes) => {
    if (!classes) {
      element.append(piece);
      return;
    }
    const span = document.createElement("span");
    span.className = classes;
    span.textContent = piece;
    element.append(span);
  }, () => element.append("\n"));
}

window.AscepEditor = { create, highlightInto };
