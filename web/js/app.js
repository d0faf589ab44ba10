// Postino dashboard behaviour that htmx does not cover. Kept small; the
// pages work without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A failed htmx request says so, in words, instead of doing nothing.
  document.body.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    const message =
      status === 403
        ? "You cannot do that, or this page has expired. Reload it and try again."
        : status === 404
          ? "That no longer exists. Reload the page to see the current state."
          : "Something went wrong; nothing was changed. Try again in a moment.";
    showToast(message);
  });
  document.body.addEventListener("htmx:sendError", () => {
    showToast("Postino cannot be reached. Check your connection and try again.");
  });
  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", (event) => {
    document.querySelectorAll("details.user-menu[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
});

function showToast(message) {
  const toast = document.createElement("div");
  toast.className = "alert alert-error toast";
  toast.setAttribute("role", "alert");
  toast.textContent = message;
  document.body.appendChild(toast);
  setTimeout(() => toast.remove(), 6000);
}

// The campaign preview's width: desktop or phone. The choice lives on the
// pane, so it survives htmx swapping the preview inside it.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-preview-width]");
  if (!button) return;
  const pane = button.closest("#preview-pane");
  if (!pane) return;
  pane.dataset.width = button.dataset.previewWidth;
  pane.querySelectorAll("[data-preview-width]").forEach((b) => {
    b.setAttribute("aria-pressed", String(b === button));
  });
});

// Scheduling: a datetime-local input has no time zone, so say which one
// the browser means, for the chosen date (daylight saving may differ from
// today's). Without this the server reads the time as UTC.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-schedule]");
  if (!form) return;
  const local = form.elements.namedItem("send_at").value;
  const when = new Date(local);
  if (!Number.isNaN(when.getTime())) {
    form.elements.namedItem("tz_offset").value = String(when.getTimezoneOffset());
  }
});

// Forms that cannot be undone (deleting) ask first; without JavaScript they
// submit directly, as a plain form would.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// A search form sends only the conditions that are set, so the address htmx
// puts in the history reads like the links the page itself makes.
document.addEventListener("htmx:configRequest", (event) => {
  const form = event.detail.elt;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-drop-empty")) return;
  for (const field of form.elements) {
    if (field.name && String(field.value).trim() === "") delete event.detail.parameters[field.name];
  }
});

// The subscribers table: one box ticks the whole page, and deleting the
// ticked rows asks first (without JavaScript the form still works).
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all || !all.form) return;
  all.form.querySelectorAll('input[name="ids"]').forEach((box) => {
    box.checked = all.checked;
  });
});
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-bulk]");
  if (!form || form.elements.namedItem("action").value !== "delete") return;
  const ticked = form.querySelectorAll('input[name="ids"]:checked').length;
  if (ticked === 0) return;
  const who = ticked === 1 ? "1 subscriber" : `${ticked} subscribers`;
  if (!window.confirm(`Delete ${who} with everything Postino holds on them? This cannot be undone.`)) {
    event.preventDefault();
  }
});

// An upload larger than the server accepts is refused before it is sent:
// the server would refuse it too, but only after the browser started
// sending it, which for a large file is a long wait for an error.
document.addEventListener("submit", (event) => {
  const input = event.target.querySelector("input[type=file][data-max-bytes]");
  if (!input || !input.files || input.files.length === 0) return;
  const limit = Number(input.dataset.maxBytes);
  if (!(limit > 0) || input.files[0].size <= limit) return;
  event.preventDefault();
  input.setAttribute("aria-invalid", "true");
  const error = document.getElementById(input.getAttribute("aria-describedby"));
  if (error) error.textContent = input.dataset.tooLarge;
});

// Copy buttons: `data-copy` names the element whose text to copy, such as
// a DNS record or a new API token. The clipboard API needs a secure page
// (HTTPS or localhost); elsewhere the text is selected for copying by hand.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const done = (label) => {
    const original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = label;
    setTimeout(() => {
      button.textContent = original;
    }, 2000);
  };
  const select = () => {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    done("Selected: press Ctrl+C");
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent.trim()).then(() => done("Copied"), select);
  } else {
    select();
  }
});
