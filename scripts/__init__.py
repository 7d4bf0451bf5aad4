"""The built-in practice templates (this folder is installed as guided_audio.builtin_scripts)."""
