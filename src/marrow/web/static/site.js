// Progressive enhancement: without JavaScript, "More rows" is a link and search is a form.
const root = document.currentScript?.dataset.root ?? "";
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a.more-link");
  if (!link) return;
  event.preventDefault();
  const response = await fetch(link.href);
  if (!response.ok) { link.textContent = "Could not load more rows"; return; }
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();
  link.closest("p.more").replaceWith(...holder.childNodes);
});

const box = document.querySelector(".search input");
const list = document.getElementById("suggestions");
let pending;
box?.addEventListener("input", () => {
  clearTimeout(pending);
  pending = setTimeout(async () => {
    if (!box.value.trim()) return;
    const response = await fetch(root + "/complete.json?q=" + encodeURIComponent(box.value));
    if (!response.ok) return;
    const { suggestions } = await response.json();
    list.replaceChildren(...suggestions.map((s) => Object.assign(document.createElement("option"), { value: s })));
  }, 120);
});
