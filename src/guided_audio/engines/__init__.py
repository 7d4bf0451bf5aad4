"""Built-in speech engines (registered through the `guided_audio.engines` entry points)."""
