// The WeaveWave studio: the same public API as any client (/describe, /jobs), nothing private.
"use strict";

const $ = (id) => document.getElementById(id);
let currentJob = null;
let lastBrief = null; // the last brief /describe wrote, sent back whole when composing

function headers() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function call(method, path, body, retries = 5) {
  const response = await fetch(path, { method, body, headers: headers() });
  if (response.status === 429 && method === "GET" && retries > 0) {
    // over the read budget: wait as the gateway says, then carry on following
    const wait = Math.min(Number(response.headers.get("Retry-After")) || 1, 30);
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    return call(method, path, body, retries - 1);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error.message;
    } catch (_) { /* not the error envelope */ }
    throw new Error(message);
  }
  return response.json();
}

function inputsForm() {
  const form = new FormData();
  const prompt = $("prompt").value.trim();
  if (prompt) form.append("prompt", prompt);
  for (const file of $("images").files) form.append("images", file);
  if ($("video").files[0]) form.append("video", $("video").files[0]);
  if ($("audio").files[0]) form.append("audio", $("audio").files[0]);
  songFields(form);
  return form;
}

function songFields(form) {
  // Vocals and lyrics go with every request: a composer that cannot sing says so (422).
  if ($("vocals").checked) form.append("vocals", "true");
  if ($("lyrics").value.trim()) form.append("lyrics", $("lyrics").value);
}

function describeBrief(brief) {
  const parts = [
    brief.genre, brief.mood, brief.tempo_bpm && `${brief.tempo_bpm} BPM`, brief.key,
    brief.instruments && brief.instruments.join(", "),
  ].filter(Boolean);
  $("brief-details").textContent = parts.join(" · ");
  $("brief-lyrics").textContent = brief.lyrics || "";
  $("brief-lyrics").hidden = !brief.lyrics;
}

function showSections(brief) {
  // A video scored in sections: each with a thumbnail at its start, its start (the first
  // is 0) and its description, all editable; sent back with the brief when composing.
  const list = $("sections");
  list.replaceChildren();
  const sections = brief.sections || [];
  $("sections-box").hidden = sections.length < 2;
  sections.forEach((section, index) => {
    const item = document.createElement("li");
    const thumb = document.createElement("img");
    thumb.alt = `the video at ${section.start_s.toFixed(1)} s`;
    const start = document.createElement("input");
    start.type = "number";
    start.step = "0.1";
    start.min = "0";
    start.value = section.start_s;
    start.disabled = index === 0;
    start.className = "section-start";
    start.setAttribute("aria-label", `section ${index + 1} starts at (s)`);
    const words = document.createElement("textarea");
    words.rows = 2;
    words.value = section.description;
    words.className = "section-description";
    words.setAttribute("aria-label", `section ${index + 1}: what the music does`);
    item.append(thumb, start, words);
    list.append(item);
  });
  thumbnails(sections.map((s) => s.start_s));
}

async function thumbnails(times) {
  // One frame of the uploaded video at each section's start (best effort: a format the
  // browser cannot play leaves the thumbnails blank).
  const file = $("video").files[0];
  if (!file || !times.length) return;
  const video = document.createElement("video");
  video.muted = true;
  video.src = URL.createObjectURL(file);
  const images = [...$("sections").querySelectorAll("img")];
  try {
    await new Promise((ok, fail) => { video.onloadeddata = ok; video.onerror = fail; });
    const canvas = document.createElement("canvas");
    canvas.width = 160;
    canvas.height = 90;
    for (const [index, time] of times.entries()) {
      video.currentTime = Math.min(time + 0.05, Math.max(0, video.duration - 0.05));
      await new Promise((ok) => { video.onseeked = ok; });
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      images[index].src = canvas.toDataURL("image/jpeg", 0.7);
    }
  } catch (_) { /* thumbnails are a nicety */ }
  URL.revokeObjectURL(video.src);
}

function editedSections() {
  // The sections as edited: starts ascending, each ending where the next starts.
  if (!lastBrief || !lastBrief.sections || lastBrief.sections.length < 2) return [];
  const rows = [...$("sections").children].map((item, index) => ({
    ...lastBrief.sections[index],
    start_s: index === 0 ? 0 : Number(item.querySelector(".section-start").value),
    description: item.querySelector(".section-description").value.trim() || lastBrief.sections[index].description,
  }));
  rows.sort((a, b) => a.start_s - b.start_s);
  const end = lastBrief.sections[lastBrief.sections.length - 1].end_s;
  return rows.map((row, index) => ({ ...row, end_s: index + 1 < rows.length ? rows[index + 1].start_s : end }));
}

