// remem's web UI: progressive behaviour only; every page works without it.
"use strict";

// A button with data-confirm asks before its form is sent.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});

// Upload progress for the import form (htmx reports the request's upload progress).
document.addEventListener("htmx:xhr:progress", (event) => {
  const bar = document.getElementById("upload-progress");
  if (bar && event.detail.lengthComputable) {
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  }
});

// Moving a range input shows its value in the <output> named by its data-shows.
document.addEventListener("input", (event) => {
  const input = event.target;
  if (input.dataset && input.dataset.shows) {
    const shown = document.getElementById(input.dataset.shows);
    if (shown) shown.textContent = input.value;
  }
});

// An answer that is not a page (the server's JSON error, e.g. an upload over its size
// limit) is shown as text in the place the page would have gone, never as markup.
document.addEventListener("htmx:beforeSwap", (event) => {
  const request = event.detail.xhr;
  const type = request.getResponseHeader("content-type") || "";
  if (type.startsWith("text/html")) return;
  event.detail.shouldSwap = false;
  let message = `The server refused this (HTTP ${request.status}).`;
  try {
    message = JSON.parse(request.responseText).error.message || message;
  } catch (error) {
    // not JSON either: keep the status line
  }
  const box = document.createElement("p");
  box.className = "panel problem";
  box.setAttribute("role", "alert");
  box.textContent = message;
  event.detail.target.replaceChildren(box);
});

// A request that never got an answer (server stopped, network down) says so.
document.addEventListener("htmx:sendError", (event) => {
  const box = document.createElement("p");
  box.className = "panel problem";
  box.setAttribute("role", "alert");
  box.textContent = "The server did not answer: is remem still running?";
  event.detail.target.replaceChildren(box);
});
