// The review page, live: the overview arrives as server-sent events (/events); when the journal changed, the
// gallery or failure list on screen is fetched again as HTML (escaped by the server) and swapped in place.
// No framework and no build step; text goes in with textContent, never as markup.
"use strict";

(function () {
  const state = document.getElementById("live-state");
  let changes = null;
  let fetching = false;
  let again = false;

  function show(value) {
    return value === null || value === undefined ? "–" : String(value);
  }

  function fill(data) {
    document.querySelectorAll("[data-field]").forEach(function (element) {
      element.textContent = show(data[element.dataset.field]);
    });
    document.querySelectorAll("[data-value-field]").forEach(function (element) {
      element.value = Number(data[element.dataset.valueField] || 0);
    });
    const paused = document.getElementById("paused");
    if (paused) {
      const items = data.paused.length ? data.paused : [null];
      paused.replaceChildren(...items.map(function (reason) {
        const item = document.createElement("li");
        item.textContent = reason === null ? "no: submissions flow" : reason;
        if (reason === null) item.className = "none";
        return item;
      }));
    }
    const inboxes = document.getElementById("inboxes");
    if (inboxes) {
      inboxes.replaceChildren(...data.inboxes.map(function (row) {
        const line = document.createElement("tr");
        ["inbox", "queued", "done", "failed"].forEach(function (key) {
          const cell = document.createElement("td");
          cell.textContent = show(row[key]);
          line.appendChild(cell);
        });
        return line;
      }));
    }
  }

  // A change that arrives while a fetch is under way is fetched after it, never dropped.
  async function refresh() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      do {
        again = false;
        for (const section of document.querySelectorAll("[data-live-url]")) {
          const answer = await fetch(section.dataset.liveUrl, { credentials: "same-origin", cache: "no-store" });
          if (answer.ok) section.innerHTML = await answer.text();
        }
      } while (again);
    } finally {
      fetching = false;
    }
  }

  const events = new EventSource("/events");
  events.addEventListener("overview", function (event) {
    const data = JSON.parse(event.data);
    fill(data);
    // The first event of a stream (a new page, or a reconnect) may already know of changes the page missed.
    if (changes === null || data.changes !== changes) refresh();
    changes = data.changes;
    document.body.dataset.live = "on";
    if (state) state.textContent = "live";
  });
  events.addEventListener("error", function () {
    changes = null; // the next stream counts from its own start
    document.body.dataset.live = "off";
    if (state) state.textContent = "reconnecting…";
  });
})();