async function describe() {
  showError("");
  $("status").textContent = "Listening and looking…";
  try {
    const form = inputsForm();
    if (!$("match-video").checked || !$("video").files[0]) form.append("duration", $("duration").value);
    if ($("single").checked) form.append("score", "single");
    if ($("video").files[0]) form.append("speech", "true"); // for a muxed video's voices
    const brief = await call("POST", "/describe", form);
    lastBrief = brief;
    $("description").value = brief.description;
    describeBrief(brief);
    showSections(brief);
    $("status").textContent = "Brief ready: edit it, then compose.";
  } catch (error) {
    showError(error.message);
    $("status").textContent = "";
  }
}

function jobForm() {
  const form = new FormData();
  const description = $("description").value.trim();
  if (description && lastBrief) {
    // the brief travels whole (its lyrics, tempo, key, sections, what was heard …), with the
    // description and the sections as edited
    const { lyrics, vocal_language, tempo_bpm, key, time_signature, media } = lastBrief;
    const sections = editedSections();
    const brief = { description, lyrics, vocal_language, tempo_bpm, key, time_signature, sections, media };
    form.append("brief", JSON.stringify(brief));
  } else if (description) form.append("description", description);
  else if ($("prompt").value.trim()) form.append("prompt", $("prompt").value.trim());
  for (const file of $("images").files) form.append("images", file);
  const video = $("video").files[0];
  if (video) form.append("video", video);
  if ($("audio").files[0]) {
    form.append("audio", $("audio").files[0]);
    form.append("audio_use", $("audio-use").value);
  }
  form.append("duration", video && $("match-video").checked ? "auto" : $("duration").value);
  form.append("format", $("format").value);
  if ($("seed").value) form.append("seed", $("seed").value);
  form.append("guidance", $("guidance").value);
  form.append("temperature", $("temperature").value);
  if (video && $("mux").checked) {
    form.append("mux", "true");
    // kept by default where the video has voices; unticked, the music alone
    if (!$("keep-speech").checked) form.append("keep_speech", "false");
  }
  if (video && $("single").checked) form.append("score", "single");
  if ($("model").value) form.append("model", $("model").value);
  songFields(form);
  return form;
}

async function offerComposers() {
  // A choice of composer only where the service has more than one (GET /models). Asked at
  // load and again once an API key is typed (a service with keys answers 401 before).
  if ($("model-box").dataset.loaded) return;
  try {
    const served = await call("GET", "/models");
    $("model-box").dataset.loaded = "yes";
    if (served.composers.length < 2) return;
    for (const composer of served.composers) {
      const option = document.createElement("option");
      const can = [composer.sings && "sings", composer.takes_melody && "follows a melody"];
      option.value = composer.name;
      option.textContent = [composer.name, ...can.filter(Boolean)].join(" · ");
      $("model").append(option);
    }
    $("model-box").hidden = false;
  } catch (_) { /* no key yet: asked again when one is typed */ }
}

const AUDIO_USES = {
  heard: "being heard: the brief follows it",
  melody: "a melody to follow",
  style: "its style: the music follows an excerpt of it",
  reference: "its sound: the music borrows its timbre",
  cover: "a new version of it",
  continue: "the start: the music goes on from it",
};
// repaint needs a span (repaint_start/end): the API has it, the studio leaves it out.

async function offerAudioUses() {
  // Only what the served models can do with a clip (GET /models: the captioner's hearing and
  // the chosen composer's uses), besides auto and ignore.
  const box = $("audio-use-box");
  box.hidden = !$("audio").files[0];
  if (box.hidden) return;
  try {
    const served = await call("GET", "/models");
    const chosen = served.composers.find((c) => c.name === $("model").value) || served.composers[0];
    const uses = [...(served.captioner_hears_audio ? ["heard"] : []), ...(chosen ? chosen.audio_uses : [])];
    const select = $("audio-use");
    for (const option of [...select.options]) if (!["auto", "ignore"].includes(option.value)) option.remove();
    for (const use of uses.filter((u) => AUDIO_USES[u])) {
      const option = document.createElement("option");
      option.value = use;
      option.textContent = AUDIO_USES[use];
      select.append(option);
    }
    box.dataset.loaded = "yes";
  } catch (error) {
    showError(error.message);
  }
}

async function playable(url) {
  // Without a key the player streams the audio as it is written; with one, fetch it whole.
  if (!$("api-key").value.trim()) return url;
  const response = await fetch(url, { headers: headers() });
  return URL.createObjectURL(await response.blob());
}

