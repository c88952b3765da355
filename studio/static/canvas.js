// The studio's page script: reads the canvas's PixiJS scene for the server (see studio/canvas_io.py).
// @NAME@ placeholders are filled in by canvas_io from its constants.
(() => {
  if (window.__varEdit) return;
  const PREFIX = "@PREFIX@", GRID = @GRID@, SAME = @SAME@, MASK_RGB = @MASK_RGB@, MASK_ALPHA = @MASK_ALPHA@;
  const ASK_AGAIN_MS = 1500;  // how long to wait for the server to read a new picture before asking again
  const apps = [];
  const before = globalThis.__PIXI_APP_INIT__;
  globalThis.__PIXI_APP_INIT__ = (app, version) => {
    apps.push(app);
    if (typeof before === "function") before(app, version);
  };

  // The editor's scene: image container, its background layer and the picture's texture.
  function scene() {
    const host = document.querySelector("#canvas");
    const app = apps.find((a) => a.canvas && host && host.contains(a.canvas)
      && !a.canvas.closest(".pixi-target-crop") && a.stage && !a.stage.destroyed);
    if (!app) throw new Error("the canvas's PixiJS application was not found");
    let image = null, background = null;
    const find = (node) => {
      for (const child of node.children || []) {
        if (child.zIndex === -1 && (child.children || []).some((s) => s.texture)) {
          image = node; background = child; return;
        }
        find(child);
        if (image) return;
      }
    };
    find(app.stage);
    const sprites = background ? background.children.filter((s) => s.texture) : [];
    if (sprites.length < 2) return { app, picture: null };
    return { app, image, background, picture: sprites[sprites.length - 1].texture };
  }

  // The picture's pixels (PixiJS reads them premultiplied), on white, as RGBA.
  function pixels(app, texture) {
    const { pixels: px, width, height } = app.renderer.extract.pixels({ target: texture });
    for (let o = 0; o < px.length; o += 4) {
      const white = 255 - px[o + 3];
      px[o] += white; px[o + 1] += white; px[o + 2] += white; px[o + 3] = 255;
    }
    return { px, width, height };
  }

  function fingerprint({ px, width: w, height: h }) {
    const out = [];
    for (let gy = 0; gy < GRID; gy++) {
      const y0 = Math.floor(gy * h / GRID), y1 = Math.max(y0 + 1, Math.floor((gy + 1) * h / GRID));
      for (let gx = 0; gx < GRID; gx++) {
        const x0 = Math.floor(gx * w / GRID), x1 = Math.max(x0 + 1, Math.floor((gx + 1) * w / GRID));
        let r = 0, g = 0, b = 0, n = 0;
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) {
            const o = (y * w + x) * 4;
            r += px[o]; g += px[o + 1]; b += px[o + 2]; n++;
          }
        }
        out.push(Math.round(r / n), Math.round(g / n), Math.round(b / n));
      }
    }
    return out;
  }

  function png(width, height, fill) {
    const canvas = document.createElement("canvas");
    canvas.width = width; canvas.height = height;
    const ctx = canvas.getContext("2d");
    const data = ctx.createImageData(width, height);
    fill(data.data);
    ctx.putImageData(data, 0, 0);
    return canvas.toDataURL("image/png");
  }

  // The layers painted on: one sprite each, drawn at the picture's size.
  function drawLayers(s, W, H) {
    return s.image.children.filter((c) => c !== s.background && (c.children || []).length === 1
      && c.children[0].texture && c.children[0].visible && c.children[0].alpha > 0
      && Math.round(c.children[0].texture.width) === W && Math.round(c.children[0].texture.height) === H);
  }

  function readMask() {
    const s = scene();
    if (!s.picture) return { empty: true };
    const W = Math.round(s.picture.width), H = Math.round(s.picture.height);
    const layers = drawLayers(s, W, H);
    const painted = new Uint8Array(W * H);
    let count = 0;
    for (const layer of layers) {
      const { pixels: px, width, height } = s.app.renderer.extract.pixels({ target: layer.children[0].texture });
      const sx = width / W, sy = height / H;
      for (let y = 0; y < H; y++) {
        const row = Math.min(height - 1, Math.floor(y * sy)) * width;
        for (let x = 0; x < W; x++) {
          if (!painted[y * W + x] && px[(row + Math.min(width - 1, Math.floor(x * sx))) * 4 + 3] > 0) {
            painted[y * W + x] = 1; count++;
          }
        }
      }
    }
    const mask = count ? png(W, H, (d) => {
      for (let i = 0; i < W * H; i++) {
        const v = painted[i] ? 255 : 0;
        d[4 * i] = d[4 * i + 1] = d[4 * i + 2] = v; d[4 * i + 3] = 255;
      }
    }) : null;
    return { mask, width: W, height: H, layers: layers.length, painted: count,
             fingerprint: fingerprint(pixels(s.app, s.picture)) };
  }

  // A copy of a layer's pixels (a canvas), to put back on Undo.
  function copyOf(app, texture) {
    return app.renderer.extract.canvas({ target: texture });
  }

  // Paint `source` (a canvas, or null for nothing) over the whole of a layer's texture.
  function paint(s, source, target, W, H) {
    const first = drawLayers(s, W, H)[0].children[0], Sprite = first.constructor;
    const box = new s.image.constructor();
    let texture = null;
    if (source) {
      texture = first.texture.constructor.from(source, true);
      const sprite = new Sprite(texture);
      sprite.width = W; sprite.height = H;
      box.addChild(sprite);
    }
    s.app.renderer.render({ container: box, target, clear: true });
    box.destroy({ children: true });
    if (texture) texture.destroy(true);
  }

  // One step on the canvas's own history (Gradio's editor keeps it as commands with execute/undo,
  // like its brush strokes): the layers' pixels before and after, so that Undo gives back exactly
  // the mask before the tool, strokes included, and Redo the tool's mask again.
  async function step(s, W, H, after) {
    const textures = drawLayers(s, W, H).map((layer) => layer.children[0].texture);
    const before = textures.map((t) => copyOf(s.app, t));
    const put = (sources) => {
      const now = scene();
      if (!now.picture || now.picture !== s.picture) return;  // another picture since: its own history
      textures.forEach((t, i) => paint(s, sources[i] || null, t, W, H));
      s.app.render();
      maskChanged();
    };
    const command = { name: "VarEditMask", execute: async () => put(after), undo: async () => put(before) };
    const editor = window.editor;
    if (editor && typeof editor.execute_command === "function") await editor.execute_command(command);
    else put(after);
  }

  // A mask the server made (black and white PNG at the canvas's size) drawn into the first layer,
  // in the brush's colour, half see-through; the other layers are wiped. It lies in the layers'
  // own textures, so it lines up with the picture; the brush and eraser can correct it.
  async function writeMask(url) {
    const s = scene();
    if (!s.picture) return "Upload or paste a picture first.";
    const W = Math.round(s.picture.width), H = Math.round(s.picture.height);
    if (!drawLayers(s, W, H).length) return "The canvas has no visible layer to draw the mask on; add a layer and try again.";
    let canvas = null;
    if (url) {
      const image = new Image();
      image.src = url;
      await image.decode();
      if (image.width !== W || image.height !== H) return "The picture on the canvas changed meanwhile; try again.";
      canvas = document.createElement("canvas");
      canvas.width = W; canvas.height = H;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(image, 0, 0);
      const data = ctx.getImageData(0, 0, W, H), d = data.data;
      for (let o = 0; o < d.length; o += 4) {
        const on = d[o] >= 128;
        d[o] = on ? MASK_RGB[0] : 0; d[o + 1] = on ? MASK_RGB[1] : 0; d[o + 2] = on ? MASK_RGB[2] : 0;
        d[o + 3] = on ? MASK_ALPHA : 0;
      }
      ctx.putImageData(data, 0, 0);
    }
    await step(s, W, H, [canvas]);
    return "";
  }

  let lastRead = { picture: null, same: false };
  function readPicture(known) {
    const s = scene();
    if (!s.picture) return { empty: true };
    const p = pixels(s.app, s.picture), print = fingerprint(p);
    let same = false;
    try {
      const k = JSON.parse(known || "null");
      same = !!k && k.width === p.width && k.height === p.height
        && k.fingerprint.every((v, i) => Math.abs(v - print[i]) <= SAME);
    } catch (e) { same = false; }
    lastRead = { picture: s.picture, same };
    if (same) return { same: true };
    return { picture: png(p.width, p.height, (d) => d.set(p.px)), width: p.width, height: p.height };
  }

  function fill(args, read) {
    const t0 = performance.now();
    let payload;
    try { payload = read(); } catch (e) { payload = { error: String((e && e.message) || e) }; }
    payload.ms = Math.round(performance.now() - t0);
    return args.map((v) => (typeof v === "string" && v.startsWith(PREFIX) ? PREFIX + JSON.stringify(payload) : v));
  }

  window.__varEdit = {
    mask: (args) => fill(args, readMask),
    // Draw the mask the server sent (args[0], a PNG data URL; empty: nothing to draw); returns the
    // note (args[1]) as it was, or the sentence saying why the mask could not be drawn.
    writeMask: async (url, note) => {
      if (!url) return note;
      try { return (await writeMask(url)) || note; } catch (e) {
        return "The mask could not be drawn on the canvas (" + String((e && e.message) || e) + "); reload the page.";
      }
    },
    // Clear every layer, as one step that Undo takes back.
    clearMask: async () => {
      try { return await writeMask(null); } catch (e) {
        return "The mask could not be cleared (" + String((e && e.message) || e) + "); reload the page.";
      }
    },
    picture: (args) => fill(args, () => readPicture(args.find((v) => typeof v === "string" && !v.startsWith(PREFIX)))),
    // For tests and curious users: whether the picture on the canvas is the one the server has
    // (checked since it appeared), its size, and how many of its pixels are painted.
    inspect: () => {
      const s = scene(), m = s.picture ? readMask() : { painted: 0, width: 0, height: 0 };
      const settled = !!s.picture && lastRead.picture === s.picture && lastRead.same;
      return { settled, painted: m.painted, width: m.width, height: m.height };
    },
  };

  // The mask may have changed (a stroke ended, a toolbar button, a new picture): tell the server a
  // moment later, through the hidden button, so that it shows which cells the mask will redraw.
  let pending = null;
  function maskChanged() {
    clearTimeout(pending);
    pending = setTimeout(() => {
      const button = document.getElementById("@MASK_CHANGED@");
      if (button) button.click();
    }, 400);
  }
  document.addEventListener("pointerup", (e) => {
    const host = document.querySelector("#canvas");
    if (host && host.contains(e.target)) maskChanged();
  }, true);

  // Every stroke counts: the editor ignores a brush or eraser stroke that starts off the picture (on the
  // margin around it), so such a press is passed on at the nearest point of the picture's edge; the
  // rest of the stroke follows the pointer, clipped to the picture as any stroke is.
  function activeTool() {
    const on = document.querySelector("#canvas button.highlight[title='Brush'], #canvas button.highlight[title='Erase']");
    return on ? on.title : null;
  }
  document.addEventListener("pointerdown", (e) => {
    if (!e.isTrusted || e.button !== 0 || !activeTool()) return;
    const host = document.querySelector("#canvas");
    if (!host || !(e.target instanceof HTMLCanvasElement) || !host.contains(e.target)) return;
    let s;
    try { s = scene(); } catch (err) { return; }
    if (!s.picture || e.target !== s.app.canvas) return;
    const rect = e.target.getBoundingClientRect(), scale = s.app.screen.width / rect.width;
    const b = s.image.getBounds(), gx = (e.clientX - rect.left) * scale, gy = (e.clientY - rect.top) * scale;
    const inset = Math.min(0.5, b.width / 2, b.height / 2);
    const x = Math.min(Math.max(gx, b.x + inset), b.x + b.width - inset);
    const y = Math.min(Math.max(gy, b.y + inset), b.y + b.height - inset);
    if (x === gx && y === gy) return;  // on the picture: the editor takes it as it is
    e.stopPropagation();
    e.preventDefault();
    const at = { bubbles: true, cancelable: true, pointerId: e.pointerId, pointerType: e.pointerType,
                 isPrimary: e.isPrimary, clientX: rect.left + x / scale, clientY: rect.top + y / scale };
    e.target.dispatchEvent(new PointerEvent("pointermove", { ...at, buttons: 0 }));
    e.target.dispatchEvent(new PointerEvent("pointerdown", { ...at, button: 0, buttons: 1 }));
  }, true);

  // Keyboard shortcuts (docs/studio.md), where no text field has the focus: [ and ] make the brush (or the
  // eraser) smaller and larger, B the brush, E the eraser, Ctrl+Z undo, Ctrl+Shift+Z or Ctrl+Y redo. Each
  // presses the canvas's own button, or moves its own size slider.
  const SIZE_STEP = 1.25;
  function press(title) {
    const button = document.querySelector(`#canvas button[aria-label='${title}'], #canvas button[title='${title}']`);
    if (!button || button.disabled) return false;
    button.click();
    return true;
  }
  async function resize(factor) {
    const button = document.querySelector("#canvas button[title$=' Size']");  // the brush's or the eraser's
    if (!button) return;
    let slider = document.querySelector("#canvas input[type=range]");
    const opened = !slider;
    if (opened) {
      button.click();
      for (let i = 0; i < 20 && !slider; i++) {
        await new Promise((r) => setTimeout(r, 25));
        slider = document.querySelector("#canvas input[type=range]");
      }
      if (!slider) return;
    }
    const low = Number(slider.min) || 1, high = Number(slider.max) || 100, now = Number(slider.value);
    const scaled = factor > 1 ? Math.max(now + 1, now * factor) : Math.min(now - 1, now * factor);
    const next = Math.min(high, Math.max(low, Math.round(scaled)));
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(slider, String(next));
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    slider.dispatchEvent(new Event("change", { bubbles: true }));
    if (opened) {  // a press elsewhere closes the size slider
      for (const type of ["pointerdown", "mousedown", "pointerup", "mouseup", "click"]) {
        document.body.dispatchEvent(new (type.startsWith("pointer") ? PointerEvent : MouseEvent)(type, { bubbles: true }));
      }
    }
  }
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    const typing = t && (t.isContentEditable || /^(TEXTAREA|SELECT)$/.test(t.tagName)
      || (t.tagName === "INPUT" && !/^(range|checkbox|radio|button|file)$/.test(t.type)));
    if (e.altKey || typing) return;
    if (!document.querySelector("#canvas button[title$=' Size']")) return;  // no picture yet
    const key = e.key.toLowerCase(), ctrl = e.ctrlKey || e.metaKey;
    let done = false;
    if (ctrl && key === "z") done = press(e.shiftKey ? "Redo" : "Undo");
    else if (ctrl && key === "y") done = press("Redo");
    else if (ctrl) return;
    else if (e.key === "[" || e.key === "]") { resize(e.key === "]" ? SIZE_STEP : 1 / SIZE_STEP); done = true; }
    else if (key === "b") done = press("Brush");
    else if (key === "e") done = press("Erase");
    if (done) e.preventDefault();
  });

  // A new picture on the canvas (a new texture): tell the server, through the hidden button, until
  // it has read it (a click right after the page shows, before Gradio listens, is lost: ask again).
  let shown = null, asked = 0;
  setInterval(() => {
    let picture = null;
    try { picture = scene().picture; } catch (e) { return; }
    if (!picture || picture === shown) { shown = picture; return; }
    if (lastRead.picture === picture) { shown = picture; return; }
    const button = document.getElementById("@CHANGED@");
    if (!button || performance.now() - asked < ASK_AGAIN_MS) return;
    asked = performance.now();
    button.click();
    maskChanged();
  }, 300);

  // Candidates much wider than tall (panoramas) take a whole row of the gallery (the page's CSS).
  setInterval(() => {
    for (const img of document.querySelectorAll("#candidates img")) {
      if (img.complete && img.naturalHeight) img.classList.toggle("wide", img.naturalWidth > 2 * img.naturalHeight);
    }
  }, 500);

  // Runs: bring the live preview into view when a run starts, where it is out of sight.
  document.addEventListener("click", (e) => {
    if (!e.target.closest || !e.target.closest("button[id^='run-']")) return;
    const live = document.getElementById("live-preview");
    if (!live) return;
    const box = live.getBoundingClientRect();
    if (box.top < 0 || box.top > window.innerHeight - 80) live.scrollIntoView({ block: "start", behavior: "smooth" });
  }, true);
})();
