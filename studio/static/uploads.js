// The studio's upload messages: Gradio's page refuses a file over --max-upload-mb itself, with
// "File(s) exceed the maximum allowed size of 50.0 Mb: ...", a file of another type with "Invalid file
// type: NAME. Only image allowed.", and shows the server's refusals as "HTTP 413: <sentence>"; all are
// rewritten as the one sentence the studio says elsewhere. A file put on the canvas that the browser
// cannot show as a picture (the canvas would stay silent) presses a hidden button: the server says why.
(() => {
  if (window.__varEditUploads) return;
  window.__varEditUploads = true;
  const TOO_BIG = /File\(s\) exceed the maximum allowed size of ([\d.]+) ?(\w+)/;
  const NOT_IMAGE = /^Invalid file type: .*\. Only image allowed\.?$/s;
  const STATUS = /^HTTP 41[13]: /;
  const UNITS = { b: 1 / 1048576, kb: 1 / 1024, mb: 1, gb: 1024, tb: 1048576 };  // Gradio's sizes, in MB
  function plain(text) {
    const big = TOO_BIG.exec(text);
    if (big) {
      const mb = parseFloat(big[1]) * (UNITS[big[2].toLowerCase()] || 1);
      return `The file is larger than the ${parseFloat(mb.toFixed(2))} MB this studio accepts `
        + "per upload (--max-upload-mb); send a smaller one.";
    }
    if (NOT_IMAGE.test(text)) return "The file is not an image this app can read; use a PNG, JPEG, WebP or similar.";
    return STATUS.test(text) ? text.replace(STATUS, "") : null;
  }
  function mend(node) {
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const better = plain(t.nodeValue);
      if (better !== null) t.nodeValue = better;
    }
  }
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "characterData") mend(r.target.parentNode || r.target);
      for (const n of r.addedNodes) mend(n.nodeType === Node.TEXT_NODE ? n.parentNode || n : n);
    }
  }).observe(document.documentElement, { childList: true, subtree: true, characterData: true });

  async function isPicture(file) {
    const url = URL.createObjectURL(file), image = new Image();
    try { image.src = url; await image.decode(); return image.naturalWidth > 0; } catch (e) { return false; }
    finally { URL.revokeObjectURL(url); }
  }
  async function check(files) {
    for (const file of files || []) {
      if (await isPicture(file)) continue;
      const button = document.getElementById("canvas-not-image");
      if (button) button.click();
      return;
    }
  }
  const onCanvas = (e) => { const host = document.querySelector("#canvas"); return host && host.contains(e.target); };
  document.addEventListener("change", (e) => { if (onCanvas(e) && e.target.files) check(e.target.files); }, true);
  document.addEventListener("drop", (e) => { if (onCanvas(e) && e.dataTransfer) check(e.dataTransfer.files); }, true);
})();