function previewWithSoundtrack() {
  // The uploaded video, muted, kept in step with the player: the clip with its new music.
  const file = $("video").files[0];
  if (!file) return;
  const preview = $("result-video");
  const player = $("player");
  preview.src = URL.createObjectURL(file);
  preview.muted = true;
  preview.hidden = false;
  player.onplay = () => { preview.currentTime = player.currentTime; preview.play().catch(() => {}); };
  player.onpause = () => preview.pause();
  player.onseeked = () => { preview.currentTime = player.currentTime; };
}

async function follow(job) {
  let playing = false;
  while (currentJob === job.id) {
    // a long poll: the gateway answers as soon as the job changes (or after 20 s)
    const after = encodeURIComponent(job.updated_at);
    job = await call("GET", `/jobs/${job.id}?wait=20&after=${after}`);
    $("progress").value = job.progress.fraction;
    const ready = job.progress.audio_seconds_ready;
    $("status").textContent = `${job.state}` + (ready != null ? ` · ${ready.toFixed(1)} s ready` : "");
    const isVideo = job.media_type === "video/mp4";
    if (job.audio_url && !playing && !isVideo) {
      playing = true;
      $("player").src = await playable(job.audio_url);
      previewWithSoundtrack();
      $("player").play().catch(() => {});
    }
    if (job.state === "done") {
      $("player").hidden = isVideo;
      if (isVideo) {
        $("result-video").muted = false;
        $("result-video").src = await playable(job.audio_url);
        $("result-video").hidden = false;
      }
      $("download").href = job.audio_url;
      $("download").download = `weavewave-${job.id}.${isVideo ? "mp4" : $("format").value}`;
      $("download").hidden = false;
      showAnalysis(job.analysis);
      break;
    }
    if (job.state === "failed" || job.state === "cancelled") {
      showError(job.error ? job.error.message : `The job was ${job.state}.`);
      break;
    }
  }
  $("cancel").hidden = true;
}

function showAnalysis(analysis) {
  // The judge's measures of the take, beside what the brief asked (GET /jobs/{id}: analysis).
  const box = $("analysis");
  box.textContent = "";
  box.hidden = !analysis;
  if (!analysis) return;
  const agreed = (measure) => (measure.agreement ? ` (${measure.agreement} with ${measure.asked_bpm || measure.asked})` : "");
  const flaws = Object.entries({ silent: analysis.flaws.silent, clipped: analysis.flaws.clipped, "a stuck loop": analysis.flaws.loop_s })
    .filter(([, present]) => present).map(([name]) => name);
  const parts = [
    analysis.tempo.bpm ? `${analysis.tempo.bpm} BPM${agreed(analysis.tempo)}` : "no steady beat",
    analysis.key.key ? `${analysis.key.key}${agreed(analysis.key)}` : "no clear key",
    analysis.level.integrated_lufs !== null ? `${analysis.level.integrated_lufs} LUFS, peak ${analysis.level.true_peak_dbtp} dBTP` : "",
    flaws.length ? `flawed: ${flaws.join(", ")}` : "no flaw found",
  ].filter(Boolean);
  box.textContent = `Measured: fit ${Math.round(analysis.score * 100)} % · ${parts.join(" · ")}`;
}

async function compose() {
  showError("");
  showAnalysis(null);
  $("download").hidden = true;
  $("result-video").hidden = true;
  $("player").hidden = false;
  $("progress").value = 0;
  try {
    const job = await call("POST", "/jobs", jobForm());
    currentJob = job.id;
    $("cancel").hidden = false;
    await follow(job);
  } catch (error) {
    showError(error.message);
  }
}

async function cancel() {
  if (!currentJob) return;
  const id = currentJob;
  currentJob = null;
  try {
    await call("DELETE", `/jobs/${id}`);
    $("status").textContent = "cancelled";
  } catch (error) {
    showError(error.message);
  }
  $("cancel").hidden = true;
}

const SERVICE_CHECK_MS = 15000;

async function checkService() {
  // The gateway stays up while a model tier restarts (GET /readyz?degraded=ok): say so, since
  // describing or composing answers "try again" until it is back.
  const status = $("service-status");
  try {
    const response = await fetch("/readyz?degraded=ok");
    const health = await response.json();
    const down = health.status === "ready" ? "" : health.detail || health.status;
    status.textContent = down ? `Part of the service is restarting (${down}); describing or composing may have to wait until it is back.` : "";
  } catch (_) {
    status.textContent = "The service cannot be reached.";
  }
  status.hidden = !status.textContent;
}

$("describe").addEventListener("click", describe);
$("compose").addEventListener("click", compose);
$("cancel").addEventListener("click", cancel);
$("audio").addEventListener("change", offerAudioUses);
$("model").addEventListener("change", offerAudioUses);
$("api-key").addEventListener("change", offerComposers);
offerComposers();
checkService();
setInterval(checkService, SERVICE_CHECK_MS);
