"""The built-in sounds (this folder is installed as guided_audio.builtin_sounds)."""
