// Cancelable `touchpoint:*` events on document, through which the page watches and vetoes what
// Touchpoint does (docs/embedding.md). Returns false when a listener called preventDefault().

export function emit(name, detail) {
  return document.dispatchEvent(new CustomEvent('touchpoint:' + name, { detail: detail, cancelable: true }));
}
