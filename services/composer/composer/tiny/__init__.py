"""Tiny models of the composers' real architectures, with random weights, built offline and
byte-identically from a seed: what the tests, the benchmarks and `make demo` run on, since no
model hub can be reached. Test tooling, never imported by the service itself.

- `musicgen`: transformers' MusicGen (mono, stereo, melody) at tiny or real sizes;
- `audiocraft`: audiocraft's MusicGen packages (text, stereo, melody, style);
- `diffusion`: ACE-Step, Stable Audio Open, AudioLDM 2 and Stable Audio 3 as diffusers folders;
- `tokenizer`, `hub`: the tokenizer and hub-cache entries the builders share.

Usage::

    python -m composer.tiny OUT_DIR [--preset tiny|small-shape] [--stereo] [--melody]
        [--hub-cache DIR] [--seed 1234]
    python -m composer.tiny OUT_DIR --kind audiocraft [--melody | --style | --stereo]
        [--preset small-shape] [--hub-cache DIR]
    python -m composer.tiny OUT_DIR --kind ace-step|stable-audio|audioldm2|stable-audio-3
"""
