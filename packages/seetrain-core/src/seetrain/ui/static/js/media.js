// Image, audio and text panels: one per media key, with a slider over the steps it was logged at.

import {h} from "./dom.js";
import {api, mediaSrc} from "./api.js";

// on the team server the file is fetched with the API key and shown from a blob URL
function setSrc(el, url) {
  mediaSrc(url).then((src) => { if (src) el.src = src; }).catch(() => { el.dataset.error = "1"; });
}

const KIND_LABEL = {image: "Images", audio: "Audio", text: "Text"};

export class MediaPanel {
  constructor({run, key, kind}) {
    this.run = run;
    this.key = key;
    this.kind = kind;
    this.byStep = new Map();
    this.steps = [];
    this.pos = 0;
    this.timer = null;

    this.slider = h("input", {type: "range", class: "step-slider", min: 0, max: 0, step: 1, value: 0,
      "aria-label": `Step of ${key}`});
    this.slider.addEventListener("input", () => this.show(Number(this.slider.value)));
    this.stepLabel = h("span", {class: "step-label"});
    this.playBtn = h("button", {type: "button", class: "icon-btn play", title: "Play through the steps",
      onclick: () => this.togglePlay()}, "▶");
    this.prevBtn = h("button", {type: "button", class: "icon-btn", title: "Previous step",
      onclick: () => this.show(this.pos - 1)}, "‹");
    this.nextBtn = h("button", {type: "button", class: "icon-btn", title: "Next step",
      onclick: () => this.show(this.pos + 1)}, "›");
    this.body = h("div", {class: `media-body media-${kind}`});
    this.el = h("div", {class: "media-card card", dataset: {key, kind}},
      h("div", {class: "chart-head"},
        h("span", {class: "chart-title"}, key),
        h("span", {class: "badge kind"}, KIND_LABEL[kind] || kind)),
      this.body,
      h("div", {class: "slider-row"}, this.prevBtn, this.playBtn, this.nextBtn, this.slider, this.stepLabel));
  }

  async load() {
    const data = await api.media(this.run.id, this.key);
    this.byStep = new Map();
    for (const item of data.items) {
      if (!this.byStep.has(item.step)) this.byStep.set(item.step, []);
      this.byStep.get(item.step).push(item);
    }
    const atEnd = this.pos >= this.steps.length - 1;
    this.steps = data.steps;
    this.slider.max = String(Math.max(0, this.steps.length - 1));
    this.slider.disabled = this.steps.length < 2;
    this.show(atEnd ? this.steps.length - 1 : this.pos, true);
  }

  /** New steps of a live run: reload when the key has more steps than shown. */
  async refresh(steps) {
    if (steps && steps.length !== this.steps.length) await this.load();
  }

  show(pos, force = false) {
    if (!this.steps.length) { this.body.replaceChildren(h("div", {class: "muted"}, "nothing logged yet")); return; }
    pos = Math.max(0, Math.min(this.steps.length - 1, pos));
    if (pos === this.pos && !force && this.body.childElementCount) return;
    this.pos = pos;
    this.slider.value = String(pos);
    const step = this.steps[pos];
    this.el.dataset.step = String(step);
    this.stepLabel.textContent = `step ${step}  ·  ${pos + 1}/${this.steps.length}`;
    this.prevBtn.disabled = pos === 0;
    this.nextBtn.disabled = pos === this.steps.length - 1;
    const items = this.byStep.get(step) || [];
    this.body.replaceChildren(...items.map((item) => this.render(item)));
  }

  render(item) {
    const caption = item.caption ? h("figcaption", {}, item.caption) : null;
    if (item.kind === "image") {
      const m = item.meta || {};
      // small images (a 28x28 digit) are scaled up by a whole factor, pixels kept sharp
      const scale = m.width && m.width < 160 ? Math.ceil(160 / m.width) : 1;
      const img = h("img", {alt: item.caption || `${this.key} at step ${item.step}`,
        width: m.width ? m.width * scale : null, height: m.height ? m.height * scale : null, dataset: {step: item.step}});
      setSrc(img, item.url);
      return h("figure", {class: "media-item"}, img, caption);
    }
    if (item.kind === "audio") {
      const m = item.meta || {};
      const info = m.duration ? `${m.duration.toFixed(2)} s · ${m.sample_rate} Hz` : "";
      const audio = h("audio", {controls: true, preload: "metadata"});
      setSrc(audio, item.url);
      return h("figure", {class: "media-item audio"},
        audio,
        h("figcaption", {}, item.caption || "", item.caption && info ? " · " : "", h("span", {class: "muted"}, info)));
    }
    return h("figure", {class: "media-item text"}, h("pre", {class: "text-block"}, item.text || ""), caption);
  }

  togglePlay() {
    if (this.timer) { this.stop(); return; }
    if (this.pos >= this.steps.length - 1) this.show(0);
    this.playBtn.textContent = "❚❚";
    this.timer = setInterval(() => {
      this.show(this.pos + 1);
      if (this.pos >= this.steps.length - 1) this.stop();
    }, 700);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.playBtn.textContent = "▶";
  }

  destroy() { this.stop(); }
}
