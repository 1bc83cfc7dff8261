// Foco console: progressive enhancement only. Every page works without this
// file; with it, copy buttons copy and the rule editor previews as you type.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  if (!input) return;
  const done = () => {
    const label = button.textContent;
    button.textContent = button.dataset.copied || label;
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, () => { input.select(); });
  } else {
    input.select();
    try { document.execCommand("copy"); done(); } catch (_) { /* selected for the user */ }
  }
});

const form = document.getElementById("rule-form");
if (form && form.dataset.previewUrl) {
  const panel = document.getElementById("preview");
  let timer = null;
  let sequence = 0;
  const refresh = () => {
    const mine = ++sequence;
    const body = new URLSearchParams(new FormData(form));
    body.set("action", "preview");
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        if (html !== null && mine === sequence) {
          panel.innerHTML = html;
          panel.dataset.refreshed = String(mine);
        }
      })
      .catch(() => { /* the Preview button still works */ });
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  // The transliteration offer inside the preview: switch the radio, refresh.
  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button[value='use_gsm7']");
    if (!button) return;
    event.preventDefault();
    const gsm7 = form.querySelector("input[name='encoding'][value='gsm7']");
    if (gsm7) gsm7.checked = true;
    refresh();
  });
}
