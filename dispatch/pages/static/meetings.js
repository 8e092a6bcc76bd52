// The print layout of a joint meeting (联席会议): the button opens the browser's print dialog
// (or "save as PDF"); the page's print CSS (meetings.css) lays out A4.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector("[data-testid=print]");
  if (button) button.addEventListener("click", () => window.print());
});
